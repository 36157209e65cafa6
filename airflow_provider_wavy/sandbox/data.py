"""
Deterministic open-sessions files, generated while streaming.

The same customer, sub-account and scenario always give the same bytes, in any process. Rows have a fixed
width, so the size is known without generating anything, and a file of any row count is produced in
blocks of ``BLOCK_ROWS`` rows from one pre-rendered block template: between blocks only a handful of
byte columns change (the block's hour and phone prefix), and they are rewritten with strided
``bytearray`` slice assignments, so generation runs at memory speed and never holds more than one block.

Row ``i`` of a file, with ``i = k * BLOCK_ROWS + j``:

- phone: ``55`` + area code (from the customer and ``k``) + ``9`` + 4 digits (from the customer and ``k``)
  + 4 digits (from ``j``): 13 digits, unique within a file for billions of rows;
- ``session_created_at``: a start hour derived from the customer, plus ``k`` hours, plus ``j`` seconds,
  written ``YYYY-MM-DDTHH:MM:SSZ`` (UTC).
"""

from __future__ import annotations

import functools
import hashlib
import time
import zlib
from dataclasses import dataclass
from typing import TYPE_CHECKING

from airflow_provider_wavy.sandbox.scenario import Scenario

if TYPE_CHECKING:
    from collections.abc import Iterator

CHUNK_SIZE = 64 * 1024
BLOCK_ROWS = 3600
TIME_COLUMN = "session_created_at"
GZIP_LEVEL = 1  # speed over ratio: a large file is compressed once more for its Content-Length

# 2026-01-01T00:00:00Z: files start on a customer-dependent hour of that year.
_EPOCH = 1_767_225_600
_PHONE_BLOCK_WIDTH = 7  # "AA9HHHH": area code, the mobile "9" and the block-dependent digits
_TIME_BLOCK_WIDTH = 14  # "YYYY-MM-DDTHH:"
_BOM = "\ufeff".encode()
#: What ``Scenario.bad_timestamp_rows`` puts in place of a session's timestamp: same width, no time.
BAD_SESSION_TIME = b"9999-99-99T99:99:99Z"

HTML_BODY = (
    b"<!DOCTYPE html>\n<html><head><title>503 Service Temporarily Unavailable</title></head>\n"
    b"<body><h1>Service Temporarily Unavailable</h1>\n"
    b"<p>The file you requested is not available right now. Please try again later.</p>\n"
    b"</body></html>\n"
)
JSON_ERROR_BODY = b'{"errorCode": 404, "errorMessage": "File not found or expired."}'

_CONTENT_TYPES = {
    "csv": "text/csv; charset=utf-8",
    "missing-column": "text/csv; charset=utf-8",
    "empty": "text/csv; charset=utf-8",
    "html": "text/html; charset=utf-8",
    "json-error": "application/json",
}


@dataclass(frozen=True)
class _Template:
    """A pre-rendered block of ``BLOCK_ROWS`` rows and where its block-dependent bytes sit in a row."""

    block: bytes
    width: int
    phone_offset: int
    time_offset: int | None


@dataclass(frozen=True)
class Seeds:
    """Customer-dependent starting points of the generated values."""

    area: int
    high: int
    start: int


def content_type(scenario: Scenario) -> str:
    """
    Return the ``Content-Type`` the CDN sends for this scenario's file.

    :param scenario: The scenario the file was issued under.
    """
    return scenario.content_type or _CONTENT_TYPES[scenario.file_body]


def header_line(scenario: Scenario, time_column: str = TIME_COLUMN) -> bytes:
    """
    Return the header line (BOM included, line break included) of a CSV file.

    :param scenario: The scenario giving delimiter, quoting, line breaks and column names.
    :param time_column: Name of the timestamp column (the lists call it ``createdAt``).
    """
    names = [scenario.phone_column]
    if scenario.file_body != "missing-column":
        names.append(time_column)
    names.extend(scenario.extra_columns)
    if scenario.quote:
        names = [f'"{name}"' for name in names]
    eol = "\r\n" if scenario.crlf else "\n"
    return (_BOM if scenario.bom else b"") + (scenario.delimiter.join(names) + eol).encode()


def csv_size(customer_id: str, sub_account_id: str | None, scenario: Scenario | None = None) -> int:
    """
    Return the exact size in bytes of the (uncompressed) file body, without generating it.

    :param customer_id: Customer id the file was requested for.
    :param sub_account_id: Sub-account id, or None.
    :param scenario: Scenario the file was issued under (default: ``Scenario()``).
    """
    scenario = scenario or Scenario()
    fixed = fixed_body(scenario)
    if fixed is not None:
        return len(fixed)
    eol_len = 2 if scenario.crlf else 1
    size = len(header_line(scenario)) + scenario.rows * _template_for(scenario).width
    return size if scenario.final_newline else size - eol_len


