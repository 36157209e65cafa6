"""WavyOpenSessionsSensor in a real Airflow (``airflow dags test``): modes, fail-fast, timeout, soft_fail."""

from __future__ import annotations

import json
import textwrap
import time
from typing import TYPE_CHECKING

import pytest

from airflow_provider_wavy.sandbox import Scenario, WavySandbox
from tests.conftest import SANDBOX_CUSTOMER, SANDBOX_TOKEN, SANDBOX_USER
from tests.e2e.airflow_runner import AirflowEnv, DagRun
from tests.triggers.test_wavy import malformed_api

if TYPE_CHECKING:
    from collections.abc import Iterator
    from pathlib import Path

pytestmark = pytest.mark.e2e

DAG_HEADER = """
from __future__ import annotations

from datetime import datetime, timedelta

from airflow.providers.common.compat.sdk import DAG

from airflow_provider_wavy.sensors.wavy import WavyOpenSessionsSensor

DEFAULTS = {"retries": 1, "retry_delay": timedelta(hours=1)}
"""

MODES_DAG = (
    DAG_HEADER
    + """
# allow_nested_operators=False turns Airflow's "execute cannot be called outside TaskInstance" warning
# (an operator's execute called from another's) into a failure: the sensor's own execute must not trip it.
# No retry: such a failure shows at once instead of after an hour's retry delay.
STRICT = {"retries": 0, "allow_nested_operators": False}

with DAG("wavy_sensor_modes", schedule=None, start_date=datetime(2026, 1, 1), default_args=STRICT):
    WavyOpenSessionsSensor(task_id="poke", wavy_conn_id="wavy_poke", poke_interval=1, timeout=60)
    WavyOpenSessionsSensor(
        task_id="reschedule", wavy_conn_id="wavy_reschedule", mode="reschedule", poke_interval=1, timeout=60
    )
    WavyOpenSessionsSensor(
        task_id="deferrable",
        deferrable=True,
        poke_interval=1,
        timeout=60,
        customer_id="{{ params.customer }}",
        params={"customer": "2002"},
    )
"""
)

FAILURES_DAG = (
    DAG_HEADER
    + """
with DAG("wavy_sensor_failures", schedule=None, start_date=datetime(2026, 1, 1), default_args=DEFAULTS):
    for cause in ("bad_token", "no_customer", "malformed"):
        for deferrable in (False, True):
            WavyOpenSessionsSensor(
                task_id=f"{cause}_{'deferrable' if deferrable else 'poke'}",
                wavy_conn_id=f"wavy_{cause}",
                deferrable=deferrable,
                poke_interval=1,
                timeout=300,
            )
    for task_id, deferrable, soft_fail in (
        ("timeout_deferrable", True, False),
        ("soft_fail_deferrable", True, True),
        ("soft_fail_poke", False, True),
    ):
        WavyOpenSessionsSensor(
            task_id=task_id,
            wavy_conn_id="wavy_never",
            deferrable=deferrable,
            soft_fail=soft_fail,
            poke_interval=1,
            timeout=3,
        )
"""
)


def conn_json(sandbox: WavySandbox, **changes: object) -> str:
    conn = json.loads(sandbox.connection_json())
    extra = {**conn["extra"], **changes.pop("extra", {})}  # type: ignore[dict-item]
    conn.update(changes, extra=extra)
    return json.dumps(conn)


@pytest.fixture(scope="module")
def airflow_env(tmp_path_factory: pytest.TempPathFactory) -> AirflowEnv:
    """One migrated Airflow home for the module: migrating takes seconds, a DAG run about ten."""
    env = AirflowEnv(tmp_path_factory.mktemp("airflow-home"))
    env.migrate()
    env.write_dag("wavy_sensor_modes.py", MODES_DAG)
    env.write_dag("wavy_sensor_failures.py", FAILURES_DAG)
    return env


@pytest.fixture
def fresh_sandboxes() -> Iterator[tuple[WavySandbox, WavySandbox, WavySandbox]]:
    """
    A sandbox per mode, so that each counts its own polls.

    Fresh ones, not the session's: a slow answer another test gave up on may still land on the session's
    sandbox and consume one of its "not yet" answers.
    """
    with (
        WavySandbox(username=SANDBOX_USER, token=SANDBOX_TOKEN, customer_id=SANDBOX_CUSTOMER) as first,
        WavySandbox(username=SANDBOX_USER, token=SANDBOX_TOKEN, customer_id=SANDBOX_CUSTOMER) as second,
        WavySandbox(username=SANDBOX_USER, token=SANDBOX_TOKEN, customer_id=SANDBOX_CUSTOMER) as third,
    ):
        yield first, second, third


