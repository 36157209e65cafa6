"""
Deterministic Wavy lists (OPTOUT, OPTIN, BLACKLIST, WHITELIST), generated while streaming.

The same customer, sub-account, list type and scenario always give the same bytes. Rows have a fixed
width (``source`` 13 digits, ``createdAt`` ``YYYY-MM-DD HH:MM:SS``), so the size is known without
generating anything. Row ``i`` of a list:

- ``source``: for even ``i``, the phone of row ``i`` of the same customer's sessions file (any scenario:
  phones depend on the customer, sub-account and row only); for odd ``i``, a number no sessions file of
  that customer holds, different for each list type. A list of ``n`` rows therefore shares the phones
  of sessions rows 0, 2, 4, ... (``ceil(n / 2)`` of them, when the sessions file is that long).
- ``createdAt``: America/Sao_Paulo wall-clock time. Most rows walk through 2016-2025 in steps of about
  37 days, converted from UTC with Brazil's daylight saving rules (UTC-2 inside the periods that ended in
  2019, UTC-3 otherwise); in every 50 rows, row 1 is an ambiguous time (the repeated hour before a
  daylight saving period ended), row 2 a time inside a daylight saving period and row 3 a time that never
  existed on São Paulo clocks (the skipped hour when a period started), as a data-quality trap.
"""

from __future__ import annotations

import calendar
import hashlib
import time
from typing import TYPE_CHECKING

from airflow_provider_wavy.exports import LIST_COLUMNS, WavyListType
from airflow_provider_wavy.sandbox.data import (
    BLOCK_ROWS,
    CHUNK_SIZE,
    Seeds,
    fixed_body,
    fixed_chunks,
    header_line,
    phone_at,
    seeds_for,
)
from airflow_provider_wavy.sandbox.scenario import Scenario

if TYPE_CHECKING:
    from collections.abc import Iterator

#: The list types, in the order of the documentation (their index picks each list's own numbers).
LIST_TYPES: tuple[str, ...] = tuple(list_type.value for list_type in WavyListType)
LIST_TIME_COLUMN = LIST_COLUMNS.timestamp


def _utc(text: str) -> int:
    """Return the POSIX time of a ``YYYY-MM-DD HH:MM`` UTC instant."""
    return calendar.timegm(time.strptime(text, "%Y-%m-%d %H:%M"))


# Brazil's daylight saving periods reached by the walk, as UTC instants [start, end): each began at local
# midnight (00:00 became 01:00) and ended at local midnight (00:00 became 23:00 of the day before).
_DST_PERIODS: tuple[tuple[int, int], ...] = tuple(
    (_utc(start), _utc(end))
    for start, end in (
        ("2015-10-18 03:00", "2016-02-21 02:00"),
        ("2016-10-16 03:00", "2017-02-19 02:00"),
        ("2017-10-15 03:00", "2018-02-18 02:00"),
        ("2018-11-04 03:00", "2019-02-17 02:00"),
    )
)
_WALK_START = _utc("2016-01-01 00:00")
_WALK_SPAN = _utc("2026-01-01 00:00") - _WALK_START
_WALK_STEP = 3_211_391  # about 37 days and 4 hours: rows land in every season and hour
_SPECIAL_PERIOD = 50
_OUTSIDERS_PER_BLOCK = (10_000 - BLOCK_ROWS) // len(LIST_TYPES)
_HOUR = 3_600
#: What ``Scenario.bad_timestamp_rows`` puts in place of a ``createdAt``: same width, no time.
BAD_LIST_TIME = "9999-99-99 99:99:99"


def _list_index(list_type: str) -> int:
    """Return the position of a list type in ``LIST_TYPES`` (ValueError for another value)."""
    try:
        return LIST_TYPES.index(list_type)
    except ValueError:
        raise ValueError(f"list_type must be one of {LIST_TYPES}, got {list_type!r}") from None


def list_phone(customer_id: str, sub_account_id: str | None, list_type: str, row: int) -> str:
    """
    Return the ``source`` of a list row.

    :param customer_id: Customer id the list was requested for.
    :param sub_account_id: Sub-account id, or None.
    :param list_type: ``OPTOUT``, ``OPTIN``, ``BLACKLIST`` or ``WHITELIST``.
    :param row: 0-based data row.
    """
    return _phone(seeds_for(customer_id, sub_account_id), _list_index(list_type), row)


