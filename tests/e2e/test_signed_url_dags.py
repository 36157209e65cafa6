"""
A signed file URL in a real Airflow (``airflow dags test``): its query is in no log line, and the
connection's short, non-secret extras (a 4-digit customer id as a JSON number) trigger no secrets-masker
warning.

One DAG run holds every case: the sensor poking, the sensor deferred (its trigger runs inline under
``dags test``), and the operator both with the sensor's URL and asking the API itself.
"""

from __future__ import annotations

import json
from typing import TYPE_CHECKING

import pytest

from airflow_provider_wavy.sandbox import Scenario, WavySandbox
from tests.conftest import SANDBOX_CUSTOMER, SANDBOX_TOKEN, SANDBOX_USER
from tests.e2e.airflow_runner import AirflowEnv

if TYPE_CHECKING:
    from pathlib import Path

pytestmark = pytest.mark.e2e

SIGNATURE = "SIGNED-4f9e2a-SECRET"
DAG_ID = "wavy_signed_url"
DAG_CODE = """
from __future__ import annotations

from datetime import datetime

from airflow.providers.common.compat.sdk import DAG

from airflow_provider_wavy.operators.wavy import WavyOpenSessionsOperator
from airflow_provider_wavy.sensors.wavy import WavyOpenSessionsSensor

with DAG({dag_id!r}, schedule=None, start_date=datetime(2026, 1, 1), default_args={{"retries": 0}}):
    poke = WavyOpenSessionsSensor(task_id="poke", poke_interval=1, timeout=60)
    deferred = WavyOpenSessionsSensor(task_id="deferred", deferrable=True, poke_interval=1, timeout=60)
    from_sensor = WavyOpenSessionsOperator(
        task_id="from_sensor", file_url="{{{{ ti.xcom_pull(task_ids='poke') }}}}", destination={out!r}
    )
    from_api = WavyOpenSessionsOperator(task_id="from_api")
    poke >> from_sensor
    deferred >> from_api
"""


def test_signed_url_stays_out_of_logs_and_short_extras_do_not_warn(tmp_path: Path) -> None:
    env = AirflowEnv(tmp_path / "airflow")
    env.migrate()
    env.write_dag("wavy_signed_url.py", DAG_CODE.format(dag_id=DAG_ID, out=str(tmp_path / "out") + "/"))
    scenario = Scenario(rows=5, ready_after=1, file_url_query=f"X-Amz-Signature={SIGNATURE}&X-Amz-Expires=60")
    with WavySandbox(
        username=SANDBOX_USER, token=SANDBOX_TOKEN, customer_id=SANDBOX_CUSTOMER, scenario=scenario
    ) as sandbox:
        conn = json.loads(sandbox.connection_json())
        # Short, non-secret extras written as JSON numbers: Airflow 3.3's own connection lookup hands every
        # extra value to the secrets masker, which warns for a short string (docs/troubleshooting.md), and
        # the provider must add no such warning of its own.
        conn["extra"].update({"customer_id": int(SANDBOX_CUSTOMER), "timeout": 30, "max_retries": 2})
        run = env.dags_test(DAG_ID, AIRFLOW_CONN_WAVY_DEFAULT=json.dumps(conn))
    # ``dags test`` writes the task logs to its console (unmasked there), a deployment to log files.
    logs = run.output + env.task_log_text()
    assert run.states == dict.fromkeys(("poke", "deferred", "from_sensor", "from_api"), "success"), (
        run.output[-4000:]
    )
    assert "file is ready: http://127.0.0.1" in logs
    assert SIGNATURE not in logs
    assert "Skipping masking for a secret" not in logs
    # The sensors' XCom is the URL the operator downloads: the signature must be there, and nowhere else.
    leaked = {key for key, value in run.xcoms.items() if SIGNATURE in json.dumps(value)}
    assert leaked == {("poke", "return_value"), ("deferred", "return_value")}, leaked
    assert sum(1 for r in sandbox.requests if r.origin == "cdn") >= 2
