"""
Verify the open-sessions CSV while it downloads, chunk by chunk, without holding the file.

:class:`SessionsCsvChecker` recognises what a file host sends instead of CSV (an HTML page, an XML storage
error, a JSON error, compressed or binary data), validates the header, counts the data rows exactly as
:func:`csv.reader` would and hashes the bytes.

The row count is the number of non-empty records that ``csv.reader`` yields after the header when the file
is read as text with ``newline=""``: blank lines do not count, quoted fields may hold delimiters, ``""``
escapes and line breaks, and the non-RFC input that ``csv`` tolerates (a quote inside an unquoted field,
text after a closing quote, a lone CR ending a record) is counted the way ``csv`` counts it.

Speed: the per-byte work runs in C. A chunk without a quote costs one ``bytes.count`` and one or two
regular-expression searches that prove it has no blank line and no lone CR; a chunk with quotes is consumed
line by line by a single regular expression that accepts the common shapes, and only the lines it rejects
(and the partial line at each chunk boundary) go through a small state machine in Python. When NumPy is
installed (the ``numpy`` extra), large quote-free chunks are counted with it instead: about five times less
CPU than the two scans, and without holding the GIL, so hashing and writing threads run alongside.
"""

from __future__ import annotations

import codecs
import csv
import functools
import hashlib
import re
from dataclasses import dataclass
from typing import TYPE_CHECKING, Any, Final

if TYPE_CHECKING:
    import mmap
    from types import ModuleType

__all__ = [
    "CREATED_AT_COLUMN",
    "DELIMITERS",
    "MAX_HEADER_BYTES",
    "PHONE_COLUMNS",
    "SessionsCsvChecker",
    "SessionsCsvError",
    "SessionsCsvSummary",
    "parse_header",
]

#: Header names of the phone column, in order of preference: the English/Spanish pages say ``source``, the
#: Portuguese page ``origem`` (a translation of ``origin``, Wavy's word for the business number). Which one
#: the live file uses is undocumented, so all three are accepted.
PHONE_COLUMNS: Final[tuple[str, ...]] = ("source", "origin", "origem")
CREATED_AT_COLUMN: Final = "session_created_at"
#: Undocumented; the one public script that reads the file splits on ";", so it wins a tie.
DELIMITERS: Final[tuple[str, ...]] = (";", ",")
#: A real header is a few dozen bytes: a longer first line means the file is not this CSV.
MAX_HEADER_BYTES: Final = 64 * 1024

_BOM: Final = codecs.BOM_UTF8
_LF: Final = 0x0A
_CR: Final = 0x0D
_QUOTE: Final = 0x22
# Quote states of the csv state machine: outside quotes, inside a quoted field, and just after a quote
# inside a quoted field (where a second quote is an escaped quote and anything else ends the quoting).
_OUT: Final = 0
_IN: Final = 1
_AFTER: Final = 2

_JSON_SNIPPET_CHARS: Final = 200
#: Enough of a markup document to find "<html" after an XML declaration or a comment.
_MARKUP_SNIFF_BYTES: Final = 512
#: The header phase never needs more: the LF must come within MAX_HEADER_BYTES, and a JSON or markup body
#: is described from its first few hundred bytes.
_HEAD_CAP: Final = len(codecs.BOM_UTF8) + MAX_HEADER_BYTES + 1024
_EXPECTED: Final = "a phone column ('source', 'origin' or 'origem') and 'session_created_at'"
_NEW_URL: Final = "ask the API for a new file URL and download again"
_BLANK_FIRST_LINE: Final = (
    "the first line of the file is blank; expected the CSV header line such as 'source;session_created_at': "
    "the file is not the open-sessions CSV, or it was cut short"
)

