"""
Who may be messaged today: the open sessions minus the customers who opted out.

Every day this DAG:

1. **waits** for the open-sessions file and for the OPT-OUT list (``WavyOpenSessionsSensor`` and
   ``WavyListSensor``, deferrable: the triggerer polls, no worker slot is held);
2. **lands** both, streamed and checked, in ``<wavy_data_dir>/reachable/<YYYY-MM-DD>/``
   (``WavyOpenSessionsOperator``, ``WavyListOperator``);
3. **reports** how many open sessions may be messaged: those whose phone number is not on the OPT-OUT
   list, numbers compared as strings of digits (``+55 (11) 9...`` and ``55119...`` are the same number).

Configuration: connection ``wavy_default``; the Airflow Variables ``wavy_data_dir`` and
``wavy_data_conn_id`` as in ``example_wavy_daily`` (object storage on Celery or Kubernetes: a local folder
there is refused at once); ``WAVY_POKE_INTERVAL`` and ``WAVY_RETRY_DELAY``.
Phone numbers are personal data: the report prints counts only.
"""

from __future__ import annotations

import csv
import io
import os
from datetime import UTC, datetime, timedelta
from typing import TYPE_CHECKING, Any

from airflow.providers.common.compat.sdk import DAG, task

from airflow_provider_wavy.data_location import data_location, open_data_file
from airflow_provider_wavy.operators.wavy import WavyListOperator, WavyOpenSessionsOperator
from airflow_provider_wavy.sensors.wavy import WavyListSensor, WavyOpenSessionsSensor

if TYPE_CHECKING:
    from collections.abc import Iterator

POKE_INTERVAL = float(os.environ.get("WAVY_POKE_INTERVAL", "300"))
RETRY_DELAY = timedelta(seconds=float(os.environ.get("WAVY_RETRY_DELAY", "300")))
DESTINATION = "{{ wavy_data_location(var.value) }}/reachable/{{ ds }}/"
DATA_CONN_ID = "{{ var.value.get('wavy_data_conn_id', '') }}"


def digits(phone: str) -> str:
    """Return a phone number as its digits only, the form in which two files' numbers are compared."""
    return "".join(ch for ch in phone if ch.isdigit())


def phones(download: dict[str, Any], conn_id: str | None = None) -> Iterator[str]:
    """
    Yield the phone numbers (as digits) of a landed file, row by row, never holding the file.

    :param download: the download task's summary: destination, delimiter and columns as verified.
    :param conn_id: the object store's connection (None: the default one, or a local path).
    """
    phone_column = next(name for name in ("source", "origin", "origem") if name in download["columns"])
    with open_data_file(download["destination"], conn_id) as raw:
        text = io.TextIOWrapper(raw, encoding="utf-8-sig", newline="")
        reader = csv.reader(text, delimiter=download["delimiter"])
        header = next(reader)
        index = header.index(phone_column)
        for row in reader:
            if len(row) > index and (number := digits(row[index])):
                yield number


def reachable_report(
    sessions: dict[str, Any], opt_outs: dict[str, Any], conn_id: str | None = None
) -> dict[str, int]:
    """
    Count the open sessions, the opted-out numbers, and the open sessions that may be messaged.

    :param sessions: the open-sessions download's summary.
    :param opt_outs: the OPT-OUT list download's summary.
    :param conn_id: the object store's connection (None: the default one, or a local path).
    """
    opted_out = set(phones(opt_outs, conn_id))
    open_sessions = 0
    reachable = 0
    for number in phones(sessions, conn_id):
        open_sessions += 1
        reachable += number not in opted_out
    return {"open_sessions": open_sessions, "opted_out": len(opted_out), "reachable": reachable}


with DAG(
    dag_id="example_wavy_reachable",
    description="Open sessions minus opt-outs: who may be messaged today",
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
        task_id="wait_for_sessions", deferrable=True, poke_interval=POKE_INTERVAL, timeout=6 * 60 * 60
    )
    wait_for_opt_outs = WavyListSensor(
        task_id="wait_for_opt_outs",
        list_type="OPTOUT",
        deferrable=True,
        poke_interval=POKE_INTERVAL,
        timeout=6 * 60 * 60,
    )
    land_sessions = WavyOpenSessionsOperator(
        task_id="land_sessions",
        file_url=wait_for_sessions.output,  # type: ignore[arg-type]
        destination=DESTINATION,
        destination_conn_id=DATA_CONN_ID,
    )
    land_opt_outs = WavyListOperator(
        task_id="land_opt_outs",
        list_type="OPTOUT",
        file_url=wait_for_opt_outs.output,  # type: ignore[arg-type]
        destination=DESTINATION,
        destination_conn_id=DATA_CONN_ID,
    )

    @task
    def report_reachable(sessions: dict[str, Any], opt_outs: dict[str, Any], conn_id: str) -> dict[str, int]:
        """
        Report how many open sessions may be messaged today (counts only: numbers are personal data).

        :param sessions: the open-sessions download's summary.
        :param opt_outs: the OPT-OUT list download's summary.
        :param conn_id: the object store's connection (rendered from the Variable; empty for local paths).
        """
        report = reachable_report(sessions, opt_outs, conn_id or None)
        print(
            f"{report['reachable']} of {report['open_sessions']} open session(s) may be messaged; "
            f"{report['opted_out']} number(s) opted out."
        )
        return report

    report_reachable(land_sessions.output, land_opt_outs.output, DATA_CONN_ID)  # type: ignore[arg-type]
