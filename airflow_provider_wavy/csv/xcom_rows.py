"""
Parse a verified export CSV into XCom rows, bounded by the size of what they would return.

Kept free of heavy imports at module level (``csv`` and ``io`` are imported when rows are parsed): the
operator module re-exports :func:`parse_rows` and must stay cheap to import when a DAG file is parsed.
"""

from __future__ import annotations

from typing import TYPE_CHECKING, Final, cast

if TYPE_CHECKING:
    from collections.abc import Iterator, Sequence

#: Rows are built in batches of about this many fields: enough for the per-row work to stay in C, few enough
#: that a batch of very wide rows is small next to the byte bound checked after each batch.
_BATCH_FIELDS: Final = 64 * 1024


class RowsTooLargeError(ValueError):
    """
    The rows, as JSON, would be larger than allowed.

    :param size: the JSON size of the rows parsed so far, in bytes.
    :param rows: how many rows that is.
    """

    def __init__(self, size: int, rows: int) -> None:
        super().__init__(f"the rows as JSON reach {size:,} bytes after {rows:,} rows")
        self.size = size
        self.rows = rows


def duplicate_column(columns: Sequence[str]) -> tuple[str, int, int] | None:
    """
    Find a header name that repeats, compared as the checker matches names (case-insensitively).

    :param columns: the header's column names, cleaned by the checker (no BOM, surrounding space or quotes).
    :return: the second spelling and the 1-based positions of both, or None when every name is distinct.
    """
    seen: dict[str, int] = {}
    for position, name in enumerate(columns, start=1):
        first = seen.setdefault(name.casefold(), position)
        if first != position:
            return name, first, position
    return None


def parse_rows(
    data: bytes, delimiter: str, columns: Sequence[str], bom: bool, *, max_bytes: int | None = None
) -> list[dict[str, str | None]]:
    """
    Parse a verified CSV into one dict per row, keyed by the header's column names.

    Rows shorter than the header get None for the missing columns (as ``csv.DictReader`` does); a row
    longer than the header is an error (``csv.DictReader`` would file its extra fields under the key None),
    and so is a header that repeats a name (a dict would keep one of the two values).

    :param data: the whole file.
    :param delimiter: the delimiter found by the checker.
    :param columns: the header's column names, cleaned by the checker.
    :param bom: the file starts with a UTF-8 byte order mark.
    :param max_bytes: the largest size of the rows as JSON (``json.dumps`` of the list; ASCII text is counted
        exactly, escapes would only add to it); parsing stops as soon as it is passed. None: no bound.
    :raises RowsTooLargeError: the rows pass ``max_bytes``.
    :raises ValueError: a row is longer than the header, or the header repeats a name.
    """
    import csv
    from itertools import chain, islice, repeat

    keys = _unique_keys(columns)
    width = len(keys)
    records = _records(data, delimiter, bom)
    # The extra key catches rows longer than the header (a dict of width + 1 items), short rows have fewer.
    probe = (*keys, "\0extra")
    row_cost = _row_cost(keys)
    batch_rows = max(1, _BATCH_FIELDS // max(width, 1))
    rows: list[dict[str, str]] = []
    size = 0
    try:
        while batch := list(map(dict, map(zip, repeat(probe), islice(records, batch_rows)))):
            if max(map(len, batch)) > width:
                _raise_long_row(batch, width, keys, len(rows))
            fields = sum(map(len, batch))
            size += len(batch) * row_cost + 2 * (width * len(batch) - fields)
            size += sum(map(len, chain.from_iterable(map(dict.values, batch))))
            if max_bytes is not None and size > max_bytes:
                raise RowsTooLargeError(size, len(rows) + len(batch))
            rows += batch
    except csv.Error:
        # The one error csv.reader raises on a file the checker passed: a field over its limit (128 Ki
        # characters by default), which no export's file has.
        raise ValueError(
            f"a data row has a field longer than {csv.field_size_limit():,} characters"
        ) from None
    return _pad_short_rows(rows, keys)


def _unique_keys(columns: Sequence[str]) -> tuple[str, ...]:
    """Return the header's names as row keys; a repeated name is refused (a dict would keep one value)."""
    keys = tuple(columns)
    repeated = duplicate_column(keys)
    if repeated is not None:
        name, first, second = repeated
        raise ValueError(f"the header repeats the column {name!r} (columns {first} and {second})")
    return keys


def _row_cost(keys: Sequence[str]) -> int:
    """Return the JSON bytes of a full row apart from its values, with the separator to the next row."""
    # '{"key": "value", ...}' plus ', ' before the next row (or the list's brackets after the last one);
    # each 'null' that pads a short row costs 2 more bytes than an empty value, counted by the caller.
    return 2 + sum(len(key) + 6 for key in keys) + 2 * (len(keys) - 1) + 2


def _records(data: bytes, delimiter: str, bom: bool) -> Iterator[list[str]]:
    """
    Yield the non-empty records after the header, as ``csv.reader`` reads them.

    :param data: the whole file.
    :param delimiter: the delimiter found by the checker.
    :param bom: the file starts with a UTF-8 byte order mark.
    """
    import csv
    import io

    # TextIOWrapper decodes a few KiB at a time from the shared bytes: no second copy of the whole file.
    text = io.TextIOWrapper(
        io.BytesIO(data), encoding="utf-8-sig" if bom else "utf-8", errors="replace", newline=""
    )
    reader = csv.reader(text, delimiter=delimiter)
    next(reader, None)
    return filter(None, reader)


def _pad_short_rows(rows: list[dict[str, str]], keys: tuple[str, ...]) -> list[dict[str, str | None]]:
    """
    Give rows shorter than the header None for their missing columns, in place.

    :param rows: the rows, none longer than the header.
    :param keys: the header's column names.
    """
    padded = cast("list[dict[str, str | None]]", rows)
    if rows and min(map(len, rows)) < len(keys):
        for row in padded:
            for key in keys[len(row) :]:
                row[key] = None
    return padded


def _raise_long_row(batch: list[dict[str, str]], width: int, keys: tuple[str, ...], before: int) -> None:
    for number, row in enumerate(batch, start=before + 1):
        if len(row) > width:
            raise ValueError(f"data row {number:,} has more fields than the header ({', '.join(keys)})")


__all__ = ["RowsTooLargeError", "duplicate_column", "parse_rows"]