_NON_BLANK: Final = re.compile(rb"[^ \t\r\n]")
# Anomaly probes for quote-free chunks. Literal patterns are searched much faster than alternations, so
# each probe is a literal or starts with one.
_LF_LF: Final = re.compile(rb"\n\n")
_LF_THEN_TERMINATOR: Final = re.compile(rb"\n[\r\n]")
_LONE_CR: Final = re.compile(rb"\r[^\n]")
# Counters for quote-free chunks that do have blank lines or lone CRs: each match is a line end directly
# followed by another line end, that is one blank line.
# Every byte but LF read as "a": a run of LFs then starts at each "a\n" (or at the chunk's start).
_LF_OR_A: Final = bytes(_b if _b == 0x0A else 0x61 for _b in range(256))
_BLANK_AFTER_LF_OR_CRLF: Final = re.compile(rb"\n(?=[\r\n])")
_BLANK_AFTER_LONE_CR: Final = re.compile(rb"\r(?=\r)")
_CHUNK_START_QUOTE: Final = re.compile(rb'"')
#: Quote-free chunks at least this large are counted with NumPy when it is installed. Below it the call
#: overhead outweighs the gain, and a small file never pays NumPy's import (tens of ms).
VECTOR_MIN_BYTES: Final = 256 * 1024


@functools.cache
def vector_module() -> ModuleType | None:
    """Return NumPy when it is installed (imported on first use, then cached), else ``None``."""
    try:
        import numpy
    except ImportError:
        return None
    return numpy


def _simple_lines(delimiter: bytes) -> re.Pattern[bytes]:
    """
    Compile the pattern that consumes a run of complete, non-blank records without a line break in quotes.

    Such a record holds exactly one LF, so the records it matches are counted with ``bytes.count``. Fields
    follow csv's rules: a quote opens a quoted field only at the start of a field (elsewhere it is text),
    ``""`` inside quotes is a quote, and text after the closing quote joins the field. Anything else (a line
    break inside quotes, a lone CR, a blank line) stops the match and goes to the state machine.

    :param delimiter: the one-byte field delimiter.
    """
    d = re.escape(delimiter)
    text = rb"(?:[^\"\r\n" + d + rb"][^\r\n" + d + rb"]*+)?+"  # a field's text: not starting with a quote
    quoted = rb'"[^"\r\n]*+(?:""[^"\r\n]*+)*+"' + text
    field = rb"(?:" + quoted + rb"|" + text + rb")"
    return re.compile(rb"(?:(?![\r\n])" + field + rb"(?:" + d + field + rb")*+\r?\n)*+")


_SIMPLE_LINES: Final[dict[str, re.Pattern[bytes]]] = {d: _simple_lines(d.encode()) for d in DELIMITERS}
# Outside quotes, the bytes the state machine must stop at: a line end, or a quote at the start of a field
# (elsewhere csv keeps a quote as text, so a field full of them is skipped in C, not quote by quote). The
# look-behind sees bytes before ``pos``; only a quote at a chunk's first byte needs the previous chunk.
_EVENTS: Final[dict[str, re.Pattern[bytes]]] = {
    d: re.compile(rb"[\r\n]|(?<=[\r\n" + re.escape(d.encode()) + rb'])"') for d in DELIMITERS
}
# Inside quotes: text and escaped quotes (""), up to the quote that may close the field or the chunk's end.
_QUOTED_RUN: Final = re.compile(rb'[^"]*+(?:""[^"]*+)*+')


class SessionsCsvError(ValueError):
    """The downloaded file is not a valid open-sessions CSV; the message says what is wrong and what to do."""


@dataclass(frozen=True)
class SessionsCsvSummary:
    """What a complete, valid open-sessions CSV held."""

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
    #: ``"source"`` or ``"origin"`` (lower case; match ``columns`` case-insensitively).
    phone_column: str
    #: The file started with a UTF-8 BOM.
    encoding_bom: bool


def _printable(raw: bytes, limit: int) -> str:
    """
    Return ``raw`` as one line of at most ``limit`` printable characters, safe to put in a log line.

    :param raw: bytes of unknown content (decoded as UTF-8, invalid bytes replaced).
    :param limit: the maximum number of characters returned.
    """
    text = raw[: 4 * limit].decode("utf-8", "replace")
    text = " ".join("".join(ch if ch.isprintable() else " " for ch in text).split())
    return text if len(text) <= limit else text[: limit - 1] + "…"


