"""
The header line of an export's CSV: recognised, split on its delimiter, checked against the export's columns.

:func:`parse_header` reads one complete line; :class:`HeaderReader` finds that line in a download fed chunk
by chunk, failing as soon as the first bytes show the file is something else (HTML, JSON, binary data).
"""

from __future__ import annotations

import codecs
import csv
import re
from dataclasses import dataclass
from typing import TYPE_CHECKING, Final

from airflow_provider_wavy._text import one_line
from airflow_provider_wavy.csv.errors import (
    BOM,
    MAGICS,
    NEW_URL,
    CsvError,
    binary_error,
    blank_first_line_error,
    csv_name,
    even_when_empty,
    foreign_error,
    header_example,
    header_too_long_error,
    not_utf8_error,
    nul_error,
)
from airflow_provider_wavy.exports import OPEN_SESSIONS

if TYPE_CHECKING:
    import mmap

    from airflow_provider_wavy.exports import CsvColumns, Export

#: Undocumented; the one public script that reads the file splits on ";", so it wins a tie.
DELIMITERS: Final[tuple[str, ...]] = (";", ",")
#: A real header is a few dozen bytes: a longer first line means the file is not this CSV.
MAX_HEADER_BYTES: Final = 64 * 1024
#: The header phase never needs more: the LF must come within MAX_HEADER_BYTES, and a JSON or markup body
#: is described from its first few hundred bytes.
_HEAD_CAP: Final = len(BOM) + MAX_HEADER_BYTES + 1024
_NON_BLANK: Final = re.compile(rb"[^ \t\r\n]")


@dataclass(frozen=True)
class Header:
    """A valid header line."""

    #: ``";"`` or ``","``.
    delimiter: str
    #: Column names as written (case kept), without BOM and surrounding whitespace or quotes.
    columns: tuple[str, ...]
    #: The export's name of the phone column found, e.g. ``"source"``.
    phone_column: str
    #: The file starts with a UTF-8 BOM.
    bom: bool


def clean_column(name: str) -> str:
    """
    Strip a header name of surrounding whitespace, quotes and stray BOMs.

    :param name: one field of the header as ``csv`` split it.
    """
    while True:
        cleaned = name.strip().strip("\"'\ufeff")
        if cleaned == name:
            return cleaned
        name = cleaned


def columns_for_message(columns: tuple[str, ...]) -> str:
    """
    Format header names for an error message: printable, and bounded however long the header.

    :param columns: the names as split.
    """
    shown = [one_line(c[:240], 60) for c in columns[:20]]  # a name may be 64 KiB: bound the work too
    more = f" and {len(columns) - 20} more" if len(columns) > 20 else ""
    return "[" + ", ".join(repr(c) for c in shown) + "]" + more


def _header_text(line: bytes, export: Export) -> str:
    """
    Decode the header line, recognising what a file host sends instead of CSV.

    :param line: the first line of the file, with or without BOM and line end.
    :param export: the export the file should be.
    :raises CsvError: the line is not text that can hold the header.
    """
    raw = line.removeprefix(BOM).removesuffix(b"\n").removesuffix(b"\r")
    if b"\n" in raw:
        raise ValueError("parse_header() takes a single line; split the file at the first '\\n' first")
    binary = binary_error(raw, export)
    if binary is not None:
        raise binary
    if b"\0" in raw:
        raise nul_error(raw.index(b"\0"), export)
    first = _NON_BLANK.search(raw)
    if first is None:
        raise blank_first_line_error(export)
    foreign = foreign_error(raw, first.start(), at_eof=True) if raw[first.start()] in b"<{[" else None
    if foreign is not None:
        raise foreign
    if len(raw) > MAX_HEADER_BYTES:
        what = f"the first line of the file is longer than {MAX_HEADER_BYTES // 1024} KiB"
        raise header_too_long_error(what, export)
    try:
        text = raw.decode("utf-8")
    except UnicodeDecodeError:
        raise not_utf8_error(raw, len(line) - len(line.removeprefix(BOM)), export) from None
    if "\r" in text:
        raise CsvError(
            "the header line holds a carriage return that does not end it: lines ending in CR alone (classic "
            "Mac) are not supported; convert the file to LF or CRLF line ends"
        )
    return text


def _either(names: list[str], last: str) -> str:
    """Join quoted names as ``'a', 'b' or 'c'`` (``last`` is ``"or"`` or ``"and"``)."""
    return names[0] if len(names) == 1 else f"{', '.join(names[:-1])} {last} {names[-1]}"


def _phone_wanted(wanted: CsvColumns) -> str:
    """Describe the phone column: ``'source'``, or ``a phone column ('source', 'origin' or 'origem')``."""
    names = [repr(p) for p in wanted.phone]
    return names[0] if len(names) == 1 else f"a phone column ({_either(names, 'or')})"


