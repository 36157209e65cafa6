"""
Open sessions straight into a TaskFlow task, through XCom: no file, no storage to set up.

With ``destination=None`` the operator downloads and checks the file, then returns its rows as a list of
dicts (keys = the CSV header, e.g. ``source`` and ``session_created_at``). Good for small accounts: the
rows travel through Airflow's metadata database, so ``max_xcom_rows`` makes the task fail instead of
pushing a huge XCom. Use a ``destination`` (see ``example_wavy_daily``) for anything bigger.

The sensor runs in the classic poke mode here (it holds a worker slot while it waits): fine when the
file is usually ready at once. Connection ``wavy_default``; ``WAVY_POKE_INTERVAL`` seconds between polls.
"""

from __future__ import annotations

import os
from collections import Counter
from datetime import UTC, datetime
from typing import Any

from airflow.providers.common.compat.sdk import DAG, task

from airflow_provider_wavy.operators.wavy import WavyOpenSessionsOperator
from airflow_provider_wavy.sensors.wavy import WavyOpenSessionsSensor

POKE_INTERVAL = float(os.environ.get("WAVY_POKE_INTERVAL", "60"))

with DAG(
    dag_id="example_wavy_xcom",
    description="Fetch the open sessions as XCom rows and count them per day in a TaskFlow task",
    schedule="@daily",
    start_date=datetime(2026, 1, 1, tzinfo=UTC),
    catchup=False,
    tags=["wavy", "example"],
    doc_md=__doc__,
) as dag:
    wait_for_sessions = WavyOpenSessionsSensor(
        task_id="wait_for_sessions",
        poke_interval=POKE_INTERVAL,
        timeout=60 * 60,
    )

    fetch_sessions = WavyOpenSessionsOperator(
        task_id="fetch_sessions",
        file_url=wait_for_sessions.output,  # type: ignore[arg-type]
        destination=None,  # rows to XCom
        max_xcom_rows=10_000,
    )

    @task
    def sessions_per_day(sessions: list[dict[str, str]]) -> dict[str, Any]:
        """
        Count the open sessions by the day they were opened (phone numbers stay out of the log).

        :param sessions: one dict per open session, keyed by the CSV header.
        """
        # session_created_at starts with the date (YYYY-MM-DD...) in the files seen so far.
        per_day = Counter(session["session_created_at"][:10] for session in sessions)
        for day, count in sorted(per_day.items()):
            print(f"{day}: {count} session(s) opened that day still open")
        return {"open_sessions": len(sessions), "per_day": dict(sorted(per_day.items()))}

    # The XComArg becomes the value at run time (mypy only sees the XComArg).
    sessions_per_day(fetch_sessions.output)  # type: ignore[arg-type]