def _clean_column(name: str) -> str:
    """
    Strip a header name of surrounding whitespace, quotes and stray BOMs.

    :param name: one field of the header as ``csv`` split it.
    """
    while True:
        cleaned = name.strip().strip("\"'\ufeff")
        if cleaned == name:
            return cleaned
        name = cleaned


def _binary_error(head: bytes) -> SessionsCsvError | None:
    """
    Recognise compressed or non-UTF-8 data by its first bytes.

    :param head: the first bytes of the file (fewer than four is fine).
    """
    if head.startswith(b"\x1f\x8b"):
        return SessionsCsvError(
            "the file is gzip-compressed data (it starts with 1f 8b), not CSV: the download kept the gzip "
            "Content-Encoding; let the HTTP client decode it (or gunzip the file) and verify again"
        )
    if head.startswith(b"PK\x03\x04"):
        return SessionsCsvError(
            "the file is a ZIP archive (it starts with 'PK'), not the plain open-sessions CSV: check that "
            "the URL is the file URL the API returned, or " + _NEW_URL
        )
    if head.startswith((b"\xff\xfe", b"\xfe\xff")):
        return SessionsCsvError(
            "the file is UTF-16 text (it starts with a UTF-16 byte order mark), not UTF-8 CSV: the "
            "open-sessions CSV is UTF-8; re-encode the file as UTF-8 or " + _NEW_URL
        )
    return None


#: Leading bytes that _binary_error() and the BOM handling recognise.
_MAGICS: Final = (_BOM, b"\x1f\x8b", b"PK\x03\x04", b"\xff\xfe", b"\xfe\xff")


def _with_count(chunk: bytes | bytearray | mmap.mmap) -> bytes | bytearray:
    """
    Return the chunk with all of ``bytes``' methods: an ``mmap`` (which has no ``count``) is copied.

    Only the rarer paths (quotes, CRs, no NumPy) need them; NumPy reads an ``mmap`` in place.

    :param chunk: a chunk of the file.
    """
    return chunk if isinstance(chunk, (bytes, bytearray)) else bytes(chunk)


def _nul_error(offset: int) -> SessionsCsvError:
    """
    Describe a NUL byte, which no text CSV holds (``csv.reader`` rejects it too).

    :param offset: the byte offset of the NUL in the file.
    """
    return SessionsCsvError(
        f"the file holds a NUL byte at offset {offset}: it is binary or corrupt, not the open-sessions CSV; "
        + _NEW_URL
    )


def _foreign_error(data: bytes | bytearray, first: int, *, at_eof: bool) -> SessionsCsvError | None:
    """
    Describe a file that starts with markup or JSON instead of the CSV header.

    An HTML page, or an XML error from the storage behind the CDN, is not quoted: storage errors can echo the
    signed request, credentials included. A JSON error is quoted (sanitised and bounded): it is small and
    says what went wrong.

    :param data: the first bytes of the file.
    :param first: the index of the first byte that is not blank space: ``<``, ``{`` or ``[``.
    :param at_eof: no more bytes will come.
    :return: the error, or ``None`` until enough bytes arrived to describe the content.
    """
    if data[first] != ord("<"):
        # Quote enough of the JSON to be useful; error bodies are small, so this is usually all of it.
        if not at_eof and len(data) - first < 4 * _JSON_SNIPPET_CHARS:
            return None
        snippet = _printable(bytes(data[first : first + 4 * _JSON_SNIPPET_CHARS]), _JSON_SNIPPET_CHARS)
        return SessionsCsvError(
            "the file URL returned JSON, not CSV; it looks like a JSON error from the file host: "
            f"{snippet} -- the link may have expired or be wrong; " + _NEW_URL
        )
    window = bytes(data[first : first + _MARKUP_SNIFF_BYTES]).lower()
    html = b"<html" in window or b"<!doctype html" in window
    if not html and not at_eof and len(window) < _MARKUP_SNIFF_BYTES:
        return None
    if not html and window.startswith((b"<?xml", b"<error")):
        return SessionsCsvError(
            "the file URL returned an XML document (a storage error, typically for an expired or invalid "
            "link), not CSV: the link may have expired; " + _NEW_URL
        )
    return SessionsCsvError(
        "the file URL returned an HTML page, not CSV: the link may have expired; " + _NEW_URL
    )