def _match(columns: tuple[str, ...], wanted: CsvColumns) -> tuple[str | None, list[str]]:
    """
    Compare split header names with the export's, case-insensitively.

    :return: the export's name of the phone column found (None if none), and the required columns missing.
    """
    folded = {c.casefold() for c in columns}
    phone = next((p for p in wanted.phone if p.casefold() in folded), None)
    return phone, [c for c in wanted.required if c.casefold() not in folded]


def parse_header(line: bytes, *, export: Export = OPEN_SESSIONS) -> tuple[str, tuple[str, ...], str]:
    """
    Parse the header line of an export's CSV (by default the open sessions).

    The delimiter is the one of ``;`` and ``,`` that splits the line into columns including one of the
    export's phone columns and all its required columns, compared case-insensitively once surrounding
    whitespace and quotes are stripped; extra columns are allowed.

    :param line: the first line of the file: a leading UTF-8 BOM and a trailing ``\\n`` or ``\\r\\n`` are
        allowed.
    :param export: the export the file should be.
    :return: ``(delimiter, columns, phone_column)``; ``phone_column`` is the export's name, e.g. ``"source"``.
    :raises CsvError: the line is not such a header; the message says what it looks like instead.
    :raises ValueError: ``line`` holds more than one line.
    """
    text = _header_text(line, export)
    attempts: list[tuple[int, int, str, tuple[str, ...]]] = []
    problems: list[str] = []
    for delimiter in DELIMITERS:
        try:
            fields = next(csv.reader([text], delimiter=delimiter, strict=True))
        except csv.Error as exc:
            problems.append(f"split on {delimiter!r} it is not valid CSV: {exc}")
            continue
        columns = tuple(clean_column(f) for f in fields)
        phone, missing = _match(columns, export.columns)
        if phone is not None and not missing:
            return delimiter, columns, phone
        found = (phone is not None) + len(export.columns.required) - len(missing)
        attempts.append((found, len(columns), delimiter, columns))
    if not attempts:
        raise CsvError(
            "the CSV header line cannot be split (" + "; ".join(problems) + "): expected a header line such "
            f"as {header_example(export)}"
        )
    # Report the split that came closest, so the message shows the columns the way the file meant them.
    _found, _count, delimiter, columns = max(attempts, key=lambda a: (a[0], a[1], a[2] == DELIMITERS[0]))
    raise _missing_columns_error(delimiter, columns, problems, export)


def _missing_columns_error(
    delimiter: str, columns: tuple[str, ...], problems: list[str], export: Export
) -> CsvError:
    """
    Describe a header that lacks some of the export's columns.

    :param delimiter: the delimiter of the split shown.
    :param columns: the names that split gave.
    :param problems: why the other delimiters could not split the line.
    :param export: the export the file should be.
    """
    phone, missing = _match(columns, export.columns)
    listed = [repr(c) for c in missing]
    if phone is None:
        listed.insert(0, _phone_wanted(export.columns))
    required = _either([repr(c) for c in export.columns.required], "and")
    return CsvError(
        f"the CSV header has columns {columns_for_message(columns)} (split on {delimiter!r}); expected "
        f"{_phone_wanted(export.columns)} and {required}, extra columns allowed; missing: {', '.join(listed)}"
        + "".join(f" ({problem})" for problem in problems)
        + f". Check that the file is {csv_name(export)} (the API may have changed its columns)"
    )


