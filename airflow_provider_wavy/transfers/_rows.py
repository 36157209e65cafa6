"""
The verified export as table rows: read once from the download, checked, parsed and normalised on the way.

The download's chunks go through the same :class:`~airflow_provider_wavy.csv.checker.CsvChecker` as the
download operator's (header, rows, SHA-256, ``Content-Length``), then through ``csv.reader`` a line at a
time; nothing holds the file. The checker's verdict on the end of the file (cut short, inside a quoted field)
comes when the last row has been handed out and before the caller commits.
"""

from __future__ import annotations

import codecs
import csv
import json
from typing import TYPE_CHECKING

from airflow_provider_wavy.csv.checker import CsvChecker, CsvError

if TYPE_CHECKING:
    from collections.abc import Callable, Iterator

    from airflow_provider_wavy.csv.checker import CsvSummary
    from airflow_provider_wavy.exports import Export
    from airflow_provider_wavy.hooks.wavy import FileDownload

#: One table row: customer_id, sub_account_id, list_type, snapshot_at, phone, created_at, extra (JSON).
Row = tuple[str, str | None, str, str, str, str | None, str | None]

#: The download is read in chunks of this size: each is split into lines at once, so it bounds memory.
_CHUNK_SIZE = 256 * 1024


class VerifiedRecords:
    """
    The data records of a download, as ``csv.reader`` reads them, verified by the checker as they arrive.

    :param download: the open download.
    :param export: the export the file must be.
    :param fail: turns a :class:`CsvError` (or a decoding error) into the exception to raise.
    """

    def __init__(
        self, download: FileDownload, export: Export, fail: Callable[[Exception], Exception]
    ) -> None:
        self._download = download
        self._checker = CsvChecker(export=export, hash_bytes=True)
        self._fail = fail
        self.summary: CsvSummary | None = None
        self._rest: Iterator[str] = iter(())
        self._delimiter = ";"

    def open(self) -> tuple[str, ...]:
        """
        Read and verify the header (the download's first chunk); return its column names.

        :raises Exception: what ``fail`` makes of a file that is not the export's CSV.
        """
        lines = self._lines()
        next(lines, None)  # the header line: the checker has validated it by now
        if self._checker.header is None:  # a header without line end, or an empty file (finish() says)
            self._finish()
        header, delimiter = self._checker.header, self._checker.delimiter
        assert header is not None
        assert delimiter is not None
        self._rest, self._delimiter = lines, delimiter
        return header

    def __iter__(self) -> Iterator[list[str]]:
        """Yield the non-empty data records after :meth:`open`; the checker's last word comes at their end."""
        try:
            yield from filter(None, csv.reader(self._rest, delimiter=self._delimiter))
        except csv.Error as error:
            raise self._fail(
                CsvError(f"data row after {self._checker.rows_so_far:,} rows: {error}")
            ) from None

    def _lines(self) -> Iterator[str]:
        """Yield the file's lines without their LF (``csv.reader`` rejoins quoted fields across lines)."""
        decoder = codecs.getincrementaldecoder("utf-8-sig")("strict")
        carry = ""
        offset = 0
        for chunk in self._download.iter_chunks(_CHUNK_SIZE):
            self._feed(chunk)
            text = carry + self._decode(decoder, chunk, offset, final=False)
            offset += len(chunk)
            *complete, carry = text.split("\n")
            yield from complete
        text = carry + self._decode(decoder, b"", offset, final=True)
        if text:
            yield text
        self._finish()

    def _feed(self, chunk: bytes) -> None:
        try:
            self._checker.feed(chunk)
        except CsvError as error:
            raise self._fail(error) from None

    def _decode(self, decoder: codecs.IncrementalDecoder, chunk: bytes, offset: int, *, final: bool) -> str:
        try:
            return str(decoder.decode(chunk, final))
        except UnicodeDecodeError as error:
            where = offset + error.start
            raise self._fail(CsvError(f"the bytes at offset {where:,} are not UTF-8")) from None

    def _finish(self) -> None:
        try:
            self.summary = self._checker.finish()
        except CsvError as error:
            raise self._fail(error) from None


class RowMaker:
    """
    Turn records into table rows: the key values, the phone exactly as served, the timestamp normalised, and
    the columns beyond the export's as a JSON object (None when the file has none).

    :param columns: the header.
    :param export: the export (its phone and timestamp columns).
    :param key: customer_id, sub_account_id, list_type, snapshot_at (ISO UTC).
    :param normalise: the timestamp normaliser's ``normalise(value, row)``.
    :param fail: turns a description of a bad record into the exception to raise.
    """

    def __init__(
        self,
        columns: tuple[str, ...],
        export: Export,
        key: tuple[str, str | None, str, str],
        normalise: Callable[[str, int], str | None],
        fail: Callable[[str], Exception],
    ) -> None:
        folded = [column.casefold() for column in columns]
        phone = next(name for name in export.columns.phone if name.casefold() in folded)
        self._phone = folded.index(phone.casefold())
        self._stamp = folded.index(export.columns.timestamp.casefold())
        self._extra = [(i, name) for i, name in enumerate(columns) if i not in (self._phone, self._stamp)]
        self._width = len(columns)
        self._key = key
        self.count = 0
        self._normalise = normalise
        self._fail = fail

    def rows(self, records: Iterator[list[str]]) -> Iterator[Row]:
        customer, sub_account, list_type, snapshot_at = self._key
        phone_at, stamp_at, width = self._phone, self._stamp, self._width
        number = 0
        for number, record in enumerate(records, start=1):
            fields = record if len(record) == width else self._fit(record, number)
            phone = fields[phone_at]
            if not phone:
                raise self._fail(f"data row {number:,} has no phone number")
            created = self._normalise(fields[stamp_at], number)
            extra = self._extra_json(fields) if self._extra else None
            yield customer, sub_account, list_type, snapshot_at, phone, created, extra
        self.count = number

    def _fit(self, record: list[str], number: int) -> list[str]:
        if len(record) > self._width:
            raise self._fail(
                f"data row {number:,} has {len(record)} fields, more than the header's {self._width}"
            )
        return record + [""] * (self._width - len(record))

    def _extra_json(self, record: list[str]) -> str:
        return json.dumps({name: record[i] for i, name in self._extra}, ensure_ascii=False)


__all__ = ["Row", "RowMaker", "VerifiedRecords"]