def _not_utf8_error(line: bytes, offset: int) -> SessionsCsvError:
    """
    Describe a header that is not UTF-8.

    :param line: the header bytes after the BOM (the first line, or as much of it as arrived).
    :param offset: where ``line`` starts in the file.
    """
    try:
        line.decode("utf-8")
    except UnicodeDecodeError as exc:
        where = f"byte 0x{line[exc.start]:02x} at offset {offset + exc.start}"
    else:  # only the end was cut short, which the caller reports at end of file
        where = f"a multi-byte character cut off at offset {offset + len(line)}"
    return SessionsCsvError(
        f"the CSV header is not UTF-8 ({where}): the file is binary or in another encoding; expected UTF-8 "
        "text starting with a header line such as 'source;session_created_at'"
    )


def _columns_for_message(columns: tuple[str, ...]) -> str:
    """
    Format header names for an error message: printable, and bounded however long the header.

    :param columns: the names as split.
    """
    shown = [_printable(c.encode(), 60) for c in columns[:20]]
    more = f" and {len(columns) - 20} more" if len(columns) > 20 else ""
    return "[" + ", ".join(repr(c) for c in shown) + "]" + more


def _header_text(line: bytes) -> str:
    """
    Decode the header line, recognising what a file host sends instead of CSV.

    :param line: the first line of the file, with or without BOM and line end.
    :raises SessionsCsvError: the line is not text that can hold the header.
    """
    raw = line.removeprefix(_BOM).removesuffix(b"\n").removesuffix(b"\r")
    if b"\n" in raw:
        raise ValueError("parse_header() takes a single line; split the file at the first '\\n' first")
    binary = _binary_error(raw)
    if binary is not None:
        raise binary
    if b"\0" in raw:
        raise _nul_error(raw.index(b"\0"))
    first = _NON_BLANK.search(raw)
    if first is None:
        raise SessionsCsvError(_BLANK_FIRST_LINE)
    foreign = _foreign_error(raw, first.start(), at_eof=True) if raw[first.start()] in b"<{[" else None
    if foreign is not None:
        raise foreign
    if len(raw) > MAX_HEADER_BYTES:
        raise SessionsCsvError(
            f"the first line of the file is longer than {MAX_HEADER_BYTES // 1024} KiB: this is not the "
            "open-sessions CSV, whose header is a short line such as 'source;session_created_at'"
        )
    try:
        text = raw.decode("utf-8")
    except UnicodeDecodeError:
        raise _not_utf8_error(raw, len(line) - len(line.removeprefix(_BOM))) from None
    if "\r" in text:
        raise SessionsCsvError(
            "the header line holds a carriage return that does not end it: lines ending in CR alone (classic "
            "Mac) are not supported; convert the file to LF or CRLF line ends"
        )
    return text


