"""
WavyOpenSessionsOperator in a real Airflow (``airflow dags test``): templating, XCom, outlets, S3, failure.

Two lean runs per Airflow version: run the suite with ``.venv/af3`` and ``.venv/af2``.
"""

from __future__ import annotations

import csv
import io
import json
import sqlite3
import uuid
from typing import TYPE_CHECKING, Any

import pytest

from airflow_provider_wavy.sandbox import Scenario
from tests.conftest import SANDBOX_CUSTOMER, SANDBOX_TOKEN
from tests.e2e.airflow_runner import LOGICAL_DATE, AirflowEnv, airflow_major

if TYPE_CHECKING:
    from pathlib import Path

    from airflow_provider_wavy.sandbox import WavySandbox

pytestmark = pytest.mark.e2e

S3_CONN_ID = "wavy_e2e_s3"
DAG_ID = "wavy_operator_e2e"

DAG_CODE = """
from __future__ import annotations

from datetime import datetime

from airflow.providers.common.compat.sdk import Asset
{dag_import}

from airflow_provider_wavy.hooks.wavy import WavyHook
from airflow_provider_wavy.operators.wavy import WavyOpenSessionsOperator

OUT = {out!r}
BUCKET = {bucket!r}

with DAG(dag_id={dag_id!r}, schedule=None, start_date=datetime(2026, 1, 1), catchup=False):

    def find_url() -> str:
        return WavyHook().get_open_sessions_file_url()

    url = PythonOperator(task_id="find_url", python_callable=find_url)
    to_folder = WavyOpenSessionsOperator(
        task_id="to_folder",
        file_url="{{{{ ti.xcom_pull(task_ids='find_url') }}}}",
        destination=OUT + "/{{{{ ds }}}}/",
        outlets=[Asset("file://" + OUT + "/sessions")],
    )
    to_s3 = WavyOpenSessionsOperator(
        task_id="to_s3",
        destination="s3://" + BUCKET + "/wavy/{{{{ ds_nodash }}}}.csv",
        destination_conn_id={s3_conn!r},
    )
    to_xcom = WavyOpenSessionsOperator(task_id="to_xcom", max_xcom_rows={max_xcom_rows})
    url >> to_folder
"""


@pytest.fixture
def airflow_env(tmp_path: Path) -> AirflowEnv:
    env = AirflowEnv(tmp_path / "airflow")
    env.migrate()
    return env


def write_dag(env: AirflowEnv, out: Path, bucket: str, max_xcom_rows: int = 1000) -> None:
    if airflow_major() >= 3:
        dag_import = (
            "from airflow.sdk import DAG\n"
            "from airflow.providers.standard.operators.python import PythonOperator"
        )
    else:
        dag_import = "from airflow import DAG\nfrom airflow.operators.python import PythonOperator"
    code = DAG_CODE.format(
        dag_import=dag_import,
        out=str(out),
        bucket=bucket,
        dag_id=DAG_ID,
        s3_conn=S3_CONN_ID,
        max_xcom_rows=max_xcom_rows,
    )
    env.write_dag("wavy_operator_e2e.py", code)


def run_env(sandbox: WavySandbox, endpoint: str) -> dict[str, Any]:
    s3_conn = {
        "conn_type": "aws",
        "login": "testing",
        "password": "testing",
        "extra": {"endpoint_url": endpoint, "region_name": "us-east-1"},
    }
    return {
        "AIRFLOW_CONN_WAVY_DEFAULT": sandbox.connection_json(),
        f"AIRFLOW_CONN_{S3_CONN_ID.upper()}": json.dumps(s3_conn),
        "AWS_ACCESS_KEY_ID": "testing",
        "AWS_SECRET_ACCESS_KEY": "testing",
        "AWS_DEFAULT_REGION": "us-east-1",
    }


def make_bucket(endpoint: str) -> tuple[Any, str]:
    import s3fs

    fs = s3fs.S3FileSystem(
        key="testing", secret="testing", client_kwargs={"endpoint_url": endpoint}, skip_instance_cache=True
    )
    bucket = f"wavy-e2e-{uuid.uuid4().hex[:10]}"
    fs.mkdir(bucket)
    return fs, bucket


