"""WavyToSqlOperator under load: concurrent runs of one key, and memory whatever the file's size."""

from __future__ import annotations

import time
from typing import TYPE_CHECKING, Any

import pytest

from airflow_provider_wavy.sandbox import Scenario
from airflow_provider_wavy.transfers.wavy_to_sql import WavyToSqlOperator
from tests.hostile import answer, serve
from tests.transfers.sql_env import (
    SQL_CONN,
    T1,
    Db,
    body_with,
    file_server,
    load,
    make_context,
    new_table,
)

if TYPE_CHECKING:
    from collections.abc import Callable

    from airflow_provider_wavy.sandbox import WavySandbox


def test_concurrent_loads_of_one_key_leave_one_snapshot(sandbox: WavySandbox, db: Db) -> None:
    """A second run of the same key while the first is mid-COPY waits for it, then replaces its rows."""
    import threading

    if db.kind != "postgres":
        pytest.skip("SQLite serialises writers itself (the second waits on the database lock or fails)")
    whole = answer(200, body_with(""), [("Content-Type", "text/csv")])
    half = len(whole) // 2

    def stalled(_request: Any) -> Any:
        yield whole[:half]
        yield 2.0
        yield whole[half:]

    table = new_table()
    errors: list[BaseException] = []
    with serve(stalled) as slow, file_server(body_with("")) as fast:
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