def parse_header(line: bytes) -> tuple[str, tuple[str, ...], str]:
    """
    Parse the header line of the open-sessions CSV.

    The delimiter is the one of ``;`` and ``,`` that splits the line into columns including a phone column
    (``source`` or ``origin``) and ``session_created_at``, compared case-insensitively once surrounding
    whitespace and quotes are stripped; extra columns are allowed.

    :param line: the first line of the file: a leading UTF-8 BOM and a trailing ``\\n`` or ``\\r\\n`` are
        allowed.
    :return: ``(delimiter, columns, phone_column)``; ``phone_column`` is ``"source"`` or ``"origin"``.
    :raises SessionsCsvError: the line is not such a header; the message says what it looks like instead.
    :raises ValueError: ``line`` holds more than one line.
    """
    text = _header_text(line)
    attempts: list[tuple[int, int, str, tuple[str, ...]]] = []
    problems: list[str] = []
    for delimiter in DELIMITERS:
        try:
            fields = next(csv.reader([text], delimiter=delimiter, strict=True))
        except csv.Error as exc:
            problems.append(f"split on {delimiter!r} it is not valid CSV: {exc}")
            continue
        columns = tuple(_clean_column(f) for f in fields)
        folded = {c.casefold() for c in columns}
        phone = next((p for p in PHONE_COLUMNS if p in folded), None)
        if phone is not None and CREATED_AT_COLUMN in folded:
            return delimiter, columns, phone
        found = (phone is not None) + (CREATED_AT_COLUMN in folded)
        attempts.append((found, len(columns), delimiter, columns))
    if not attempts:
        raise SessionsCsvError(
            "the CSV header line cannot be split (" + "; ".join(problems) + "): expected a header line such "
            "as 'source;session_created_at'"
        )
    # Report the split that came closest, so the message shows the columns the way the file meant them.
    _found, _count, delimiter, columns = max(attempts, key=lambda a: (a[0], a[1], a[2] == DELIMITERS[0]))
    folded = {c.casefold() for c in columns}
    missing = [repr(c) for c in (CREATED_AT_COLUMN,) if c not in folded]
    if not folded.intersection(PHONE_COLUMNS):
        missing.insert(0, "a phone column ('source', 'origin' or 'origem')")
    raise SessionsCsvError(
        f"the CSV header has columns {_columns_for_message(columns)} (split on {delimiter!r}); expected "
        f"{_EXPECTED}, extra columns allowed; missing: {', '.join(missing)}"
        + "".join(f" ({problem})" for problem in problems)
        + ". Check that the file is the open-sessions CSV (the API may have changed its columns)"
    )


