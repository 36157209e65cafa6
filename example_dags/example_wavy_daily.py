"""
Daily export of the WhatsApp sessions still open at Wavy (Sinch).

Every day this DAG:

1. **waits** for Wavy to have the open-sessions file ready (``WavyOpenSessionsSensor`` in deferrable mode:
   while it waits, the triggerer polls the API and no worker slot is held);
2. **downloads** the file, streamed and checked, into a folder partitioned by the run's logical date,
   ``<wavy_data_dir>/open_sessions/<YYYY-MM-DD>/`` (``WavyOpenSessionsOperator``);
3. **reports** how many sessions are open and the oldest and newest ``session_created_at``.

Configuration:

- connection ``wavy_default`` (type ``wavy``): Host = API base URL (empty for Wavy's), Login = UserName,
  Password = authentication token, extra ``customer_id``;
- Airflow Variable ``wavy_data_dir``: where the files go, any local path or object-storage URI such as
  ``s3://bucket/wavy`` (default ``/tmp/wavy``); ``AIRFLOW_VAR_WAVY_DATA_DIR`` sets it from the environment;
- environment variable ``WAVY_POKE_INTERVAL``: seconds between two questions to the API (default 300),
  read when the DAG file is parsed; the local demo sets it to 1.
"""

from __future__ import annotations

import csv
import io
import os
from datetime import UTC, datetime, timedelta
from typing import Any, BinaryIO

from airflow.providers.common.compat.sdk import DAG, ObjectStoragePath, task

from airflow_provider_wavy.operators.wavy import WavyOpenSessionsOperator
from airflow_provider_wavy.sensors.wavy import WavyOpenSessionsSensor

#: Seconds between two API polls. Wavy prepares the file in minutes, so every 5 minutes is plenty in
#: production; the demo and the tests lower it through the environment to finish in seconds.
POKE_INTERVAL = float(os.environ.get("WAVY_POKE_INTERVAL", "300"))

#: The destination folder, one per logical date. A trailing "/" means "a folder": the operator names the file.
DESTINATION = "{{ var.value.get('wavy_data_dir', '/tmp/wavy') }}/open_sessions/{{ ds }}/"


def _created_at_key(value: str) -> tuple[int, Any]:
    """
    Return a sort key for a ``session_created_at`` value: real time when it is ISO 8601, else the text.

    :param value: the cell as written by Wavy (format not documented: ISO 8601 UTC has been seen).
    """
    try:
        return (0, datetime.fromisoformat(value).timestamp())
    except ValueError:
        return (1, value)


def _open_binary(uri: str) -> BinaryIO:
    """
    Open the downloaded file for reading: a local file directly, anything else through Airflow's storage.

    :param uri: ``file:///...`` (what the operator reports for a local destination), or ``s3://...`` etc.
    """
    # Local files skip ObjectStoragePath: on Airflow 3.0 it cannot open file:// URIs with
    # universal-pathlib 0.3, and plain open() needs no file system layer anyway.
    if uri.startswith("file://"):
        return open(uri.removeprefix("file://"), "rb")
    return ObjectStoragePath(uri).open("rb")  # type: ignore[no-any-return,no-untyped-call]


def summarize_sessions_file(uri: str) -> dict[str, Any]:
    """
    Count the sessions in a downloaded file and find the oldest and newest ``session_created_at``.

    The file is read row by row, never whole, so a file of millions of sessions is fine.

    :param uri: the file's path or object-storage URI, as the download task reported it.
    """
    sessions = 0
    oldest: str | None = None
    newest: str | None = None
    with _open_binary(uri) as raw:
        # utf-8-sig drops a byte order mark if there is one; Wavy does not document the delimiter.
        text = io.TextIOWrapper(raw, encoding="utf-8-sig", newline="")
        header_line = text.readline()
        delimiter = ";" if header_line.count(";") >= header_line.count(",") else ","
        header = next(csv.reader([header_line], delimiter=delimiter))
        column = header.index("session_created_at")
        for row in csv.reader(text, delimiter=delimiter):
            if not row:
                continue
            sessions += 1
            created_at = row[column]
            if oldest is None or _created_at_key(created_at) < _created_at_key(oldest):
                oldest = created_at
            if newest is None or _created_at_key(created_at) > _created_at_key(newest):
                newest = created_at
    return {"file": uri, "open_sessions": sessions, "oldest": oldest, "newest": newest}


with DAG(
    dag_id="example_wavy_daily",
    description="Wait for, download and summarize the Wavy open-sessions file, once a day",
    schedule="@daily",
    start_date=datetime(2026, 1, 1, tzinfo=UTC),
    catchup=False,
    max_active_runs=1,
    default_args={"retries": 2, "retry_delay": timedelta(minutes=5)},
    tags=["wavy", "example"],
    doc_md=__doc__,
) as dag:
    wait_for_sessions = WavyOpenSessionsSensor(
        task_id="wait_for_sessions",
        deferrable=True,
        poke_interval=POKE_INTERVAL,
        timeout=6 * 60 * 60,  # give up (and fail) if Wavy has no file after 6 hours
    )

    download_sessions = WavyOpenSessionsOperator(
        task_id="download_sessions",
        # The URL the sensor found (so the API is not asked twice); .output also sets the dependency.
        file_url=wait_for_sessions.output,  # type: ignore[arg-type]
        destination=DESTINATION,
    )

    @task
    def report_sessions(download: dict[str, Any]) -> dict[str, Any]:
        """
        Read the downloaded file back and report the open sessions it lists.

        :param download: the download task's summary (destination URI, rows, bytes, sha256).
        """
        report = summarize_sessions_file(download["destination"])
        print(
            f"{report['open_sessions']} open session(s) in {report['file']}; "
            f"oldest {report['oldest']}, newest {report['newest']}"
        )
        return report

    # The XComArg becomes the summary dict at run time (mypy only sees the XComArg).
    report_sessions(download_sessions.output)  # type: ignore[arg-type]
