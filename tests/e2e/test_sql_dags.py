"""
WavyToSqlOperator in a real Airflow (``airflow dags test``) against a real PostgreSQL and a SQLite file.

One Airflow home, one DAG, one run (Airflow's start-up costs seconds): per database, the loads, the same
loads again (same rows, no duplicates), then the faults (a download cut short, a bad timestamp, a database
error), each aimed at a table of its own, so that a damaged table names its fault. Tasks that count the
rows between the steps tell a duplicate from a fault.
"""

from __future__ import annotations

import json
import sqlite3
import textwrap
import time
from dataclasses import dataclass
from typing import TYPE_CHECKING, Any

import httpx
import pytest

from airflow_provider_wavy.sandbox import Scenario, WavySandbox, iter_csv_chunks, iter_list_chunks
from tests.conftest import SANDBOX_CUSTOMER, SANDBOX_TOKEN, SANDBOX_USER
from tests.e2e.airflow_runner import AirflowEnv

if TYPE_CHECKING:
    from collections.abc import Iterator
    from pathlib import Path

    from tests.pg_server import PgServer

pytestmark = pytest.mark.e2e

ROWS = 25
#: ``wavy_checked`` gets a file of SMALL_ROWS rows, then one of CHECKED_ROWS whose row REJECTED_ROW has the
#: phone its CHECK constraint refuses.
SMALL_ROWS, CHECKED_ROWS, REJECTED_ROW = 5, 10, 8
#: A second sandbox's CDN closes its files after this many bytes (of 901): the download cut short.
CUT_AT = 600
SNAPSHOT_AT = "2026-11-23T00:00:00Z"  # the data interval end of the @daily run at LOGICAL_DATE
DATABASES = ("pg", "sqlite")

SQL_DAG = """
from __future__ import annotations

from datetime import datetime, timezone

from airflow.providers.common.compat.sdk import DAG, task

from airflow_provider_wavy.transfers.wavy_to_sql import WavyToSqlOperator

START = datetime(2026, 1, 1, tzinfo=timezone.utc)
URLS = "{{ var.json.wavy_sql_urls.%s }}"
TABLES = ("wavy_sessions", "wavy_optout", "wavy_checked")


@task(trigger_rule="all_done")
def count(db: str) -> dict[str, list[int]]:
    \"\"\"Each table's rows and distinct phones, between the steps.\"\"\"
    from airflow.providers.common.compat.sdk import BaseHook

    hook = BaseHook.get_connection(f"wavy_{db}").get_hook()
    query = "SELECT count(*), count(DISTINCT phone) FROM {}"
    return {table: list(hook.get_first(query.format(table))) for table in TABLES}


def loads(db: str, step: str) -> list[WavyToSqlOperator]:
    \"\"\"The good loads: sessions (snapshot mode, from the API), OPT-OUT (replace), a small file.\"\"\"
    conn = f"wavy_{db}"
    return [
        WavyToSqlOperator(task_id=f"{step}_{db}_sessions", table="wavy_sessions", sql_conn_id=conn),
        WavyToSqlOperator(
            task_id=f"{step}_{db}_optout", table="wavy_optout", sql_conn_id=conn, list_type="OPTOUT",
            mode="replace",
        ),
        WavyToSqlOperator(
            task_id=f"{step}_{db}_checked", table="wavy_checked", sql_conn_id=conn, file_url=URLS % "small"
        ),
    ]


def faults(db: str) -> list[WavyToSqlOperator]:
    \"\"\"Each fault aims at a table of its own: a damaged table names its fault.\"\"\"
    conn = f"wavy_{db}"
    return [
        WavyToSqlOperator(
            task_id=f"{db}_cut_short", table="wavy_sessions", sql_conn_id=conn, file_url=URLS % "cut_short"
        ),
        WavyToSqlOperator(
            task_id=f"{db}_bad_timestamp", table="wavy_optout", sql_conn_id=conn, list_type="OPTOUT",
            mode="replace", on_bad_timestamp="fail", file_url=URLS % "bad_timestamp",
        ),
        WavyToSqlOperator(
            task_id=f"{db}_db_error", table="wavy_checked", sql_conn_id=conn, file_url=URLS % "checked"
        ),
    ]


# all_done: a step runs whatever the previous one did, so that one run shows every outcome.
with DAG(
    "wavy_sql", schedule="@daily", start_date=START, catchup=False,
    default_args={"retries": 0, "trigger_rule": "all_done"},
):
    for db in ("pg", "sqlite"):
        counted_first = count.override(task_id=f"counted_first_{db}")(db)
        counted_again = count.override(task_id=f"counted_again_{db}")(db)
        loads(db, "first") >> counted_first >> loads(db, "again") >> counted_again >> faults(db)
"""


