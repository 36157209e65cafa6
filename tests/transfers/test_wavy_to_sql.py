"""
WavyToSqlOperator against the sandbox and two real databases: a throwaway PostgreSQL (COPY, psycopg 3 on
Airflow 3 and psycopg2 on Airflow 2) and SQLite through Airflow's own hook (batched inserts).
"""

from __future__ import annotations

import csv
import hashlib
import io
import json
import time
import uuid
from collections import defaultdict
from dataclasses import dataclass
from datetime import UTC, datetime
from types import SimpleNamespace
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
from tests.hostile import always, answer, serve

if TYPE_CHECKING:
    from collections.abc import Callable

    from airflow_provider_wavy.sandbox import WavySandbox

SQL_CONN = "wavy_sql_test"
T1 = "2026-05-11T09:00:00Z"
T2 = "2026-05-12T09:00:00Z"
#: A database error mid-load: the table refuses this phone (a CHECK on PostgreSQL, a trigger on SQLite).
REFUSED_PHONE = "5511000000666"
GUARD_SQL = {
    "postgres": ['ALTER TABLE {t} ADD CONSTRAINT no_666 CHECK ("phone" <> \'' + REFUSED_PHONE + "')"],
    "sqlite": [
        "CREATE TRIGGER {trigger} BEFORE INSERT ON {t} WHEN NEW.phone = '" + REFUSED_PHONE + "' "
        "BEGIN SELECT RAISE(ABORT, 'phone refused'); END"
    ],
}


@dataclass
class Db:
    """One database under test, reached through its Airflow connection ``wavy_sql_test``."""

    kind: str

    def hook(self) -> Any:
        from airflow.providers.common.compat.sdk import BaseHook

        return BaseHook.get_connection(SQL_CONN).get_hook()  # type: ignore[no-untyped-call]

    def rows(self, table: str) -> list[tuple[Any, ...]]:
        """Every row, in a stable order, as the database returns it (the byte-for-byte comparison)."""
        quoted = '"' + table.replace('"', '""') + '"'
        cols = "customer_id, sub_account_id, list_type, snapshot_at, phone, created_at, extra"
        extra = "extra::text" if self.kind == "postgres" else "extra"
        select = cols.replace("extra", extra)
        query = f"SELECT {select} FROM {quoted} ORDER BY {select}"  # noqa: S608 - a test's own names
        records = self.hook().get_records(query)
        return [tuple(r) for r in records]

    def run(self, *statements: str) -> None:
        hook = self.hook()
        conn = hook.get_conn()
        try:
            cur = conn.cursor()
            for statement in statements:
                cur.execute(statement)
            conn.commit()
        finally:
            conn.close()


@pytest.fixture(params=["postgres", "sqlite"])
def db(request: pytest.FixtureRequest, monkeypatch: pytest.MonkeyPatch, tmp_path: Any) -> Db:
    if request.param == "postgres":
        server = request.getfixturevalue("pg_server")
        server.create_database("wavy_sql")
        conn = {"conn_type": "postgres", "host": server.host, "port": server.port, "login": server.user,
                "schema": "wavy_sql"}  # fmt: skip
    else:
        conn = {"conn_type": "sqlite", "host": str(tmp_path / "wavy.sqlite")}
    monkeypatch.setenv(f"AIRFLOW_CONN_{SQL_CONN.upper()}", json.dumps(conn))
    return Db(request.param)


def new_table() -> str:
    return f"wavy_{uuid.uuid4().hex[:10]}"


def make_context(**extra: Any) -> dict[str, Any]:
    events: defaultdict[Any, SimpleNamespace] = defaultdict(lambda: SimpleNamespace(extra={}))
    return {"run_id": "manual__2026-05-11", "outlet_events": events, **extra}


def load(table: str, **kwargs: Any) -> dict[str, Any]:
    kwargs.setdefault("snapshot_at", T1)
    operator = WavyToSqlOperator(task_id="to_sql", table=table, sql_conn_id=SQL_CONN, **kwargs)
    result: dict[str, Any] = operator.execute(make_context())  # type: ignore[arg-type]
    return result


def phones(body: bytes) -> list[str]:
    text = body.decode("utf-8-sig")
    reader = csv.reader(io.StringIO(text), delimiter=";" if ";" in text.partition("\n")[0] else ",")
    next(reader)
    return sorted(row[0] for row in reader if row)


def file_server(body: bytes) -> Any:
    return serve(always(answer(200, body, [("Content-Type", "text/csv")])))


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
    assert {_iso(r[3]) for r in rows} == expected_snapshots
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
    assert {_iso(r[3]) for r in db.rows(table)} == {"2026-05-11T12:30:00Z"}


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
    assert {_iso(r[5]) for r in rows} == {"2026-05-11T09:00:00Z"}  # Sao Paulo, UTC-3
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

