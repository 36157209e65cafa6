"""
One load as one transaction: delete the key's rows, stream the new ones in, commit only once verified.

Any failure (the download cut short, the CSV, a timestamp, the database) rolls back before it is raised:
readers never see a half snapshot and the table keeps exactly the rows it had.
"""

from __future__ import annotations

import contextlib
from dataclasses import dataclass
from typing import TYPE_CHECKING, Any

from airflow_provider_wavy.transfers import _generic, _postgres
from airflow_provider_wavy.transfers._table import (
    GENERIC_TYPES,
    POSTGRES_TYPES,
    SQLITE_TYPES,
    Statements,
    delete_params,
    quote_with_format,
)

if TYPE_CHECKING:
    from collections.abc import Callable, Iterator

    from airflow_provider_wavy.transfers._rows import Row


@dataclass(frozen=True)
class LoadKey:
    """What one load replaces: the key's rows (with ``snapshot_at`` in snapshot mode)."""

    customer: str
    sub_account: str | None
    list_type: str
    snapshot_at: str
    with_snapshot: bool


class TableLoad:
    """
    A load into one table through one DB-API connection of a ``DbApiHook``.

    :param hook: the ``DbApiHook``.
    :param parts: the table's name parts, unquoted.
    :param create_table: create the table and its index when missing (committed on their own first).
    """

    def __init__(self, hook: Any, parts: tuple[str, ...], *, create_table: bool) -> None:
        self._hook = hook
        self._parts = parts
        self._create_table = create_table
        self._conn: Any = None
        self.kind = "generic"
        self.statements: Statements | None = None

    def __enter__(self) -> TableLoad:
        conn = self._conn = self._hook.get_conn()
        if _postgres.driver_of(conn):
            self.kind = "postgres"
            self.statements = Statements(self._parts, _postgres.quoter(conn), POSTGRES_TYPES, "%s")
            conn.autocommit = False
        else:
            self.kind = "sqlite" if _generic.is_sqlite(conn) else "generic"
            types = SQLITE_TYPES if self.kind == "sqlite" else GENERIC_TYPES
            escape_format = str(getattr(self._hook, "escape_word_format", None) or '"{}"')
            quote = lambda word: quote_with_format(word, escape_format)  # noqa: E731
            self.statements = Statements(self._parts, quote, types, str(self._hook.placeholder))
            if getattr(self._hook, "supports_autocommit", False):
                self._hook.set_autocommit(conn, False)
        return self

    def __exit__(self, *exc_info: object) -> None:
        conn, self._conn = self._conn, None
        if conn is not None:
            if exc_info[0] is not None:
                with contextlib.suppress(Exception):
                    conn.rollback()
            with contextlib.suppress(Exception):
                conn.close()

    def prepare(self) -> None:
        """Create the table and its index when missing, in their own committed transaction."""
        if not self._create_table:
            return
        assert self.statements is not None
        with contextlib.closing(self._conn.cursor()) as cursor:
            if self.kind == "postgres":
                # CREATE INDEX IF NOT EXISTS takes a SHARE lock even when the index exists: it would wait
                # for every load in progress into the table, whatever its key.
                cursor.execute("SELECT to_regclass(%s) IS NOT NULL", (self.statements.table,))
                if cursor.fetchone()[0]:
                    self._conn.rollback()
                    return
            cursor.execute(self.statements.create_table())
            cursor.execute(self.statements.create_index(qualify_index=self.kind == "sqlite"))
        self._conn.commit()

    def load(self, key: LoadKey, rows: Iterator[Row], before_commit: Callable[[], None]) -> None:
        """
        Replace the key's rows by ``rows`` in one transaction; ``before_commit`` may still refuse.

        :raises BaseException: anything, after the rollback.
        """
        statements = self.statements
        assert statements is not None
        snapshot: object = key.snapshot_at
        if self.kind != "sqlite":
            snapshot = _generic.as_datetime(key.snapshot_at)
        params = delete_params(
            key.customer, key.sub_account, key.list_type, snapshot, with_snapshot=key.with_snapshot
        )
        delete = statements.delete(with_snapshot=key.with_snapshot, sub_account=key.sub_account is not None)
        try:
            with contextlib.closing(self._conn.cursor()) as cursor:
                if self.kind == "postgres":
                    self._lock(cursor, key)
                cursor.execute(delete, params)
                if self.kind == "postgres":
                    _postgres.copy_rows(cursor, statements.copy(), rows)
                else:
                    _generic.insert_rows(
                        cursor, statements.insert(), rows, text_timestamps=self.kind == "sqlite"
                    )
            before_commit()
            self._conn.commit()
        except BaseException:
            with contextlib.suppress(Exception):
                self._conn.rollback()
            raise

    def _lock(self, cursor: Any, key: LoadKey) -> None:
        # Two loads of one key at once would each delete what the other has not committed yet and both
        # insert: a transaction-scoped advisory lock makes the second wait for the first (released at
        # COMMIT or ROLLBACK, nothing outlives the transaction).
        name = "\x1f".join([".".join(self._parts), key.customer, key.sub_account or "", key.list_type])
        cursor.execute("SELECT pg_advisory_xact_lock(hashtextextended(%s, 0))", ("wavy-to-sql\x1f" + name,))


__all__ = ["LoadKey", "TableLoad"]
