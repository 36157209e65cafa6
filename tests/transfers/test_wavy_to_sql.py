"""
WavyToSqlOperator against the sandbox and two real databases: a throwaway PostgreSQL (COPY, psycopg 3 on
Airflow 3 and psycopg2 on Airflow 2) and SQLite through Airflow's own hook (batched inserts).
"""

from __future__ import annotations

import hashlib
import json
from datetime import UTC, datetime
from typing import TYPE_CHECKING, Any

import pytest

from airflow_provider_wavy.exceptions import (
    WavyDownloadError,
    WavySqlError,
    WavySqlHookError,
    WavyTimestampError,
)
from airflow_provider_wavy.sandbox import Scenario
from airflow_provider_wavy.transfers.wavy_to_sql import WavyToSqlOperator
from tests.conftest import SANDBOX_CUSTOMER, SANDBOX_TOKEN
from tests.transfers.sql_env import (
    SQL_CONN,
    T1,
    T2,
    Db,
    body_with,
    file_server,
    iso,
    load,
    make_context,
    new_table,
    phones,
)

if TYPE_CHECKING:
    from airflow_provider_wavy.sandbox import WavySandbox

#: A database error mid-load: the table refuses this phone (a CHECK on PostgreSQL, a trigger on SQLite).
REFUSED_PHONE = "5511000000666"
GUARD_SQL = {
    "postgres": ['ALTER TABLE {t} ADD CONSTRAINT no_666 CHECK ("phone" <> \'' + REFUSED_PHONE + "')"],
    "sqlite": [
        "CREATE TRIGGER {trigger} BEFORE INSERT ON {t} WHEN NEW.phone = '" + REFUSED_PHONE + "' "
        "BEGIN SELECT RAISE(ABORT, 'phone refused'); END"
    ],
}


# -- happy paths -------------------------------------------------------------------------------------------
@pytest.mark.parametrize(
    ("list_type", "scenario", "expected_type"),
    [
        pytest.param(None, Scenario(rows=40), "OPEN_SESSIONS", id="sessions"),
        pytest.param(
            None,
            Scenario(rows=30, crlf=True, bom=True, quote=True, delimiter=","),
            "OPEN_SESSIONS",
            id="sessions-crlf-bom-quoted-comma",
        ),
        pytest.param("OPTOUT", Scenario(rows=12), "OPTOUT", id="optout-list"),
        pytest.param(None, Scenario(rows=0), "OPEN_SESSIONS", id="header-only"),
    ],
)
def test_loads_the_file(
    sandbox: WavySandbox, db: Db, list_type: str | None, scenario: Scenario, expected_type: str
) -> None:
    if list_type:
        sandbox.list_scenarios = {list_type: scenario}
    else:
        sandbox.scenario = scenario
    body = sandbox.expected_bytes(list_type=list_type)
    table = new_table()
    result = load(table, list_type=list_type)
    rows = db.rows(table)
    assert sorted(r[4] for r in rows) == phones(body)
    assert {(r[0], r[1], r[2]) for r in rows} <= {(SANDBOX_CUSTOMER, None, expected_type)}
    assert all(r[5] is not None for r in rows)  # created_at
    assert result == {
        "table": table, "rows": scenario.rows, "snapshot_at": T1, "bad_timestamps": 0,
        "sha256": hashlib.sha256(body).hexdigest(), "mode": "snapshot", "list_type": expected_type,
    }  # fmt: skip


def test_extra_columns_go_to_extra_as_json(sandbox: WavySandbox, db: Db) -> None:
    sandbox.scenario = Scenario(rows=3, extra_columns=("name", "status"))
    table = new_table()
    load(table)
    extras = [r[6] for r in db.rows(table)]
    assert all(set(json.loads(e)) == {"name", "status"} for e in extras)


@pytest.mark.parametrize(
    ("mode", "second_snapshot", "expected_snapshots"),
    [
        pytest.param("snapshot", T1, {T1}, id="snapshot-same-moment-twice"),
        pytest.param("snapshot", T2, {T1, T2}, id="snapshot-two-moments"),
        pytest.param("replace", T2, {T2}, id="replace-keeps-latest"),
    ],
)
def test_modes_are_idempotent(
    sandbox: WavySandbox, db: Db, mode: str, second_snapshot: str, expected_snapshots: set[str]
) -> None:
    sandbox.scenario = Scenario(rows=20)
    table = new_table()
    load(table, mode=mode, snapshot_at=T1)
    once = db.rows(table)
    load(table, mode=mode, snapshot_at=second_snapshot)
    rows = db.rows(table)
    assert len(rows) == 20 * len(expected_snapshots)
    assert {iso(r[3]) for r in rows} == expected_snapshots
    if second_snapshot == T1:
        assert rows == once  # the same rows, no duplicates


