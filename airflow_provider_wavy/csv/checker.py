"""
Verify an export's CSV while it downloads, chunk by chunk, without holding the file.

:class:`CsvChecker` recognises what a file host sends instead of CSV (an HTML page, an XML storage error, a
JSON error, compressed or binary data), validates the header against the export's columns
(:mod:`~airflow_provider_wavy.csv.header`), counts the data rows exactly as :func:`csv.reader` would
(:mod:`~airflow_provider_wavy.csv.counter`) and hashes the bytes.
"""

from __future__ import annotations

import hashlib
from dataclasses import dataclass
from typing import TYPE_CHECKING

from airflow_provider_wavy.csv.counter import RowCounter
from airflow_provider_wavy.csv.errors import NEW_URL, CsvError, nul_error
from airflow_provider_wavy.csv.header import Header, HeaderReader
from airflow_provider_wavy.exports import OPEN_SESSIONS

if TYPE_CHECKING:
    import mmap

    from airflow_provider_wavy.exports import Export


@dataclass(frozen=True)
class CsvSummary:
    """What a complete, valid CSV held."""

    #: Data rows: non-empty records after the header, as ``csv.reader`` counts them.
    rows: int
    #: Bytes fed, BOM included.
    bytes: int
    #: Hex SHA-256 of exactly the bytes fed; empty when the checker was created with ``hash_bytes=False``.
    sha256: str
    #: ``";"`` or ``","``.
    delimiter: str
    #: Header column names as written (case kept), without BOM and surrounding whitespace or quotes.
    columns: tuple[str, ...]
    #: The export's name of the phone column found, e.g. ``"source"`` (match ``columns`` case-insensitively).
    phone_column: str
    #: The file started with a UTF-8 BOM.
    encoding_bom: bool


class CsvChecker:
    """
    Verify an export's CSV incrementally: feed it the bytes as they download, then call :meth:`finish`.

    Errors are raised as early as the data allows (a non-CSV body at its first significant bytes, a bad
    header as soon as its line is complete) and are sticky: after one, :meth:`feed` and :meth:`finish` raise
    it again.

    :param export: the export the file should be (its columns and its name in messages); the open sessions
        by default.
    :param hash_bytes: compute the SHA-256 of the bytes fed (the summary's ``sha256`` is ``""`` otherwise).
    """

    def __init__(self, *, export: Export = OPEN_SESSIONS, hash_bytes: bool = True) -> None:
        """
        Start a verification.

        :param export: the export the file should be.
        :param hash_bytes: compute the SHA-256 of the bytes fed.
        """
        self._export = export
        self._hash = hashlib.sha256() if hash_bytes else None
        self._bytes = 0
        self._error: CsvError | None = None
        self._summary: CsvSummary | None = None
        self._head: HeaderReader | None = HeaderReader(export=export)
        self._header: Header | None = None
        self._counter: RowCounter | None = None

    @property
    def header(self) -> tuple[str, ...] | None:
        """Return the header column names once the header line is complete, else ``None``."""
        return self._header.columns if self._header is not None else None

    @property
    def delimiter(self) -> str | None:
        """Return the header's delimiter (``";"`` or ``","``) once the header line is complete."""
        return self._header.delimiter if self._header is not None else None

    @property
    def rows_so_far(self) -> int:
        """Return the data rows completed so far (a last line without line end counts at :meth:`finish`)."""
        return self._counter.rows if self._counter is not None else 0

    @property
    def bytes_so_far(self) -> int:
        """Return the number of bytes fed so far."""
        return self._bytes

    def feed(self, chunk: bytes | bytearray | memoryview | mmap.mmap) -> None:
        """
        Verify the next chunk of the file; chunks may split the file anywhere.

        :param chunk: the next bytes of the download. A ``bytearray`` or an ``mmap`` is read in place (the
            checker keeps no reference to it, so the caller may reuse it once this returns); a
            ``memoryview`` is copied.
        :raises CsvError: the file is not a valid CSV of the export.
        :raises RuntimeError: :meth:`finish` was already called.
        """
        if self._summary is not None:
            raise RuntimeError("CsvChecker.feed() called after finish(); use a new checker per file")
        if self._error is not None:
            raise CsvError(*self._error.args)
        if isinstance(chunk, memoryview):
            chunk = bytes(chunk)
        if not chunk:
            return
        self._bytes += len(chunk)
        if self._hash is not None:
            self._hash.update(chunk)
        try:
            if self._head is not None:
                start = self._head.feed(chunk)
                if start < 0:
                    return
                self._start_body()
                chunk = chunk[start:]
                if not chunk:
                    return
            self._feed_body(chunk, self._bytes - len(chunk))
        except CsvError as exc:
            self._error = exc
            raise

    def finish(self) -> CsvSummary:
        """
        Complete the verification at the end of the download.

        Calling it again returns the same summary.

        :return: the summary of the file.
        :raises CsvError: the file is empty, has no valid header, or ends inside a quoted field.
        """
        if self._summary is not None:
            return self._summary
        if self._error is not None:
            raise CsvError(*self._error.args)
        try:
            if self._head is not None:
                self._head.finish()
                self._start_body()
            assert self._counter is not None  # _start_body() made it
            if self._counter.in_quotes:
                raise CsvError(
                    f"the CSV ends inside a quoted field that opens at byte {self._counter.quote_offset} "
                    f"(after {self._counter.rows} complete data rows): the download was cut short or the "
                    "file is not valid CSV; " + NEW_URL
                )
        except CsvError as exc:
            self._error = exc
            raise
        rows = self._counter.finish()
        header = self._header
        assert header is not None  # set with the counter
        self._summary = CsvSummary(
            rows=rows,
            bytes=self._bytes,
            sha256=self._hash.hexdigest() if self._hash is not None else "",
            delimiter=header.delimiter,
            columns=header.columns,
            phone_column=header.phone_column,
            encoding_bom=header.bom,
        )
        return self._summary

    def _start_body(self) -> None:
        """Keep the header the header reader parsed, drop the reader, and start counting rows."""
        assert self._head is not None
        assert self._head.header is not None
        self._header = self._head.header
        self._head = None
        self._counter = RowCounter(delimiter=self._header.delimiter)

    def _feed_body(self, chunk: bytes | bytearray | mmap.mmap, base: int) -> None:
        """
        Count the records in a non-empty chunk of the body.

        :param chunk: bytes after the header line.
        :param base: the offset of ``chunk`` in the file.
        """
        nul = chunk.find(b"\0")
        if nul >= 0:
            raise nul_error(base + nul, self._export)
        assert self._counter is not None
        self._counter.feed(chunk, base)


#: The names from before the lists were exports too.
SessionsCsvChecker = CsvChecker
SessionsCsvSummary = CsvSummary
SessionsCsvError = CsvError

__all__ = [
    "CsvChecker",
    "CsvError",
    "CsvSummary",
    "SessionsCsvChecker",
    "SessionsCsvError",
    "SessionsCsvSummary",
]