class HeaderReader:
    """
    Find and parse the header line of a download fed chunk by chunk.

    Keeps what arrived until the first line is complete (bounded by :data:`MAX_HEADER_BYTES` plus one
    chunk), plus how far each scan over it got, so that tiny chunks stay linear.

    :param export: the export the file should be.
    """

    def __init__(self, *, export: Export) -> None:
        """
        Start reading a header.

        :param export: the export the file should be.
        """
        self._export = export
        self._head = bytearray()
        self._checked_to = 0
        self._blank_to = 0
        self._significant = -1
        self._lf_from = 0
        self._utf8 = codecs.getincrementaldecoder("utf-8")()
        self._checked_utf8_to = 0
        #: The header once its line is complete, else None.
        self.header: Header | None = None

    def feed(self, chunk: bytes | bytearray | mmap.mmap) -> int:
        """
        Take the next chunk of the file while the header line is not complete.

        :param chunk: the next non-empty bytes of the download.
        :return: where the body starts in ``chunk`` once the header line is complete, else -1.
        :raises CsvError: the beginning of the file shows it is not the export's CSV.
        """
        kept = len(self._head)
        self._head += chunk[: _HEAD_CAP - kept]
        end = self._scan(at_eof=False)
        if end < 0:
            return -1
        self._head = bytearray()
        return end + 1 - kept  # the header's LF is always in this chunk

    def finish(self) -> Header:
        """
        Parse the header at the end of the file, whose end then ends the first line.

        :raises CsvError: the file is empty or has no valid header.
        """
        if self.header is not None:
            return self.header
        if not self._head:
            raise CsvError(
                f"the downloaded file is empty (0 bytes): {even_when_empty(self._export)} the file has a "
                f"header line ({header_example(self._export)}), so the download failed or the file host "
                "served nothing; " + NEW_URL
            )
        self._scan(at_eof=True)
        assert self.header is not None  # _scan(at_eof=True) parses the header or raises
        return self.header

    def _scan(self, *, at_eof: bool) -> int:
        """
        Look at the bytes buffered so far and parse the header once its line is complete.

        :param at_eof: no more bytes will come, so the buffer ends the first line.
        :return: the index of the LF ending the header line (``len(head)`` when the end of file ends it),
            or -1 while more bytes are needed.
        """
        head = self._head
        binary = binary_error(bytes(head[:4]), self._export)
        if binary is not None:
            raise binary
        if not at_eof and any(len(magic) > len(head) and magic.startswith(head) for magic in MAGICS):
            return -1  # too few bytes to tell a BOM or a signature from data
        bom = len(BOM) if head.startswith(BOM) else 0
        first = self._first_significant(bom, at_eof=at_eof)
        if first < 0:
            return -1
        if head[first] in b"<{[":
            foreign = foreign_error(head, first, at_eof=at_eof)
            if foreign is None:
                return -1
            raise foreign
        lf = head.find(b"\n", max(self._lf_from, bom))
        self._lf_from = len(head)
        if 0 <= lf < first:
            raise blank_first_line_error(self._export)
        end = lf if lf >= 0 else len(head)
        self._check_bytes(bom, end, final=lf >= 0 or at_eof)
        if lf < 0 and not at_eof:
            return -1
        try:
            delimiter, columns, phone = parse_header(bytes(head[:end]), export=self._export)
        except CsvError as exc:
            if lf >= 0:
                raise
            raise CsvError(
                f"the file ended inside its first line ({len(head)} bytes, no line break), so the download "
                f"may have been cut short; {exc}"
            ) from None
        self.header = Header(delimiter=delimiter, columns=columns, phone_column=phone, bom=bom > 0)
        return end

    def _first_significant(self, bom: int, *, at_eof: bool) -> int:
        """
        Find the first byte after the BOM that is not blank space: it tells CSV from HTML or JSON.

        :param bom: the length of the BOM the file starts with (0 or 3).
        :param at_eof: no more bytes will come.
        :return: its index in the buffer, or -1 while only blank space arrived.
        """
        if self._significant < 0:
            head = self._head
            found = _NON_BLANK.search(head, max(self._blank_to, bom))
            self._blank_to = len(head)
            if found is not None:
                self._significant = found.start()
            elif len(head) - bom > MAX_HEADER_BYTES:
                raise CsvError(
                    f"the file starts with more than {MAX_HEADER_BYTES // 1024} KiB of blank space and no "
                    f"header: it is not {csv_name(self._export)}; " + NEW_URL
                )
            elif at_eof:
                raise CsvError(
                    f"the file holds only blank space ({len(head)} bytes) and no header line: "
                    f"{even_when_empty(self._export)} the file has the header "
                    f"{header_example(self._export)}; " + NEW_URL
                )
        return self._significant

    def _check_bytes(self, bom: int, end: int, *, final: bool) -> None:
        """
        Check the bytes of the first line that arrived since the last call: no NUL, UTF-8, bounded.

        :param bom: the length of the BOM the file starts with (0 or 3).
        :param end: where the first line ends so far (its LF, or the end of the buffer).
        :param final: the first line is complete.
        """
        head = self._head
        nul = head.find(b"\0", self._checked_to, end)  # a NUL further on is the body's concern
        if nul >= 0:
            raise nul_error(nul, self._export)
        self._checked_to = end
        try:
            self._utf8.decode(bytes(head[max(self._checked_utf8_to, bom) : end]), final=final)
        except UnicodeDecodeError:
            raise not_utf8_error(bytes(head[bom:end]), bom, self._export) from None
        self._checked_utf8_to = end
        if end - bom > MAX_HEADER_BYTES:
            what = f"no line break in the first {MAX_HEADER_BYTES // 1024} KiB of the file"
            raise header_too_long_error(what, self._export)


__all__ = ["DELIMITERS", "MAX_HEADER_BYTES", "Header", "HeaderReader", "clean_column", "parse_header"]
