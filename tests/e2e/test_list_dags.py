"""WavyListSensor and WavyListOperator in a real Airflow (`airflow dags test`), every mode, on the sandbox."""

from __future__ import annotations

import csv
import io
import textwrap
from typing import TYPE_CHECKING

import pytest

from airflow_provider_wavy.sandbox import Scenario, WavySandbox
from tests.conftest import SANDBOX_CUSTOMER, SANDBOX_TOKEN, SANDBOX_USER
from tests.e2e.airflow_runner import LOGICAL_DATE, AirflowEnv

if TYPE_CHECKING:
    from pathlib import Path

pytestmark = pytest.mark.e2e

LIST_DAG = """
from __future__ import annotations

from datetime import datetime

from airflow.providers.common.compat.sdk import DAG

from airflow_provider_wavy.operators.wavy import WavyListOperator
from airflow_provider_wavy.sensors.wavy import WavyListSensor

STRICT = {{"retries": 0, "allow_nested_operators": False}}

with DAG("wavy_list_modes", schedule=None, start_date=datetime(2026, 1, 1), default_args=STRICT):
    poke = WavyListSensor(task_id="poke", list_type="OPTOUT", poke_interval=1, timeout=60)
    WavyListSensor(
        task_id="reschedule", list_type="optin", mode="reschedule", poke_interval=1, timeout=60
    )
    WavyListSensor(
        task_id="deferrable",
        list_type="{{{{ params.list }}}}",
        params={{"list": "BLACKLIST"}},
        deferrable=True,
        require_rows=True,
        poke_interval=1,
        timeout=60,
    )
    WavyListOperator(task_id="to_folder", list_type="WHITELIST", destination="{folder}/")
    WavyListOperator(task_id="to_xcom", list_type="OPTOUT", file_url=poke.output)
"""


@pytest.fixture(scope="module")
def airflow_env(tmp_path_factory: pytest.TempPathFactory) -> tuple[AirflowEnv, Path]:
    env = AirflowEnv(tmp_path_factory.mktemp("airflow-home"))
    env.migrate()
    folder = tmp_path_factory.mktemp("lists")
    env.write_dag("wavy_list_modes.py", textwrap.dedent(LIST_DAG.format(folder=folder)))
    return env, folder


def test_list_sensor_in_every_mode_and_operator_to_folder_and_xcom(
    airflow_env: tuple[AirflowEnv, Path],
) -> None:
    env, folder = airflow_env
    with WavySandbox(username=SANDBOX_USER, token=SANDBOX_TOKEN, customer_id=SANDBOX_CUSTOMER) as sandbox:
        sandbox.list_scenarios = {
            name: Scenario(ready_after=2, pending_style="missing")
            for name in ("OPTOUT", "OPTIN", "BLACKLIST")
        }
        run = env.dags_test("wavy_list_modes", AIRFLOW_CONN_WAVY_DEFAULT=sandbox.connection_json())
        assert run.returncode == 0, run.output[-5000:]
        assert set(run.states.values()) == {"success"}, (run.states, run.output[-5000:])

        for task_id, list_type in (("poke", "OPTOUT"), ("reschedule", "OPTIN"), ("deferrable", "BLACKLIST")):
            url = run.xcom(task_id)
            assert url.startswith(f"{sandbox.cdn_url}/"), url
            assert f"/list-{SANDBOX_CUSTOMER}-" in url, url
            assert sandbox.list_calls[list_type] >= 3, (list_type, sandbox.list_calls)  # waited twice

        whitelist = sandbox.expected_bytes(SANDBOX_CUSTOMER, list_type="WHITELIST")
        landed = folder / f"wavy_list_whitelist_{SANDBOX_CUSTOMER}_{LOGICAL_DATE}.csv"
        assert landed.read_bytes() == whitelist
        summary = run.xcom("to_folder")
        assert summary["columns"] == ["source", "createdAt"]

        opt_outs = sandbox.expected_bytes(SANDBOX_CUSTOMER, list_type="OPTOUT")
        expected_rows = list(csv.DictReader(io.StringIO(opt_outs.decode()), delimiter=";"))
        assert run.xcom("to_xcom") == expected_rows
        assert not sandbox.cdn_saw_credentials
    assert SANDBOX_TOKEN not in run.output
    assert SANDBOX_TOKEN not in env.task_log_text()
    assert SANDBOX_TOKEN not in repr(run.xcoms)
