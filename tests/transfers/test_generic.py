"""The generic path's value binding, on a real DB-API driver (Python's sqlite3) without Airflow."""

from __future__ import annotations

import sqlite3
from datetime import UTC, datetime

import pytest

from airflow_provider_wavy.transfers._generic import BATCH_ROWS, as_datetime, insert_rows


@pytest.mark.parametrize(
    ("text_timestamps", "expected_created"),
    [
        pytest.param(True, "2026-05-11T09:00:00Z", id="sqlite-text"),
        # Other drivers get aware UTC datetimes; sqlite3's own adapter writes them as ISO text with +00:00.
        pytest.param(False, "2026-05-11 09:00:00+00:00", id="datetime-objects"),
    ],
)
def test_rows_are_inserted_in_batches(text_timestamps: bool, expected_created: str) -> None:
    conn = sqlite3.connect(":memory:")
    conn.execute("CREATE TABLE t (c, s, l, snap, phone, created, extra)")
    rows = [("1", None, "OPEN_SESSIONS", "2026-05-12T00:00:00Z", f"+55{n:011d}", "2026-05-11T09:00:00Z", None)
            for n in range(BATCH_ROWS + 7)]  # fmt: skip
    insert_rows(
        conn.cursor(),
        "INSERT INTO t VALUES (?, ?, ?, ?, ?, ?, ?)",
        iter(rows),
        text_timestamps=text_timestamps,
    )
    conn.commit()
    stored = conn.execute("SELECT phone, created FROM t ORDER BY phone").fetchall()
    assert len(stored) == BATCH_ROWS + 7
    assert stored[0] == ("+5500000000000", expected_created)


@pytest.mark.parametrize(
    ("text", "expected"),
    [
        pytest.param(None, None, id="none"),
        pytest.param("2026-05-11T09:00:00Z", datetime(2026, 5, 11, 9, tzinfo=UTC), id="z"),
        pytest.param(
            "2026-05-11T09:00:00.473Z", datetime(2026, 5, 11, 9, 0, 0, 473000, tzinfo=UTC), id="fraction"
        ),
    ],
)
def test_as_datetime(text: str | None, expected: datetime | None) -> None:
    assert as_datetime(text) == expected