def iter_csv_chunks(
    customer_id: str,
    sub_account_id: str | None,
    scenario: Scenario | None = None,
    *,
    chunk_size: int = CHUNK_SIZE,
) -> Iterator[bytes]:
    """
    Yield the exact (uncompressed) file body the sandbox CDN serves, in non-empty chunks.

    Only one block of rows is in memory at a time, whatever the row count.

    :param customer_id: Customer id the file was requested for.
    :param sub_account_id: Sub-account id, or None (None and "" give the same file).
    :param scenario: Scenario the file was issued under (default: ``Scenario()``).
    :param chunk_size: Largest chunk to yield.
    """
    scenario = scenario or Scenario()
    fixed = fixed_chunks(scenario, chunk_size)
    if fixed is not None:
        yield from fixed
        return
    header = header_line(scenario)
    if scenario.rows == 0 and not scenario.final_newline:
        header = header[: -(2 if scenario.crlf else 1)]
    yield header
    if scenario.rows:
        yield from _iter_rows(customer_id, sub_account_id, scenario, chunk_size)


def iter_gzip_chunks(chunks: Iterator[bytes], level: int = GZIP_LEVEL) -> Iterator[bytes]:
    """
    Compress a stream of chunks into a gzip stream (``mtime`` 0, so the output is deterministic).

    :param chunks: The uncompressed chunks.
    :param level: zlib compression level.
    """
    compressor = zlib.compressobj(level, zlib.DEFLATED, 31)
    for chunk in chunks:
        out = compressor.compress(chunk)
        if out:
            yield out
    tail = compressor.flush()
    if tail:
        yield tail


def gzip_size(customer_id: str, sub_account_id: str | None, scenario: Scenario | None = None) -> int:
    """
    Return the size of the gzip-compressed file body, compressing it once without keeping it.

    :param customer_id: Customer id the file was requested for.
    :param sub_account_id: Sub-account id, or None.
    :param scenario: Scenario the file was issued under (default: ``Scenario()``).
    """
    chunks = iter_csv_chunks(customer_id, sub_account_id, scenario, chunk_size=1024 * 1024)
    return sum(len(piece) for piece in iter_gzip_chunks(chunks))


def fixed_chunks(scenario: Scenario, chunk_size: int) -> list[bytes] | None:
    """
    Return the non-CSV file body cut into chunks, or None for generated CSV ones.

    :param scenario: the behaviour to serve.
    :param chunk_size: bytes per chunk; checked here for every generator.
    """
    if chunk_size <= 0:
        raise ValueError(f"chunk_size must be > 0, got {chunk_size}")
    fixed = fixed_body(scenario)
    if fixed is None:
        return None
    return [fixed[start : start + chunk_size] for start in range(0, len(fixed), chunk_size)]


def fixed_body(scenario: Scenario) -> bytes | None:
    """
    Return the body of the non-CSV file bodies, or None for generated CSV ones.

    :param scenario: The scenario the file was issued under.
    """
    if scenario.file_body == "html":
        return HTML_BODY
    if scenario.file_body == "json-error":
        return JSON_ERROR_BODY
    if scenario.file_body == "empty":
        return b""
    return None


