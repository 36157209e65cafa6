"""
Who may be messaged today, as a PostgreSQL table: the open sessions minus the customers who opted out.

Every day this DAG:

1. **waits** for the open-sessions file and for the OPT-OUT list (``WavyOpenSessionsSensor`` and
   ``WavyListSensor``, deferrable: the triggerer polls, no worker slot is held);
2. **loads** each into its table with ``WavyToSqlOperator``, checked while it streams and committed in one
   transaction only once the whole file is verified (a cut download, a bad timestamp or a database error
   leaves the table exactly as it was):

   - the open sessions into ``wavy_open_sessions`` in mode ``"snapshot"``: one snapshot per day, stamped
     with the run's data interval end. A retry or a re-run of a day replaces that day's rows and only them;
     earlier days stay, for trends and audits (prune them with ``DELETE ... WHERE snapshot_at < ...``);
   - the OPT-OUT list into ``wavy_opt_outs`` in mode ``"replace"``: only the latest list matters (an
     opt-out holds until the customer opts in again), and a daily copy of the whole list would only grow;

3. **builds** ``wavy_reachable``, the day's open sessions whose phone number is not on the OPT-OUT list
   (numbers compared as digits), with ``SQLExecuteQueryOperator`` in one transaction: readers see the old
   set or the new one, never an empty or half-built table.

Configuration: the connections ``wavy_default`` and ``postgres_default`` (any PostgreSQL database the
workers reach, e.g. ``AIRFLOW_CONN_POSTGRES_DEFAULT='postgresql://user:password@db-host:5432/wavy'``);
``WAVY_POKE_INTERVAL`` and ``WAVY_RETRY_DELAY`` (seconds). Install ``airflow-provider-wavy[postgres]``.
Phone numbers are personal data: grant ``wavy_reachable`` to whoever sends, not to everyone.
"""

from __future__ import annotations

import os
from datetime import UTC, datetime, timedelta

from airflow.providers.common.compat.sdk import DAG
from airflow.providers.common.sql.operators.sql import SQLExecuteQueryOperator

from airflow_provider_wavy.sensors.wavy import WavyListSensor, WavyOpenSessionsSensor
from airflow_provider_wavy.transfers.wavy_to_sql import WavyToSqlOperator

POKE_INTERVAL = float(os.environ.get("WAVY_POKE_INTERVAL", "300"))
RETRY_DELAY = timedelta(seconds=float(os.environ.get("WAVY_RETRY_DELAY", "300")))
POSTGRES_CONN_ID = "postgres_default"

#: Statements run in order in one transaction (``autocommit=False``): PostgreSQL's DDL is transactional too.
BUILD_REACHABLE = [
    """
    CREATE TABLE IF NOT EXISTS wavy_reachable (
        customer_id text NOT NULL,
        sub_account_id text,
        phone text NOT NULL,
        session_created_at timestamp with time zone,
        snapshot_at timestamp with time zone NOT NULL
    )
    """,
    "DELETE FROM wavy_reachable",
    """
    INSERT INTO wavy_reachable (customer_id, sub_account_id, phone, session_created_at, snapshot_at)
    SELECT s.customer_id, s.sub_account_id, s.phone, s.created_at, s.snapshot_at
    FROM wavy_open_sessions AS s
    WHERE s.list_type = 'OPEN_SESSIONS'
      AND s.snapshot_at = %(snapshot_at)s
      AND NOT EXISTS (
          SELECT 1
          FROM wavy_opt_outs AS o
          WHERE o.list_type = 'OPTOUT'
            AND o.customer_id = s.customer_id
            AND regexp_replace(o.phone, '[^0-9]', '', 'g') = regexp_replace(s.phone, '[^0-9]', '', 'g')
      )
    """,
]

with DAG(
    dag_id="example_wavy_to_postgres",
    description="Open sessions and opt-outs into PostgreSQL; who may be messaged today as a table",
    schedule="@daily",
    start_date=datetime(2026, 1, 1, tzinfo=UTC),
    catchup=False,
    max_active_runs=1,
    default_args={"retries": 2, "retry_delay": RETRY_DELAY},
    tags=["wavy", "example", "sql"],
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
    load_sessions = WavyToSqlOperator(
        task_id="load_sessions",
        table="wavy_open_sessions",
        sql_conn_id=POSTGRES_CONN_ID,
        file_url=wait_for_sessions.output,  # type: ignore[arg-type]
        mode="snapshot",
    )
    load_opt_outs = WavyToSqlOperator(
        task_id="load_opt_outs",
        table="wavy_opt_outs",
        sql_conn_id=POSTGRES_CONN_ID,
        list_type="OPTOUT",
        file_url=wait_for_opt_outs.output,  # type: ignore[arg-type]
        mode="replace",
    )
    build_reachable = SQLExecuteQueryOperator(
        task_id="build_reachable",
        conn_id=POSTGRES_CONN_ID,
        sql=BUILD_REACHABLE,
        # The snapshot this run loaded (its summary's snapshot_at), bound as a parameter, never pasted in.
        parameters={"snapshot_at": "{{ ti.xcom_pull(task_ids='load_sessions')['snapshot_at'] }}"},
        autocommit=False,
        split_statements=False,
    )
    [load_sessions, load_opt_outs] >> build_reachable