GOOD_ROWS = "".join(f"55119{n:08d};2026-05-11T09:00:00Z\n" for n in range(50))


def _body(last_lines: str) -> bytes:
    return ("source;session_created_at\n" + GOOD_ROWS + last_lines).encode()


@pytest.mark.parametrize(
    ("fault", "error"),
    [
        pytest.param(
            {"scenario": Scenario(rows=3000, truncate_at=40_000)}, WavyDownloadError, id="cut-short"
        ),
        pytest.param({"scenario": Scenario(file_body="html")}, WavyDownloadError, id="not-csv"),
        pytest.param({"body": _body('551;"2026-05-11\n')}, WavyDownloadError, id="ends-inside-quotes"),
        pytest.param({"body": _body("551;2026-05-11;x;y\n")}, WavyDownloadError, id="row-wider-than-header"),
        pytest.param({"body": _body("551;not a time\n")}, WavyTimestampError, id="bad-timestamp-fail"),
        pytest.param({"body": _body(";2026-05-11T09:00:00Z\n")}, WavyDownloadError, id="empty-phone"),
        pytest.param(
            {"body": _body(f"{REFUSED_PHONE};2026-05-11T09:00:00Z\n"), "guard": True},
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


def _iso(value: Any) -> str | None:
    """A timestamp as the database returned it (datetime or text) in ISO UTC text."""
    if value is None or isinstance(value, str):
        return value
    return str(value.astimezone(UTC).strftime("%Y-%m-%dT%H:%M:%SZ"))


def test_concurrent_loads_of_one_key_leave_one_snapshot(sandbox: WavySandbox, db: Db) -> None:
    """A second run of the same key while the first is mid-COPY waits for it, then replaces its rows."""
    import threading

    if db.kind != "postgres":
        pytest.skip("SQLite serialises writers itself (the second waits on the database lock or fails)")
    whole = answer(200, _body(""), [("Content-Type", "text/csv")])
    half = len(whole) // 2

    def stalled(_request: Any) -> Any:
        yield whole[:half]
        yield 2.0
        yield whole[half:]

    table = new_table()
    errors: list[BaseException] = []
    with serve(stalled) as slow, file_server(_body("")) as fast:
        operator = WavyToSqlOperator(
            task_id="to_sql", table=table, sql_conn_id=SQL_CONN, snapshot_at=T1, file_url=f"{slow.url}/f.csv"
        )
        # Airflow's guard against nested execute() keeps per-thread state that only the main thread has.
        execute = getattr(WavyToSqlOperator.execute, "__wrapped__", WavyToSqlOperator.execute)
        first = threading.Thread(target=lambda: _catch(errors, lambda: execute(operator, make_context())))  # type: ignore[arg-type]
        first.start()
        deadline = time.monotonic() + 30
        while not slow.requests and time.monotonic() < deadline:
            time.sleep(0.05)
        time.sleep(0.5)  # the first load has deleted and is inside its COPY
        load(table, file_url=f"{fast.url}/f.csv")
        first.join(timeout=60)
    assert not errors
    assert len(db.rows(table)) == 50


def _catch(errors: list[BaseException], work: Callable[[], object]) -> None:
    try:
        work()
    except BaseException as error:  # noqa: BLE001 - reported by the test
        errors.append(error)


def test_memory_stays_flat_whatever_the_file_size(sandbox: WavySandbox, db: Db) -> None:
    """A file four times larger does not raise Python's peak allocations: nothing holds the file."""
    import tracemalloc

    if db.kind != "postgres":
        pytest.skip("the COPY fast path is PostgreSQL's; inserts are batched the same way elsewhere")
    peaks, sizes = {}, {}
    # What a process does once (imports, the checker's and the time zone's tables) is not the file's cost.
    sandbox.scenario = Scenario(rows=20_000)
    load(new_table())
    # The file is served whole from memory made before tracing (the sandbox would trace its own work).
    for rows in (30_000, 90_000):
        sandbox.scenario = Scenario(rows=rows)
        body = sandbox.expected_bytes()
        sizes[rows] = len(body)
        with file_server(body) as server:
            tracemalloc.start()
            try:
                assert load(new_table(), file_url=f"{server.url}/f.csv")["rows"] == rows
                peaks[rows] = tracemalloc.get_traced_memory()[1]
            finally:
                tracemalloc.stop()
    # Holding the file would add the 2 MiB between the two files.
    assert sizes[90_000] - sizes[30_000] > 2 * 2**20
    assert peaks[90_000] < peaks[30_000] + 2**20, (peaks, sizes)