def seeds_for(customer_id: str, sub_account_id: str | None) -> Seeds:
    """
    Derive the customer-dependent starting points from a hash (stable across processes).

    :param customer_id: Customer id the file was requested for.
    :param sub_account_id: Sub-account id, or None (None and "" give the same seeds).
    """
    digest = hashlib.sha256(f"{customer_id}\x00{sub_account_id or ''}".encode()).digest()
    a, b, c = (int.from_bytes(digest[n : n + 8], "big") for n in (0, 8, 16))
    start = _EPOCH + (c % 365) * 86_400 + (c // 365 % 24) * 3_600
    return Seeds(area=a % 89, high=b % 10_000, start=start)


def phone_at(seeds: Seeds, block: int, position: int) -> str:
    """
    Return a 13-digit phone number: ``55``, the block's area code and high digits, and 4 digits from
    ``position``.

    Row ``k * BLOCK_ROWS + j`` of a sessions file has ``phone_at(seeds, k, j)``, so positions from
    ``BLOCK_ROWS`` to 9999 give numbers that no sessions file of these seeds holds.

    :param seeds: The customer's seeds.
    :param block: Block index ``k``.
    :param position: 0..9999.
    """
    return f"55{_block_prefix(seeds, block)}{_phone_suffix(position):04d}"


def _block_prefix(seeds: Seeds, k: int) -> str:
    """Return the 7 block-dependent phone digits: area code, the mobile ``9`` and 4 high digits."""
    area = 11 + (seeds.area + k // 10_000) % 89
    high = (seeds.high + 7 * k) % 10_000
    return f"{area:02d}9{high:04d}"


def _phone_suffix(position: int) -> int:
    """Return the last 4 phone digits of a position in a block (a bijection of 0..9999)."""
    # Multiplying by a number prime to 10_000 spreads the last digits without repeating them.
    return (position * 2777 + 1234) % 10_000


def _template_for(scenario: Scenario) -> _Template:
    """Return the cached block template for a scenario's row layout."""
    return _template(
        scenario.delimiter,
        scenario.quote,
        "\r\n" if scenario.crlf else "\n",
        scenario.file_body != "missing-column",
        scenario.extra_columns,
    )


@functools.lru_cache(maxsize=32)
def _template(delimiter: str, quote: bool, eol: str, with_time: bool, extras: tuple[str, ...]) -> _Template:
    """Render ``BLOCK_ROWS`` rows with placeholder zeros where the block-dependent bytes go."""
    q = '"' if quote else ""
    rows = []
    for j in range(BLOCK_ROWS):
        fields = [f"{q}5500{'0' * 5}{_phone_suffix(j):04d}{q}"]
        if with_time:
            fields.append(f"{q}0000-00-00T00:{j // 60:02d}:{j % 60:02d}Z{q}")
        fields.extend(f"{q}x{n + 1}-{(j * 7919 + n * 104_729) % 100_000:05d}{q}" for n in range(len(extras)))
        rows.append(delimiter.join(fields) + eol)
    block = "".join(rows).encode("ascii")
    width = len(rows[0])
    phone_offset = len(q) + 2
    time_offset = (len(q) + 13 + len(q) + len(delimiter) + len(q)) if with_time else None
    return _Template(block=block, width=width, phone_offset=phone_offset, time_offset=time_offset)


@functools.lru_cache(maxsize=256)
def _column_of(byte: int) -> bytes:
    """Return ``BLOCK_ROWS`` copies of one byte, the right-hand side of a strided column write."""
    return bytes((byte,)) * BLOCK_ROWS


def _block_values(seeds: Seeds, k: int, with_time: bool) -> list[tuple[int, bytes]]:
    """Return the block-dependent values of block ``k`` as (field index, bytes); 0 = phone, 1 = time."""
    values = [(0, _block_prefix(seeds, k).encode())]
    if with_time:
        values.append((1, time.strftime("%Y-%m-%dT%H:", time.gmtime(seeds.start + 3_600 * k)).encode()))
    return values


def _iter_rows(
    customer_id: str, sub_account_id: str | None, scenario: Scenario, chunk_size: int
) -> Iterator[bytes]:
    """Yield the data rows block by block, rewriting only the byte columns that changed."""
    template = _template_for(scenario)
    seeds = seeds_for(customer_id, sub_account_id)
    with_time = template.time_offset is not None
    width = template.width
    offsets = (template.phone_offset, template.time_offset or 0)
    buffer = bytearray(template.block)
    view = memoryview(buffer)
    current = bytearray(template.block[:width])
    full_blocks, last_rows = divmod(scenario.rows, BLOCK_ROWS)
    blocks = full_blocks + (1 if last_rows else 0)
    eol_len = 2 if scenario.crlf else 1
    bad_rows = sorted(set(scenario.bad_timestamp_rows)) if with_time else []
    for k in range(blocks):
        for field, value in _block_values(seeds, k, with_time):
            for position, byte in enumerate(value, start=offsets[field]):
                if current[position] != byte:
                    buffer[position::width] = _column_of(byte)
                    current[position] = byte
        end = (BLOCK_ROWS if k < full_blocks else last_rows) * width
        if k == blocks - 1 and not scenario.final_newline:
            end -= eol_len
        source = _with_bad_times(view, end, template, k, bad_rows)
        for start in range(0, end, chunk_size):
            yield bytes(source[start : min(end, start + chunk_size)])


def _with_bad_times(
    view: memoryview, end: int, template: _Template, k: int, bad_rows: list[int]
) -> memoryview:
    """Return block ``k`` with its ``bad_timestamp_rows`` overwritten, on a copy: the template is reused."""
    inside = [row - k * BLOCK_ROWS for row in bad_rows if k * BLOCK_ROWS <= row < (k + 1) * BLOCK_ROWS]
    if not inside:
        return view
    patched = bytearray(view[:end])
    for j in inside:
        start = j * template.width + (template.time_offset or 0)
        if start + len(BAD_SESSION_TIME) <= end:
            patched[start : start + len(BAD_SESSION_TIME)] = BAD_SESSION_TIME
    return memoryview(patched)