@dataclass
class Setup:
    """The module's Airflow home, sandbox, databases and the environment of every run."""

    env: AirflowEnv
    sandbox: WavySandbox
    pg_uri: str
    sqlite_path: Path
    run_env: dict[str, Any]

    def rows(self, db: str, table: str) -> list[tuple[Any, ...]]:
        """Every row of a table, timestamps as ISO 8601 UTC text, sorted."""
        columns = "customer_id, sub_account_id, list_type, snapshot_at, phone, created_at"
        if db == "sqlite":
            with sqlite3.connect(self.sqlite_path) as conn:
                return sorted(conn.execute(f"SELECT {columns} FROM {table}").fetchall())  # noqa: S608
        import psycopg

        iso = "to_char({} AT TIME ZONE 'UTC', 'YYYY-MM-DD\"T\"HH24:MI:SS\"Z\"')"
        columns = columns.replace("snapshot_at", iso.format("snapshot_at"))
        columns = columns.replace("created_at", iso.format("created_at"))
        with psycopg.connect(self.pg_uri) as conn:
            return sorted(conn.execute(f"SELECT {columns} FROM {table}").fetchall())  # noqa: S608


def _issue(sandbox: WavySandbox, path: str) -> str:
    """Ask the sandbox's API for a file URL (as the operator would); return it."""
    headers = {"UserName": SANDBOX_USER, "authenticationToken": SANDBOX_TOKEN}
    answer = httpx.get(
        f"{sandbox.base_url}{path}", params={"customerId": SANDBOX_CUSTOMER}, headers=headers, timeout=30
    ).json()
    return str(answer.get("file_url") or answer["data"])


def _file_urls(sandbox: WavySandbox, cut: WavySandbox) -> dict[str, str]:
    """Issue the files the faults read (an issued file keeps its scenario's content), on two sandboxes."""
    urls = {"cut_short": _issue(cut, "/v1/session")}
    for name, rows in (("small", SMALL_ROWS), ("checked", CHECKED_ROWS)):
        sandbox.scenario = Scenario(rows=rows)
        urls[name] = _issue(sandbox, "/v1/session")
    sandbox.list_scenarios = {"OPTOUT": Scenario(rows=ROWS, bad_timestamp_rows=(7,))}
    urls["bad_timestamp"] = _issue(sandbox, "/v1/list/OPTOUT")
    sandbox.scenario = Scenario(rows=ROWS)
    sandbox.list_scenarios = {"OPTOUT": Scenario(rows=ROWS)}
    return urls


def _create_checked_tables(pg_uri: str, sqlite_path: Path, rejected: str) -> None:
    """Create ``wavy_checked`` as the operator would, plus a CHECK that refuses one phone number."""
    from airflow_provider_wavy.transfers._table import COLUMNS, POSTGRES_TYPES, SQLITE_TYPES

    for types, run in ((POSTGRES_TYPES, "pg"), (SQLITE_TYPES, "sqlite")):
        body = ", ".join(f"{column} {types[column]}" for column in COLUMNS)
        ddl = f"CREATE TABLE wavy_checked ({body}, CHECK (phone <> '{rejected}'))"
        if run == "sqlite":
            with sqlite3.connect(sqlite_path) as conn:
                conn.execute(ddl)
        else:
            import psycopg

            with psycopg.connect(pg_uri) as conn:
                conn.execute(ddl)


@pytest.fixture(scope="module")
def setup(pg_server: PgServer, tmp_path_factory: pytest.TempPathFactory) -> Iterator[Setup]:
    """Migrate one Airflow home, start the sandbox, create the PostgreSQL database and the SQLite file."""
    env = AirflowEnv(tmp_path_factory.mktemp("sql-home"))
    env.migrate()
    env.write_dag("wavy_sql_dags.py", textwrap.dedent(SQL_DAG))
    pg_uri = pg_server.create_database("wavy_sql_e2e")
    sqlite_path = tmp_path_factory.mktemp("sqlite") / "wavy.db"
    cut_short = Scenario(rows=ROWS, truncate_at=CUT_AT)
    with (
        WavySandbox(username=SANDBOX_USER, token=SANDBOX_TOKEN, customer_id=SANDBOX_CUSTOMER) as sandbox,
        WavySandbox(SANDBOX_USER, SANDBOX_TOKEN, customer_id=SANDBOX_CUSTOMER, scenario=cut_short) as cut,
    ):
        _create_checked_tables(pg_uri, sqlite_path, _file_rows(CHECKED_ROWS)[REJECTED_ROW][4])
        run_env = {
            "AIRFLOW_CONN_WAVY_DEFAULT": sandbox.connection_json(),
            "AIRFLOW_CONN_WAVY_PG": pg_uri,
            "AIRFLOW_CONN_WAVY_SQLITE": json.dumps({"conn_type": "sqlite", "host": str(sqlite_path)}),
            "AIRFLOW_VAR_WAVY_SQL_URLS": json.dumps(_file_urls(sandbox, cut)),
        }
        yield Setup(env, sandbox, pg_uri, sqlite_path, run_env)