def _phone(seeds: Seeds, type_index: int, row: int) -> str:
    """Return the phone of a row: a sessions phone on even rows, a list-only number on odd ones."""
    if row % 2 == 0:
        return phone_at(seeds, row // BLOCK_ROWS, row % BLOCK_ROWS)
    outsider = row // 2
    block, offset = divmod(outsider, _OUTSIDERS_PER_BLOCK)
    position = BLOCK_ROWS + type_index * _OUTSIDERS_PER_BLOCK + offset
    return phone_at(seeds, block, position)


def _time_seed(customer_id: str, sub_account_id: str | None, list_type: str) -> int:
    """Derive a list's time seed from a hash (stable across processes)."""
    key = f"{customer_id}\x00{sub_account_id or ''}\x00{list_type}".encode()
    return int.from_bytes(hashlib.sha256(key).digest()[:8], "big")


def _sao_paulo(instant: int) -> str:
    """Return the São Paulo wall-clock time of a UTC instant, with the daylight saving of its year."""
    offset = -2 if any(start <= instant < end for start, end in _DST_PERIODS) else -3
    return time.strftime("%Y-%m-%d %H:%M:%S", time.gmtime(instant + offset * _HOUR))


def created_at(seed: int, row: int) -> str:
    """
    Return the ``createdAt`` of a list row (see the module docstring for the pattern).

    :param seed: The list's time seed.
    :param row: 0-based data row.
    """
    special = row % _SPECIAL_PERIOD
    start, end = _DST_PERIODS[(seed + row // _SPECIAL_PERIOD) % len(_DST_PERIODS)]
    second = (seed + row) % _HOUR
    if special == 1:
        # The last DST hour repeats as the first standard hour: 23:xx of the day before ``end``.
        return time.strftime("%Y-%m-%d %H:%M:%S", time.gmtime(end - 3 * _HOUR + second))
    if special == 2:
        return _sao_paulo(start + (seed + row) % (end - start))
    if special == 3:
        # 00:xx of the day the period began: clocks jumped from 00:00 to 01:00.
        return time.strftime("%Y-%m-%d %H:%M:%S", time.gmtime(start - 3 * _HOUR + second))
    return _sao_paulo(_WALK_START + (seed + row * _WALK_STEP) % _WALK_SPAN)


def _row_fields(scenario: Scenario) -> tuple[bool, int]:
    """Return whether rows carry ``createdAt`` and how many extra columns they have."""
    return scenario.file_body != "missing-column", len(scenario.extra_columns)


def _render_row(phone: str, created: str | None, row: int, extras: int, scenario: Scenario) -> str:
    """Render one data row, line break included."""
    fields = [phone] if created is None else [phone, created]
    fields.extend(f"x{n + 1}-{(row * 7919 + n * 104_729) % 100_000:05d}" for n in range(extras))
    if scenario.quote:
        fields = [f'"{field}"' for field in fields]
    return scenario.delimiter.join(fields) + ("\r\n" if scenario.crlf else "\n")


def list_size(
    customer_id: str, sub_account_id: str | None, list_type: str, scenario: Scenario | None = None
) -> int:
    """
    Return the exact size in bytes of the (uncompressed) list body, without generating it.

    :param customer_id: Customer id the list was requested for.
    :param sub_account_id: Sub-account id, or None.
    :param list_type: ``OPTOUT``, ``OPTIN``, ``BLACKLIST`` or ``WHITELIST``.
    :param scenario: Scenario the list was issued under (default: ``Scenario()``).
    """
    _list_index(list_type)
    scenario = scenario or Scenario()
    fixed = fixed_body(scenario)
    if fixed is not None:
        return len(fixed)
    with_time, extras = _row_fields(scenario)
    width = len(_render_row("0" * 13, "0" * 19 if with_time else None, 0, extras, scenario))
    size = len(header_line(scenario, LIST_TIME_COLUMN)) + scenario.rows * width
    return size if scenario.final_newline else size - (2 if scenario.crlf else 1)


def iter_list_chunks(
    customer_id: str,
    sub_account_id: str | None,
    list_type: str,
    scenario: Scenario | None = None,
    *,
    chunk_size: int = CHUNK_SIZE,
) -> Iterator[bytes]:
    """
    Yield the exact (uncompressed) list body the sandbox CDN serves, in non-empty chunks.

    :param customer_id: Customer id the list was requested for.
    :param sub_account_id: Sub-account id, or None (None and "" give the same list).
    :param list_type: ``OPTOUT``, ``OPTIN``, ``BLACKLIST`` or ``WHITELIST``.
    :param scenario: Scenario the list was issued under (default: ``Scenario()``).
    :param chunk_size: Largest chunk to yield.
    """
    scenario = scenario or Scenario()
    fixed = fixed_chunks(scenario, chunk_size)
    type_index = _list_index(list_type)
    if fixed is not None:
        yield from fixed
        return
    body = _iter_list_text(customer_id, sub_account_id, list_type, type_index, scenario)
    pending = bytearray()
    for piece in body:
        pending += piece
        while len(pending) >= chunk_size:
            yield bytes(pending[:chunk_size])
            del pending[:chunk_size]
    if pending:
        yield bytes(pending)


def _iter_list_text(
    customer_id: str, sub_account_id: str | None, list_type: str, type_index: int, scenario: Scenario
) -> Iterator[bytes]:
    """Yield the header, then the rows in batches (the last line break dropped when asked)."""
    header = header_line(scenario, LIST_TIME_COLUMN)
    eol_len = 2 if scenario.crlf else 1
    if scenario.rows == 0:
        yield header if scenario.final_newline else header[:-eol_len]
        return
    yield header
    seeds = seeds_for(customer_id, sub_account_id)
    seed = _time_seed(customer_id, sub_account_id, list_type)
    with_time, extras = _row_fields(scenario)
    bad_rows = frozenset(scenario.bad_timestamp_rows)
    batch: list[str] = []
    for row in range(scenario.rows):
        created = created_at(seed, row) if with_time else None
        if created is not None and row in bad_rows:
            created = BAD_LIST_TIME
        batch.append(_render_row(_phone(seeds, type_index, row), created, row, extras, scenario))
        if len(batch) == 1024 or row == scenario.rows - 1:
            text = "".join(batch).encode("ascii")
            if row == scenario.rows - 1 and not scenario.final_newline:
                text = text[:-eol_len]
            yield text
            batch.clear()
