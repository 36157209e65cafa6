"""Any other common-sql ``DbApiHook``: batched ``executemany`` inserts in the load's transaction."""

from __future__ import annotations

import itertools
from datetime import datetime
from typing import TYPE_CHECKING, Any

if TYPE_CHECKING:
    from collections.abc import Iterator

    from airflow_provider_wavy.transfers._rows import Row

#: Rows per ``executemany``: large enough to amortise round trips, small enough to keep memory flat.
BATCH_ROWS = 5000


def is_sqlite(conn: Any) -> bool:
    """Tell whether a DB-API connection is Python's ``sqlite3``."""
    return type(conn).__module__.split(".")[0] == "sqlite3"


def as_datetime(iso: str | None) -> datetime | None:
    """Turn ISO 8601 UTC text (``...Z``) into an aware datetime, for drivers with a timestamp type."""
    return None if iso is None else datetime.fromisoformat(iso.replace("Z", "+00:00"))


def _typed(rows: Iterator[Row]) -> Iterator[tuple[Any, ...]]:
    for customer, sub_account, list_type, snapshot_at, phone, created_at, extra in rows:
        yield (
            customer,
            sub_account,
            list_type,
            as_datetime(snapshot_at),
            phone,
            as_datetime(created_at),
            extra,
        )


def insert_rows(cursor: Any, sql: str, rows: Iterator[Row], *, text_timestamps: bool) -> None:
    """
    Insert the rows with ``executemany`` in batches of :data:`BATCH_ROWS`, inside the caller's transaction.

    :param text_timestamps: bind timestamps as ISO 8601 UTC text (SQLite) rather than datetimes.
    """
    source: Iterator[tuple[Any, ...]] = rows if text_timestamps else _typed(rows)
    while batch := list(itertools.islice(source, BATCH_ROWS)):
        cursor.executemany(sql, batch)


__all__ = ["BATCH_ROWS", "as_datetime", "insert_rows", "is_sqlite"]
