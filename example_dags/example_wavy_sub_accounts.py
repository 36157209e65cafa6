"""
Open sessions of several Wavy sub-accounts, one mapped task per sub-account.

Wavy files are per ``customerId`` and optional ``subAccountId``. Instead of copying the pipeline once per
sub-account, this DAG uses dynamic task mapping: the sensor is ``.expand``-ed over ``SUB_ACCOUNTS`` (one
deferred wait each), a small TaskFlow task pairs each sub-account with the file URL its sensor found, and
the download operator is ``.expand_kwargs``-ed over those pairs. Adding a sub-account is one line.

Files land in ``<wavy_data_dir>/open_sessions/<YYYY-MM-DD>/sub_account=<id>/`` (Airflow Variable
``wavy_data_dir``, default ``/tmp/wavy``: set it to object storage such as ``s3://bucket/wavy``, with the
Variable ``wavy_data_conn_id`` naming its connection, when tasks run on several machines; see
``example_wavy_daily``). The report reads the download summaries through XCom, not the files. Connection
``wavy_default`` gives the credentials and the ``customer_id``; ``WAVY_POKE_INTERVAL`` (seconds, default
300) how often the API is asked.
"""

from __future__ import annotations

import os
from datetime import UTC, datetime
from typing import Any

from airflow.providers.common.compat.sdk import DAG, task

from airflow_provider_wavy.data_location import data_location
from airflow_provider_wavy.operators.wavy import WavyOpenSessionsOperator
from airflow_provider_wavy.sensors.wavy import WavyOpenSessionsSensor

#: The sub-accounts to export, as Wavy knows them (the ``subAccountId`` request parameter).
SUB_ACCOUNTS = ["marketing", "support", "billing"]

POKE_INTERVAL = float(os.environ.get("WAVY_POKE_INTERVAL", "300"))

with DAG(
    dag_id="example_wavy_sub_accounts",
    description="Download the open-sessions file of every sub-account, with dynamic task mapping",
    schedule="@daily",
    start_date=datetime(2026, 1, 1, tzinfo=UTC),
    catchup=False,
    max_active_runs=1,
    user_defined_macros={"wavy_data_location": data_location},
    tags=["wavy", "example"],
    doc_md=__doc__,
) as dag:
    # One sensor per sub-account; the map index follows SUB_ACCOUNTS' order.
    wait_for_sessions = WavyOpenSessionsSensor.partial(
        task_id="wait_for_sessions",
        deferrable=True,
        poke_interval=POKE_INTERVAL,
        timeout=6 * 60 * 60,
    ).expand(sub_account_id=SUB_ACCOUNTS)

    @task
    def plan_downloads(file_urls: list[str], folder: str) -> list[dict[str, Any]]:
        """
        Pair each sub-account with its file URL and its own destination folder.

        :param file_urls: the sensors' file URLs, in map-index order (the order of ``SUB_ACCOUNTS``).
        :param folder: the day's folder (rendered from a template: the logical date and the Variable).
        """
        return [
            {
                "sub_account_id": sub_account_id,
                "file_url": file_url,
                "destination": f"{folder}/sub_account={sub_account_id}/",
            }
            for sub_account_id, file_url in zip(SUB_ACCOUNTS, file_urls, strict=True)
        ]

    downloads = plan_downloads(
        wait_for_sessions.output,  # type: ignore[arg-type]
        # Rendered on the worker; a local folder is refused where tasks run on several machines.
        folder="{{ wavy_data_location(var.value) }}/open_sessions/{{ ds }}",
    )

    download_sessions = WavyOpenSessionsOperator.partial(
        task_id="download_sessions", destination_conn_id="{{ var.value.get('wavy_data_conn_id', '') }}"
    ).expand_kwargs(downloads)

    @task
    def report_totals(summaries: list[dict[str, Any]]) -> dict[str, int]:
        """
        Log how many open sessions each sub-account has, and return the counts.

        :param summaries: the download summaries, in ``SUB_ACCOUNTS`` order.
        """
        totals = {
            sub_account_id: int(summary["rows"])
            for sub_account_id, summary in zip(SUB_ACCOUNTS, summaries, strict=True)
        }
        for sub_account_id, rows in totals.items():
            print(f"sub-account {sub_account_id}: {rows} open session(s)")
        return totals

    # The XComArg becomes the value at run time (mypy only sees the XComArg).
    report_totals(download_sessions.output)  # type: ignore[arg-type]
