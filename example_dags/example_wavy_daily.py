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
- Airflow Variable ``wavy_data_dir``: where the files go. Default ``/tmp/wavy``, which only works when every
  task runs on one machine (LocalExecutor). With CeleryExecutor or KubernetesExecutor set it to object
  storage every worker reaches, such as ``s3://bucket/wavy``, and the Variable ``wavy_data_conn_id`` to its
  connection (e.g. an ``aws`` connection): the download may run on one worker and the report on another.
  A local path there fails the download at once, saying so (unless ``wavy_data_dir_shared`` is ``true``,
  for a mount every worker shares). ``AIRFLOW_VAR_WAVY_DATA_DIR`` sets it from the environment;
- environment variables ``WAVY_POKE_INTERVAL`` (seconds between two questions to the API, default 300) and
  ``WAVY_RETRY_DELAY`` (seconds before a failed task's next try, default 300), read when the DAG file is
  parsed; the local demo and the tests lower them.
"""

from __future__ import annotations

import csv
import io
import os
from datetime import UTC, datetime, timedelta
from typing import Any

from airflow.providers.common.compat.sdk import DAG, task

from airflow_provider_wavy.data_location import data_location, open_data_file
from airflow_provider_wavy.operators.wavy import WavyOpenSessionsOperator
from airflow_provider_wavy.sensors.wavy import WavyOpenSessionsSensor

#: Seconds between two API polls. Wavy prepares the file in minutes, so every 5 minutes is plenty in
#: production; the demo and the tests lower it through the environment to finish in seconds.
POKE_INTERVAL = float(os.environ.get("WAVY_POKE_INTERVAL", "300"))
#: Seconds before a failed task's next try; a worker lost mid-download costs the task heartbeat timeout
#: plus this before the download starts again on another worker.
RETRY_DELAY = timedelta(seconds=float(os.environ.get("WAVY_RETRY_DELAY", "300")))

#: The destination folder, one per logical date. A trailing "/" means "a folder": the operator names the file.
#: wavy_data_location (a macro, see user_defined_macros below) reads the Variable wavy_data_dir on the worker
#: and refuses a local folder where tasks run on several machines.
DESTINATION = "{{ wavy_data_location(var.value) }}/open_sessions/{{ ds }}/"
#: The object store's connection, or empty for the file system's default (local paths need none).
DATA_CONN_ID = "{{ var.value.get('wavy_data_conn_id', '') }}"


def _created_at_key(value: str) -> tuple[int, Any]:
    """
    Return a sort key for a ``session_created_at`` value: real time when it is ISO 8601, else the text.

    :param value: the cell as written by Wavy (format not documented: ISO 8601 UTC has been seen).
    """
    try:
        return (0, datetime.fromisoformat(value).timestamp())
    except ValueError:
        return (1, value)


def summarize_sessions_file(uri: str, conn_id: str | None = None, delimiter: str = ";") -> dict[str, Any]:
    """
    Count the sessions in a downloaded file and find the oldest and newest ``session_created_at``.

    The file is read row by row, never whole, so a file of millions of sessions is fine.

    :param uri: the file's path or object-storage URI, as the download task reported it.
    :param conn_id: the object store's connection (None: the default one, or a local path).
    :param delimiter: the delimiter the download task found (its summary's ``delimiter``).
    """
    sessions = 0
    oldest: str | None = None
    newest: str | None = None
    with open_data_file(uri, conn_id) as raw:
        # utf-8-sig drops a byte order mark if there is one.
        text = io.TextIOWrapper(raw, encoding="utf-8-sig", newline="")
        reader = csv.reader(text, delimiter=delimiter)
        column = next(reader).index("session_created_at")
        for row in reader:
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
    default_args={"retries": 2, "retry_delay": RETRY_DELAY},
    user_defined_macros={"wavy_data_location": data_location},
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
        destination_conn_id=DATA_CONN_ID,
    )

    @task
    def report_sessions(download: dict[str, Any], conn_id: str) -> dict[str, Any]:
        """
        Read the downloaded file back, from wherever the download ran, and report the sessions it lists.

        :param download: the download task's summary (destination URI, rows, bytes, sha256).
        :param conn_id: the object store's connection (rendered from the Variable; empty for local paths).
        """
        report = summarize_sessions_file(download["destination"], conn_id or None, download["delimiter"])
        print(
            f"{report['open_sessions']} open session(s) in {report['file']}; "
            f"oldest {report['oldest']}, newest {report['newest']}"
        )
        return report

    # The XComArg becomes the summary dict at run time (mypy only sees the XComArg).
    report_sessions(download_sessions.output, conn_id=DATA_CONN_ID)  # type: ignore[arg-type]