def test_keys_do_not_touch_each_other(sandbox: WavySandbox, db: Db) -> None:
    """Another sub-account and a list in the same table keep their rows when the sessions are replaced."""
    sandbox.scenario = Scenario(rows=5)
    sandbox.list_scenarios = {"OPTOUT": Scenario(rows=4)}
    table = new_table()
    load(table, mode="replace", sub_account_id="77")
    load(table, mode="replace", list_type="OPTOUT")
    load(table, mode="replace")
    load(table, mode="replace", snapshot_at=T2)
    keys = [(r[1], r[2]) for r in db.rows(table)]
    assert sorted(set(keys), key=str) == sorted({("77", "OPEN_SESSIONS"), (None, "OPTOUT"),
                                                 (None, "OPEN_SESSIONS")}, key=str)  # fmt: skip
    assert len(keys) == 5 + 4 + 5


def test_snapshot_defaults_to_the_data_interval_end(sandbox: WavySandbox, db: Db) -> None:
    sandbox.scenario = Scenario(rows=2)
    table = new_table()
    operator = WavyToSqlOperator(task_id="to_sql", table=table, sql_conn_id=SQL_CONN)
    end = datetime(2026, 5, 11, 12, 30, tzinfo=UTC)
    result = operator.execute(make_context(data_interval_end=end))  # type: ignore[arg-type]
    assert result["snapshot_at"] == "2026-05-11T12:30:00Z"
    assert {iso(r[3]) for r in db.rows(table)} == {"2026-05-11T12:30:00Z"}


def test_phone_numbers_stay_exact_text(sandbox: WavySandbox, db: Db) -> None:
    served = ["0055119", "+5511999990000", "00", "5511\\t9", '55"11']
    body = "source;session_created_at\n" + "".join(
        f'"{p.replace(chr(34), chr(34) * 2)}";2026-05-11 06:00:00\n' for p in served
    )
    table = new_table()
    with file_server(body.encode()) as server:
        result = load(table, file_url=f"{server.url}/f.csv")
    rows = db.rows(table)
    assert sorted(r[4] for r in rows) == sorted(served)
    assert {iso(r[5]) for r in rows} == {"2026-05-11T09:00:00Z"}  # Sao Paulo, UTC-3
    text = json.dumps(result)
    assert SANDBOX_TOKEN not in text
    assert not any(p in text for p in served if len(p) > 4)


def test_null_mode_counts_bad_timestamps(sandbox: WavySandbox, db: Db) -> None:
    body = b"source;session_created_at\n551;2026-05-11T09:00:00Z\n552;yesterday\n553;\n554;31/02/2026\n"
    table = new_table()
    with file_server(body) as server:
        result = load(table, file_url=f"{server.url}/f.csv", on_bad_timestamp="null")
    assert result["bad_timestamps"] == 2
    assert {r[4]: r[5] is None for r in db.rows(table)} == {
        "551": False,
        "552": True,
        "553": True,
        "554": True,
    }


# -- faults: the table keeps exactly what it had -------------------------------------------------------------


@pytest.mark.parametrize(
    ("fault", "error"),
    [
        pytest.param(
            {"scenario": Scenario(rows=3000, truncate_at=40_000)}, WavyDownloadError, id="cut-short"
        ),
        pytest.param({"scenario": Scenario(file_body="html")}, WavyDownloadError, id="not-csv"),
        pytest.param({"body": body_with('551;"2026-05-11\n')}, WavyDownloadError, id="ends-inside-quotes"),
        pytest.param(
            {"body": body_with("551;2026-05-11;x;y\n")}, WavyDownloadError, id="row-wider-than-header"
        ),
        pytest.param({"body": body_with("551;not a time\n")}, WavyTimestampError, id="bad-timestamp-fail"),
        pytest.param({"body": body_with(";2026-05-11T09:00:00Z\n")}, WavyDownloadError, id="empty-phone"),
        pytest.param(
            {"body": body_with(f"{REFUSED_PHONE};2026-05-11T09:00:00Z\n"), "guard": True},
            WavySqlError,
            id="database-refuses-a-row",
        ),
    ],
)
def test_fault_leaves_the_previous_snapshot_intact(
    sandbox: WavySandbox, db: Db, fault: dict[str, Any], error: type[Exception]
) -> None:
    sandbox.scenario = Scenario(rows=30)
    table = new_table()
    load(table, mode="replace", snapshot_at=T1)
    if fault.get("guard"):
        db.run(*(s.format(t=f'"{table}"', trigger=f'"{table}_guard"') for s in GUARD_SQL[db.kind]))
    before = db.rows(table)
    assert len(before) == 30
    if "scenario" in fault:
        sandbox.scenario = fault["scenario"]
        with pytest.raises(error) as raised:
            load(table, mode="replace", snapshot_at=T2)
    else:
        with file_server(fault["body"]) as server, pytest.raises(error) as raised:
            load(table, mode="replace", snapshot_at=T2, file_url=f"{server.url}/f.csv")
    assert db.rows(table) == before
    message = str(raised.value)
    assert SANDBOX_TOKEN not in message
    assert "Traceback" not in message
    if error is WavySqlError:
        assert table in message
        assert "rolled back" in message