def asset_event_extras(env: AirflowEnv) -> list[tuple[str, dict[str, Any]]]:
    """Return (uri, extra) of every asset (dataset on Airflow 2) event recorded."""
    table, ref, key = (
        ("asset", "asset_event", "asset_id")
        if airflow_major() >= 3
        else (
            "dataset",
            "dataset_event",
            "dataset_id",
        )
    )
    with sqlite3.connect(env.db_path) as db:
        rows = db.execute(f"SELECT a.uri, e.extra FROM {ref} e JOIN {table} a ON a.id = e.{key}").fetchall()  # noqa: S608
    return [(uri, json.loads(extra) if isinstance(extra, str) else extra) for uri, extra in rows]


def test_operator_dag_happy_path(
    airflow_env: AirflowEnv,
    sandbox: WavySandbox,
    moto_endpoint: str,
    tmp_path: Path,
) -> None:
    sandbox.scenario = Scenario(rows=300, delimiter=",", bom=True)
    expected = sandbox.expected_bytes()
    fs, bucket = make_bucket(moto_endpoint)
    out = tmp_path / "out"
    write_dag(airflow_env, out, bucket)
    if airflow_major() < 3:
        # Airflow 2 records a dataset event only for datasets its DAG processor has stored; dags test does
        # not store them, so do what the processor would have done.
        assert airflow_env.airflow("dags", "reserialize").returncode == 0

    run = airflow_env.dags_test(DAG_ID, **run_env(sandbox, moto_endpoint))

    assert run.states == dict.fromkeys(("find_url", "to_folder", "to_s3", "to_xcom"), "success"), run.output[
        -4000:
    ]
    final = out / LOGICAL_DATE / f"wavy_open_sessions_{SANDBOX_CUSTOMER}_{LOGICAL_DATE}.csv"
    assert final.read_bytes() == expected
    assert sorted(p.name for p in final.parent.iterdir()) == [final.name]
    folder_summary = run.xcom("to_folder")
    assert folder_summary["destination"] == f"file://{final}"
    assert folder_summary["rows"] == 300
    s3_key = f"{bucket}/wavy/{LOGICAL_DATE.replace('-', '')}.csv"
    assert fs.find(bucket, refresh=True) == [s3_key]
    assert fs.cat_file(s3_key) == expected
    assert run.xcom("to_s3")["destination"] == f"s3://{s3_key}"
    rows = run.xcom("to_xcom")
    assert rows == list(csv.DictReader(io.StringIO(expected.decode("utf-8-sig"), newline="")))
    # The outlet asset was emitted, carrying the summary for downstream DAGs.
    events = asset_event_extras(airflow_env)
    assert [uri for uri, _ in events] == [f"file://{out}/sessions"]
    assert events[0][1]["sha256"] == folder_summary["sha256"]
    # The token reached neither the file host nor any XCom.
    assert not sandbox.cdn_saw_credentials
    assert SANDBOX_TOKEN not in json.dumps(list(run.xcoms.values()))
    assert "file_url" not in json.dumps([run.xcom("to_folder"), run.xcom("to_s3")])


def test_operator_dag_faults_leave_nothing(
    airflow_env: AirflowEnv,
    sandbox: WavySandbox,
    moto_endpoint: str,
    tmp_path: Path,
) -> None:
    sandbox.scenario = Scenario(rows=200_000, truncate_at=4_000_000)
    fs, bucket = make_bucket(moto_endpoint)
    out = tmp_path / "out"
    write_dag(airflow_env, out, bucket, max_xcom_rows=100)

    run = airflow_env.dags_test(DAG_ID, **run_env(sandbox, moto_endpoint))

    assert run.states["find_url"] == "success"
    assert {task: run.states[task] for task in ("to_folder", "to_s3", "to_xcom")} == dict.fromkeys(
        ("to_folder", "to_s3", "to_xcom"), "failed"
    ), run.output[-4000:]
    assert not out.exists() or list(out.rglob("*")) in ([], [out / LOGICAL_DATE])
    assert fs.find(bucket, refresh=True) == []
    output = run.output + airflow_env.task_log_text()
    assert "cut short" in output
    assert "above max_xcom_rows=100" in output
    assert SANDBOX_TOKEN not in output
    assert asset_event_extras(airflow_env) == []
