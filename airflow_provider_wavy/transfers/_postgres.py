"""
PostgreSQL's fast path: ``COPY ... FROM STDIN`` fed row by row from the verified download.

psycopg 3 (Airflow 3's postgres provider) writes through ``cursor.copy()``; psycopg2 (Airflow 2's) reads a
file-like object through ``copy_expert``. Either way the data goes to the server as it arrives: memory stays
flat whatever the file's size.
"""

from __future__ import annotations

from typing import TYPE_CHECKING, Any

if TYPE_CHECKING:
    from collections.abc import Callable, Iterator

    from airflow_provider_wavy.transfers._rows import Row

#: COPY's text format: backslash, tab, LF and CR inside a value are escaped.
_ESCAPES = str.maketrans({"\\": "\\\\", "\t": "\\t", "\n": "\\n", "\r": "\\r"})
#: COPY's NULL.
_NULL = "\\N"
#: Rows are sent in writes of about this many bytes.
_WRITE_SIZE = 256 * 1024


def driver_of(conn: Any) -> str | None:
    """Return ``"psycopg"`` or ``"psycopg2"`` for a PostgreSQL connection of either driver, else None."""
    module = type(conn).__module__.split(".")[0]
    return module if module in ("psycopg", "psycopg2") else None


def quoter(conn: Any) -> Callable[[str], str]:
    """Return the driver's own identifier quoting for this connection."""
    if driver_of(conn) == "psycopg":
        from psycopg import sql

        return lambda word: sql.Identifier(word).as_string(conn)
    from psycopg2.extensions import quote_ident  # type: ignore[import-untyped]

    return lambda word: str(quote_ident(word, conn))


def _escaped(value: str | None) -> str:
    return _NULL if value is None else value.translate(_ESCAPES)


def copy_text(rows: Iterator[Row]) -> Iterator[bytes]:
    """
    Yield COPY text-format data for the rows, in blocks of about ``_WRITE_SIZE`` bytes.

    Every row of a load shares its key (customer, sub-account, list type, snapshot), escaped once;
    ``created_at`` is the timestamp normaliser's ISO text or None, which needs no escaping.
    """
    lines: list[str] = []
    size = 0
    prefix: str | None = None
    escapes = _ESCAPES
    for customer, sub_account, list_type, snapshot_at, phone, created_at, extra in rows:
        if prefix is None:
            prefix = "\t".join(map(_escaped, (customer, sub_account, list_type, snapshot_at))) + "\t"
        line = (
            f"{prefix}{phone.translate(escapes)}\t{created_at or _NULL}\t"
            f"{_NULL if extra is None else extra.translate(escapes)}\n"
        )
        lines.append(line)
        size += len(line)
        if size >= _WRITE_SIZE:
            yield "".join(lines).encode()
            lines.clear()
            size = 0
    if lines:
        yield "".join(lines).encode()


class _Reader:
    """A file-like view of blocks, for psycopg2's ``copy_expert``; it remembers what the source raised."""

    def __init__(self, blocks: Iterator[bytes]) -> None:
        self._blocks = blocks
        self._rest = b""
        self.error: BaseException | None = None

    def read(self, size: int = -1) -> bytes:
        try:
            while not self._rest:
                self._rest = next(self._blocks)
        except StopIteration:
            return b""
        except BaseException as error:
            self.error = error
            raise
        if size < 0 or size >= len(self._rest):
            block, self._rest = self._rest, b""
            return block
        block, self._rest = self._rest[:size], self._rest[size:]
        return block


def copy_rows(cursor: Any, sql: str, rows: Iterator[Row]) -> None:
    """
    Run ``sql`` (a ``COPY ... FROM STDIN``) with the rows as its data, inside the caller's transaction.

    :raises BaseException: what reading the rows raised (download, verification, timestamps), as it was;
        or the driver's error.
    """
    blocks = copy_text(rows)
    if hasattr(cursor, "copy"):  # psycopg 3
        with cursor.copy(sql) as copy:
            for block in blocks:
                copy.write(block)
        return
    reader = _Reader(blocks)
    try:
        cursor.copy_expert(sql, reader, size=_WRITE_SIZE)
    except BaseException:
        # psycopg2 reports a failing read() as its own error: raise the source's instead.
        if reader.error is not None:
            raise reader.error from None
        raise


__all__ = ["copy_rows", "copy_text", "driver_of", "quoter"]