def test_the_documented_reachable_query_works(sandbox: WavySandbox, db: Db) -> None:
    from tests.transfers.test_sql_docs import reachable_query

    sessions = b"source;session_created_at\n5511900000001;2026-05-11T09:00:00Z\n5511900000002;\n"
    optouts = b"source;createdAt\n5511900000002;2026-01-01 10:00:00\n5511900000009;2026-01-01 10:00:00\n"
    db.run('DROP TABLE IF EXISTS "wavy_sessions"')
    for body, list_type in ((sessions, None), (optouts, "OPTOUT")):
        with file_server(body) as server:
            load("wavy_sessions", mode="replace", list_type=list_type, file_url=f"{server.url}/f.csv")
    rows = db.hook().get_records(reachable_query())
    assert [(r[0], r[1], r[2]) for r in rows] == [(SANDBOX_CUSTOMER, None, "5511900000001")]


@pytest.mark.parametrize(
    ("schema_sql", "table"),
    [
        pytest.param({"postgres": 'CREATE SCHEMA IF NOT EXISTS "Wavy Schema"', "sqlite": None},
                     {"postgres": "Wavy Schema.Sessions", "sqlite": "main.Sessions"}, id="schema-qualified"),
    ],
)  # fmt: skip
def test_schema_qualified_table(
    sandbox: WavySandbox, db: Db, schema_sql: dict[str, str | None], table: dict[str, str]
) -> None:
    sandbox.scenario = Scenario(rows=4)
    if schema_sql[db.kind]:
        db.run(schema_sql[db.kind] or "")
    name = table[db.kind]
    load(name)
    load(name)
    schema, _, bare = name.partition(".")
    quoted = f'"{schema}"."{bare}"'
    assert db.hook().get_records(f"SELECT COUNT(*) FROM {quoted}")[0][0] == 4  # noqa: S608


def test_hostile_table_name_is_quoted(sandbox: WavySandbox, db: Db) -> None:
    sandbox.scenario = Scenario(rows=3)
    victim = new_table()
    load(victim)
    hostile = f'x"; DROP TABLE {victim}; --'
    load(hostile)
    assert len(db.rows(victim)) == 3
    assert len(db.rows(hostile)) == 3


# -- arguments and hooks -------------------------------------------------------------------------------------


@pytest.mark.parametrize(
    ("kwargs", "message"),
    [
        pytest.param({"table": ""}, "table must be", id="empty-table"),
        pytest.param({"table": "a..b"}, "is not 'table' or 'schema.table'", id="empty-part"),
        pytest.param({"table": "a.b.c"}, "is not 'table' or 'schema.table'", id="three-parts"),
        pytest.param({"table": "a\x00b"}, "control character", id="nul"),
        pytest.param({"mode": "append"}, "mode must be", id="mode"),
        pytest.param({"on_bad_timestamp": "skip"}, "on_bad_timestamp must be", id="on-bad-timestamp"),
        pytest.param({"list_type": "GREYLIST"}, "list_type must be one of", id="list-type"),
        pytest.param({"source_timezone": "Mars/Olympus"}, "is not an IANA time zone", id="time-zone"),
    ],
)
def test_bad_arguments_fail_at_construction(kwargs: dict[str, Any], message: str) -> None:
    kwargs = {"table": "t", "sql_conn_id": SQL_CONN, **kwargs}
    with pytest.raises(ValueError, match=message):
        WavyToSqlOperator(task_id="to_sql", **kwargs)


def test_a_connection_that_is_not_a_database_fails_clearly(sandbox: WavySandbox) -> None:
    operator = WavyToSqlOperator(task_id="to_sql", table="t", sql_conn_id="wavy_default", snapshot_at=T1)
    with pytest.raises(WavySqlHookError, match="not a SQL database hook"):
        operator.execute(make_context())  # type: ignore[arg-type]


def test_outlet_asset_gets_the_summary(sandbox: WavySandbox, db: Db) -> None:
    from airflow.providers.common.compat.sdk import Asset

    sandbox.scenario = Scenario(rows=2)
    asset = Asset("wavy_sessions_table")
    table = new_table()
    operator = WavyToSqlOperator(task_id="to_sql", table=table, sql_conn_id=SQL_CONN, snapshot_at=T1,
                                 outlets=[asset])  # fmt: skip
    context = make_context()
    operator.execute(context)  # type: ignore[arg-type]
    assert context["outlet_events"][asset].extra["rows"] == 2


def test_unreachable_database_fails_clearly(sandbox: WavySandbox, monkeypatch: pytest.MonkeyPatch) -> None:
    from tests.pg_server import free_port

    secret = "pw-SECRET-4242"
    conn = {"conn_type": "postgres", "host": "127.0.0.1", "port": free_port(), "login": "u", "schema": "db"}
    conn["password"] = secret
    monkeypatch.setenv(f"AIRFLOW_CONN_{SQL_CONN.upper()}", json.dumps(conn))
    with pytest.raises(WavySqlError, match="rolled back") as raised:
        load(new_table())
    assert secret not in str(raised.value)