def _expected(rows: int, list_type: str | None = None) -> list[tuple[Any, ...]]:
    """The rows a load of the sandbox's file must give (sorted), computed from the bytes it serves."""
    return sorted(_file_rows(rows, list_type))


def _file_rows(rows: int, list_type: str | None = None) -> list[tuple[Any, ...]]:
    """The table rows of the sandbox's file, in the file's order."""
    scenario = Scenario(rows=rows)
    if list_type is None:
        data = b"".join(iter_csv_chunks(SANDBOX_CUSTOMER, None, scenario))
    else:
        data = b"".join(iter_list_chunks(SANDBOX_CUSTOMER, None, list_type, scenario))
    found = []
    for line in data.decode().splitlines()[1:]:
        phone, created = line.split(";")
        # The lists write São Paulo wall-clock time, stored as UTC: the normaliser's own tests check the
        # conversion; here the list's times are only checked to be there.
        found.append((SANDBOX_CUSTOMER, None, list_type or "OPEN_SESSIONS", SNAPSHOT_AT, phone,
                      None if list_type else created))  # fmt: skip
    return found


def _check_tables(setup: Setup, db: str) -> None:
    """Each table holds the first load's rows exactly: nothing more, nothing less, no duplicate."""
    assert setup.rows(db, "wavy_sessions") == _expected(ROWS), db
    optout = setup.rows(db, "wavy_optout")
    assert [row[:5] for row in optout] == [row[:5] for row in _expected(ROWS, "OPTOUT")], db
    assert all(row[5] and row[5].endswith("Z") for row in optout), optout[:3]
    assert setup.rows(db, "wavy_checked") == _expected(SMALL_ROWS), db


def test_load_twice_then_faults_leave_every_table_as_it_was(setup: Setup) -> None:
    """Both databases: load, load again (same rows), then three faults that each change nothing."""
    started = time.monotonic()
    run = setup.env.dags_test("wavy_sql", **setup.run_env)
    print(f"airflow dags test wavy_sql: {time.monotonic() - started:.1f} s")
    output = run.output
    expected_states = {
        f"{step}_{db}_{table}": "success"
        for step in ("first", "again")
        for db in DATABASES
        for table in ("sessions", "optout", "checked")
    }
    expected_states.update(
        {f"counted_{step}_{db}": "success" for step in ("first", "again") for db in DATABASES}
    )
    expected_states.update(
        {
            f"{db}_{fault}": "failed"
            for db in DATABASES
            for fault in ("cut_short", "bad_timestamp", "db_error")
        }
    )
    assert run.states == expected_states, output[-5000:]
    counts = {"wavy_sessions": [ROWS, ROWS], "wavy_optout": [ROWS, ROWS], "wavy_checked": [SMALL_ROWS] * 2}
    for db in DATABASES:
        for step in ("first", "again"):
            summary = run.xcom(f"{step}_{db}_sessions")
            assert (summary["rows"], summary["snapshot_at"], summary["mode"]) == (
                ROWS,
                SNAPSHOT_AT,
                "snapshot",
            )
            assert run.xcom(f"{step}_{db}_optout")["list_type"] == "OPTOUT"
            # Loading again replaced the rows: as many as the file has, each phone once.
            assert run.xcom(f"counted_{step}_{db}") == counts, (db, step)
        _check_tables(setup, db)
    assert output.count(f"was cut short: the file host closed the connection after {CUT_AT} of") >= 2
    assert output.count("9999-99-99 99:99:99") >= len(DATABASES), output[-5000:]
    assert "CHECK constraint failed" in output  # SQLite's words
    assert "violates check constraint" in output  # PostgreSQL's
    assert SANDBOX_TOKEN not in output