class SessionsCsvChecker:
    """
    Verify the open-sessions CSV incrementally: feed it the bytes as they download, then call :meth:`finish`.

    Errors are raised as early as the data allows (a non-CSV body at its first significant bytes, a bad
    header as soon as its line is complete) and are sticky: after one, :meth:`feed` and :meth:`finish` raise
    it again.

    :param hash_bytes: compute the SHA-256 of the bytes fed (the summary's ``sha256`` is ``""`` otherwise).
    """

    def __init__(self, *, hash_bytes: bool = True) -> None:
        """
        Start a verification.

        :param hash_bytes: compute the SHA-256 of the bytes fed.
        """
        self._hash = hashlib.sha256() if hash_bytes else None
        self._bytes = 0
        self._rows = 0
        self._error: SessionsCsvError | None = None
        self._summary: SessionsCsvSummary | None = None
        # The header phase keeps what arrived until the first line is complete (bounded by MAX_HEADER_BYTES
        # plus one chunk), plus how far each scan over it got, so tiny chunks stay linear.
        self._head = bytearray()
        self._checked_to = 0
        self._blank_to = 0
        self._significant = -1
        self._lf_from = 0
        self._utf8 = codecs.getincrementaldecoder("utf-8")()
        self._checked_utf8_to = 0
        self._columns: tuple[str, ...] | None = None
        self._delimiter = ""
        self._phone_column = ""
        self._bom = False
        # Body state, carried across chunk boundaries.
        self._simple = _SIMPLE_LINES[DELIMITERS[0]]
        self._events = _EVENTS[DELIMITERS[0]]
        self._delimiter_byte = 0
        self._quote = _OUT
        self._line_empty = True  # the current record has no byte yet (a line end here is a blank line)
        self._last = _LF  # the last body byte: a quote opens a quoted field only at the start of a field
        self._quote_offset = 0
        self._scratch: Any = None  # NumPy work array, reused from chunk to chunk

    @property
    def header(self) -> tuple[str, ...] | None:
        """Return the header column names once the header line is complete, else ``None``."""
        return self._columns

    @property
    def rows_so_far(self) -> int:
        """Return the data rows completed so far (a last line without line end counts at :meth:`finish`)."""
        return self._rows

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
        :raises SessionsCsvError: the file is not a valid open-sessions CSV.
        :raises RuntimeError: :meth:`finish` was already called.
        """
        if self._summary is not None:
            raise RuntimeError("SessionsCsvChecker.feed() called after finish(); use a new checker per file")
        if self._error is not None:
            raise SessionsCsvError(*self._error.args)
        if isinstance(chunk, memoryview):
            chunk = bytes(chunk)
        if not chunk:
            return
        self._bytes += len(chunk)
        if self._hash is not None:
            self._hash.update(chunk)
        try:
            if self._columns is None:
                kept = len(self._head)
                self._head += chunk[: _HEAD_CAP - kept]
                end = self._scan_head(at_eof=False)
                if end < 0:
                    return
                chunk = chunk[end + 1 - kept :]  # the header's LF is always in this chunk
                self._head = bytearray()
                if not chunk:
                    return
            self._feed_body(chunk, self._bytes - len(chunk))
        except SessionsCsvError as exc:
            self._error = exc
            raise

    def finish(self) -> SessionsCsvSummary:
        """
        Complete the verification at the end of the download.

        Calling it again returns the same summary.

        :return: the summary of the file.
        :raises SessionsCsvError: the file is empty, has no valid header, or ends inside a quoted field.
        """
        if self._summary is not None:
            return self._summary
        if self._error is not None:
            raise SessionsCsvError(*self._error.args)
        try:
            if self._columns is None:
                if not self._head:
                    raise SessionsCsvError(
                        "the downloaded file is empty (0 bytes): even with no open sessions the file has a "
                        "header line ('source;session_created_at'), so the download failed or the file host "
                        "served nothing; " + _NEW_URL
                    )
                self._scan_head(at_eof=True)
            if self._quote == _IN:
                raise SessionsCsvError(
                    f"the CSV ends inside a quoted field that opens at byte {self._quote_offset} (after "
                    f"{self._rows} complete data rows): the download was cut short or the file is not valid "
                    "CSV; " + _NEW_URL
                )
        except SessionsCsvError as exc:
            self._error = exc
            raise
        if not self._line_empty:  # the last record has no line end
            self._rows += 1
            self._line_empty = True
        assert self._columns is not None  # _scan_head(at_eof=True) parses the header or raises
        self._summary = SessionsCsvSummary(
            rows=self._rows,
            bytes=self._bytes,
            sha256=self._hash.hexdigest() if self._hash is not None else "",
            delimiter=self._delimiter,
            columns=self._columns,
            phone_column=self._phone_column,
            encoding_bom=self._bom,
        )
        return self._summary

    # -- header -------------------------------------------------------------------------------------------

    def _scan_head(self, *, at_eof: bool) -> int:
        """
        Look at the bytes buffered so far and parse the header once its line is complete.

        :param at_eof: no more bytes will come, so the buffer ends the first line.
        :return: the index of the LF ending the header line (``len(head)`` when the end of file ends it),
            or -1 while more bytes are needed.
        :raises SessionsCsvError: the beginning of the file shows it is not the open-sessions CSV.
        """
        head = self._head
        binary = _binary_error(bytes(head[:4]))
        if binary is not None:
            raise binary
        if not at_eof and any(len(magic) > len(head) and magic.startswith(head) for magic in _MAGICS):
            return -1  # too few bytes to tell a BOM or a signature from data
        bom = len(_BOM) if head.startswith(_BOM) else 0
        first = self._first_significant(bom, at_eof=at_eof)
        if first < 0:
            return -1
        if head[first] in b"<{[":
            foreign = _foreign_error(head, first, at_eof=at_eof)
            if foreign is None:
                return -1
            raise foreign
        lf = head.find(b"\n", max(self._lf_from, bom))
        self._lf_from = len(head)
        if 0 <= lf < first:
            raise SessionsCsvError(_BLANK_FIRST_LINE)
        end = lf if lf >= 0 else len(head)
        self._check_header_bytes(bom, end, final=lf >= 0 or at_eof)
        if lf < 0 and not at_eof:
            return -1
        try:
            self._delimiter, self._columns, self._phone_column = parse_header(bytes(head[:end]))
        except SessionsCsvError as exc:
            if lf >= 0:
                raise
            raise SessionsCsvError(
                f"the file ended inside its first line ({len(head)} bytes, no line break), so the download "
                f"may have been cut short; {exc}"
            ) from None
        self._bom = bom > 0
        self._simple = _SIMPLE_LINES[self._delimiter]
        self._events = _EVENTS[self._delimiter]
        self._delimiter_byte = ord(self._delimiter)
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
                raise SessionsCsvError(
                    f"the file starts with more than {MAX_HEADER_BYTES // 1024} KiB of blank space and no "
                    "header: it is not the open-sessions CSV; " + _NEW_URL
                )
            elif at_eof:
                raise SessionsCsvError(
                    f"the file holds only blank space ({len(head)} bytes) and no header line: even with no "
                    "open sessions the file has the header 'source;session_created_at'; " + _NEW_URL
                )
        return self._significant

    def _check_header_bytes(self, bom: int, end: int, *, final: bool) -> None:
        """
        Check the bytes of the first line that arrived since the last call: no NUL, UTF-8, bounded.

        :param bom: the length of the BOM the file starts with (0 or 3).
        :param end: where the first line ends so far (its LF, or the end of the buffer).
        :param final: the first line is complete.
        """
        head = self._head
        nul = head.find(b"\0", self._checked_to, end)  # a NUL further on is the body's concern
        if nul >= 0:
            raise _nul_error(nul)
        self._checked_to = end
        try:
            self._utf8.decode(bytes(head[max(self._checked_utf8_to, bom) : end]), final=final)
        except UnicodeDecodeError:
            raise _not_utf8_error(bytes(head[bom:end]), bom) from None
        self._checked_utf8_to = end
        if end - bom > MAX_HEADER_BYTES:
            raise SessionsCsvError(
                f"no line break in the first {MAX_HEADER_BYTES // 1024} KiB of the file: this is not the "
                "open-sessions CSV, whose header is a short line such as 'source;session_created_at'"
            )

    # -- body ---------------------------------------------------------------------------------------------

    def _feed_body(self, chunk: bytes | bytearray | mmap.mmap, base: int) -> None:
        """
        Count the records in a non-empty chunk of the body.

        :param chunk: bytes after the header line.
        :param base: the offset of ``chunk`` in the file.
        """
        nul = chunk.find(b"\0")
        if nul >= 0:
            raise _nul_error(base + nul)
        # find(), not `in`: an mmap has no __contains__, so `in` would iterate over it in Python.
        if self._quote != _IN and chunk.find(b'"') < 0:
            self._feed_unquoted(chunk)
        else:
            self._feed_quoted(_with_count(chunk), base)
        self._last = chunk[-1]

    def _feed_unquoted(self, chunk: bytes | bytearray | mmap.mmap) -> None:
        """
        Count the records in a chunk without quotes, starting outside quotes: C-speed scans only.

        Outside quotes a line ends at LF, CRLF or a lone CR, and ends a record unless the line is empty (csv
        skips blank lines). The LF of a CRLF can equally be seen as ending an empty line after the CR, which
        is why a CRLF cut by a chunk boundary needs no special care.

        :param chunk: a non-empty chunk without ``"``.
        """
        self._quote = _OUT  # a pending closing quote is followed by a non-quote: the quoting ends
        if chunk.find(b"\r") >= 0:
            chunk = _with_count(chunk)
            if chunk[-1] != _CR and not _LONE_CR.search(chunk) and not _LF_THEN_TERMINATOR.search(chunk):
                # Every CR is the start of a CRLF and no line end follows another: one record per LF.
                line_ends, blanks = chunk.count(b"\n"), 0
            else:
                line_ends = chunk.count(b"\n") + chunk.count(b"\r") - chunk.count(b"\r\n")
                blanks = len(_BLANK_AFTER_LF_OR_CRLF.findall(chunk))
                blanks += len(_BLANK_AFTER_LONE_CR.findall(chunk))
        else:
            line_ends, blanks = self._count_lf(chunk)
        if self._line_empty and chunk[0] in (_LF, _CR):
            blanks += 1
        self._line_empty = chunk[-1] in (_LF, _CR)
        self._rows += line_ends - blanks

    def _count_lf(self, chunk: bytes | bytearray | mmap.mmap) -> tuple[int, int]:
        """
        Count the line ends of a chunk without quotes or CRs, and the blank lines among them.

        :param chunk: a non-empty chunk without ``"`` or CR.
        :return: the number of LFs, and of LFs directly after another LF (each ends a blank line).
        """
        numpy = vector_module() if len(chunk) >= VECTOR_MIN_BYTES else None
        if numpy is None:
            chunk = _with_count(chunk)
            line_ends = chunk.count(b"\n")
            if not _LF_LF.search(chunk):
                return line_ends, 0
            # LFs right after an LF = all LFs - runs of LFs. Counted with C-speed scans: a regular
            # expression listing each blank line costs milliseconds per 64 KiB of blank lines.
            runs = chunk.translate(_LF_OR_A).count(b"a\n") + (chunk[0] == _LF)
            return line_ends, line_ends - runs
        size = len(chunk)
        if self._scratch is None or len(self._scratch) < 2 * size:
            self._scratch = numpy.empty(2 * size, dtype=numpy.bool_)
        is_lf = self._scratch[:size]
        numpy.equal(numpy.frombuffer(chunk, dtype=numpy.uint8), _LF, out=is_lf)
        lf_after_lf = self._scratch[size : 2 * size - 1]
        numpy.logical_and(is_lf[:-1], is_lf[1:], out=lf_after_lf)
        return int(numpy.count_nonzero(is_lf)), int(numpy.count_nonzero(lf_after_lf))

    def _feed_quoted(self, chunk: bytes | bytearray, base: int) -> None:
        """
        Count the records in a chunk that has quotes or starts inside a quoted field.

        :param chunk: a non-empty chunk.
        :param base: the offset of ``chunk`` in the file.
        """
        size = len(chunk)
        simple = self._simple.match
        pos = 0
        while pos < size:
            if self._quote == _OUT and self._line_empty:
                match = simple(chunk, pos)
                end = match.end() if match is not None else pos
                if end > pos:
                    self._rows += chunk.count(b"\n", pos, end)
                    pos = end
                    if pos == size:
                        break
            pos = self._scan_record(chunk, pos, base)

    def _scan_record(self, chunk: bytes | bytearray, pos: int, base: int) -> int:
        """
        Run the csv state machine from ``pos`` through the next line end outside quotes, or the chunk's end.

        This mirrors ``Modules/_csv.c`` (default dialect, not strict) as far as counting records needs.

        :param chunk: the chunk.
        :param pos: where to start.
        :param base: the offset of ``chunk`` in the file.
        :return: the position after the line end, or ``len(chunk)``.
        """
        size = len(chunk)
        quote = self._quote
        line_empty = self._line_empty
        while pos < size:
            if quote == _IN:
                run = _QUOTED_RUN.match(chunk, pos)
                pos = run.end() + 1 if run is not None else pos + 1  # line ends inside quotes are data
                if pos > size:
                    pos = size
                    break
                quote = _AFTER
                continue
            if quote == _AFTER:
                if chunk[pos] == _QUOTE:  # an escaped quote
                    quote = _IN
                    pos += 1
                    continue
                quote = _OUT  # the quoted field ended; csv keeps any following text in the same field
            if pos == 0 and chunk[0] == _QUOTE and self._last in (self._delimiter_byte, _LF, _CR):
                event: re.Match[bytes] | None = _CHUNK_START_QUOTE.match(chunk)
            else:
                event = self._events.search(chunk, pos)
            at = size if event is None else event.start()
            if at > pos:  # field bytes
                line_empty = False
            if event is None:
                pos = size
                break
            pos = at + 1
            if chunk[at] == _QUOTE:  # only a quote at the start of a field is an event: it opens quoting
                line_empty = False
                quote = _IN
                self._quote_offset = base + at
            else:
                if not line_empty:
                    self._rows += 1
                line_empty = True
                break
        self._quote = quote
        self._line_empty = line_empty
        return pos