def assert_no_token(run: DagRun, env: AirflowEnv) -> None:
    assert SANDBOX_TOKEN not in run.output
    assert SANDBOX_TOKEN not in env.task_log_text()
    assert SANDBOX_TOKEN not in repr(run.xcoms)


def test_every_mode_waits_then_returns_the_file_url(
    airflow_env: AirflowEnv, fresh_sandboxes: tuple[WavySandbox, WavySandbox, WavySandbox]
) -> None:
    poke_sandbox, reschedule_sandbox, sandbox = fresh_sandboxes
    sandboxes = {"poke": poke_sandbox, "reschedule": reschedule_sandbox, "deferrable": sandbox}
    for box in sandboxes.values():
        box.scenario = Scenario(ready_after=2)

    run = airflow_env.dags_test(
        "wavy_sensor_modes",
        AIRFLOW_CONN_WAVY_DEFAULT=sandbox.connection_json(),
        AIRFLOW_CONN_WAVY_POKE=poke_sandbox.connection_json(),
        AIRFLOW_CONN_WAVY_RESCHEDULE=reschedule_sandbox.connection_json(),
    )

    assert run.states == dict.fromkeys(sandboxes, "success"), run.output[-4000:]
    for task_id, box in sandboxes.items():
        url = run.xcom(task_id)
        assert isinstance(url, str)
        assert url.startswith(box.cdn_url), task_id
        assert box.api_calls == 3, f"{task_id}: two 'not yet' answers, then the URL"
    # Airflow 2.11 says "... outside TaskInstance!", Airflow 3 "... outside of the Task Runner!".
    assert "cannot be called outside" not in run.output + airflow_env.task_log_text()
    # The templated customer_id was rendered before the trigger was built; the others use the extra.
    assert {r.query["customerId"] for r in sandbox.requests if r.origin == "api"} == {"2002"}
    assert {r.query["customerId"] for r in poke_sandbox.requests if r.origin == "api"} == {SANDBOX_CUSTOMER}
    assert_no_token(run, airflow_env)


def test_fail_fast_timeout_and_soft_fail(airflow_env: AirflowEnv, sandbox: WavySandbox) -> None:
    sandbox.scenario = Scenario(ready_after=1_000_000)
    started = time.monotonic()
    with malformed_api() as malformed_url:
        run = airflow_env.dags_test(
            "wavy_sensor_failures",
            AIRFLOW_CONN_WAVY_BAD_TOKEN=conn_json(sandbox, password="not-the-token"),
            AIRFLOW_CONN_WAVY_NO_CUSTOMER=conn_json(sandbox, extra={"customer_id": ""}),
            AIRFLOW_CONN_WAVY_MALFORMED=conn_json(sandbox, host=malformed_url),
            AIRFLOW_CONN_WAVY_NEVER=sandbox.connection_json(),
        )
    elapsed = time.monotonic() - started

    expected = {
        f"{cause}_{mode}": "failed"
        for cause in ("bad_token", "no_customer", "malformed")
        for mode in ("poke", "deferrable")
    }
    expected |= {
        "timeout_deferrable": "failed",
        "soft_fail_deferrable": "skipped",
        "soft_fail_poke": "skipped",
    }
    # "failed", not "up_for_retry": the tasks have a retry, fatal errors and timeouts do not use it.
    assert run.states == expected, run.output[-4000:]
    # Six fail-fast tasks with a 300 s timeout and three 3 s timeouts: minutes if anything waited wrongly.
    assert elapsed < 90
    text = run.output + airflow_env.task_log_text()
    for message in (
        "No user was found with this combination",
        "No Wavy customer id",
        "not JSON",
        "Sensor has timed out",
    ):
        assert message in text, message
    assert_no_token(run, airflow_env)


def test_dag_files_parse_without_importing_the_transport(airflow_env: AirflowEnv) -> None:
    dags: list[Path] = sorted(airflow_env.dags_folder.glob("wavy_sensor_*.py"))
    assert len(dags) == 2
    code = textwrap.dedent(
        """
        import runpy, sys
        for path in sys.argv[1:]:
            runpy.run_path(path)
        loaded = [m for m in sys.modules if m.startswith(("airflow_provider_wavy.hooks",
                  "airflow_provider_wavy.triggers", "requests_toolbelt"))]
        print(loaded)
        """
    )
    result = airflow_env_python(airflow_env, code, *map(str, dags))
    assert result.splitlines()[-1] == "[]"


def airflow_env_python(env: AirflowEnv, code: str, *args: str) -> str:
    import subprocess
    import sys

    completed = subprocess.run(
        [sys.executable, "-c", code, *args],
        env=env.env(),
        capture_output=True,
        text=True,
        check=True,
        timeout=120,
    )
    return completed.stdout.strip()
