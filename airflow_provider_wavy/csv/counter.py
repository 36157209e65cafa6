"""
Count the data rows of a CSV body exactly as :func:`csv.reader` would, chunk by chunk, at C speed.

The count is the number of non-empty records ``csv.reader`` yields when the file is read as text with
``newline=""``: blank lines do not count, quoted fields may hold delimiters, ``""`` escapes and line breaks,
and the non-RFC input that ``csv`` tolerates (a quote inside an unquoted field, text after a closing quote,
a lone CR ending a record) is counted the way ``csv`` counts it.

Speed: a chunk without a quote costs one ``bytes.count`` and one or two regular-expression searches that
prove it has no blank line and no lone CR; a chunk with quotes is consumed line by line by a single regular
expression that accepts the common shapes, and only the lines it rejects (and the partial line at each chunk
boundary) go through a small state machine in Python. When NumPy is installed (the ``numpy`` extra), large
quote-free chunks are counted with it instead: about five times less CPU than the two scans, and without
holding the GIL, so hashing and writing threads run alongside.
"""

from __future__ import annotations

import functools
import re
from typing import TYPE_CHECKING, Any, Final

from airflow_provider_wavy.csv.header import DELIMITERS

if TYPE_CHECKING:
    import mmap
    from types import ModuleType

_LF: Final = 0x0A
_CR: Final = 0x0D
_QUOTE: Final = 0x22
# Quote states of the csv state machine: outside quotes, inside a quoted field, and just after a quote
# inside a quoted field (where a second quote is an escaped quote and anything else ends the quoting).
_OUT: Final = 0
_IN: Final = 1
_AFTER: Final = 2

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


def with_count(chunk: bytes | bytearray | mmap.mmap) -> bytes | bytearray:
    """
    Return the chunk with all of ``bytes``' methods: an ``mmap`` (which has no ``count``) is copied.

    Only the rarer paths (quotes, CRs, no NumPy) need them; NumPy reads an ``mmap`` in place.

    :param chunk: a chunk of the file.
    """
    return chunk if isinstance(chunk, (bytes, bytearray)) else bytes(chunk)


class RowCounter:
    """
    Count the records of a CSV body fed in chunks that may split it anywhere; NUL bytes are the caller's.

    :param delimiter: ``";"`` or ``","``, as the header line showed.
    """

    def __init__(self, *, delimiter: str) -> None:
        """
        Start counting after the header line.

        :param delimiter: ``";"`` or ``","``.
        """
        self._simple = _SIMPLE_LINES[delimiter]
        self._events = _EVENTS[delimiter]
        self._delimiter_byte = ord(delimiter)
        #: Records completed so far (a last line without line end counts at :meth:`finish`).
        self.rows = 0
        self._quote = _OUT
        self._line_empty = True  # the current record has no byte yet (a line end here is a blank line)
        self._last = _LF  # the last body byte: a quote opens a quoted field only at the start of a field
        #: Where the last quoted field opened, in bytes from the file's start.
        self.quote_offset = 0
        self._scratch: Any = None  # NumPy work array, reused from chunk to chunk

    @property
    def in_quotes(self) -> bool:
        """Return whether the body so far ends inside a quoted field."""
        return self._quote == _IN

    def feed(self, chunk: bytes | bytearray | mmap.mmap, base: int) -> None:
        """
        Count the records in the next non-empty chunk of the body.

        :param chunk: bytes after the header line, without NUL.
        :param base: the offset of ``chunk`` in the file.
        """
        # find(), not `in`: an mmap has no __contains__, so `in` would iterate over it in Python.
        if self._quote != _IN and chunk.find(b'"') < 0:
            self._feed_unquoted(chunk)
        else:
            self._feed_quoted(with_count(chunk), base)
        self._last = chunk[-1]

    def finish(self) -> int:
        """Count a last record without line end, and return the number of records."""
        if not self._line_empty:
            self.rows += 1
            self._line_empty = True
        return self.rows

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
            chunk = with_count(chunk)
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
        self.rows += line_ends - blanks

    def _count_lf(self, chunk: bytes | bytearray | mmap.mmap) -> tuple[int, int]:
        """
        Count the line ends of a chunk without quotes or CRs, and the blank lines among them.

        :param chunk: a non-empty chunk without ``"`` or CR.
        :return: the number of LFs, and of LFs directly after another LF (each ends a blank line).
        """
        numpy = vector_module() if len(chunk) >= VECTOR_MIN_BYTES else None
        if numpy is None:
            chunk = with_count(chunk)
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
                    self.rows += chunk.count(b"\n", pos, end)
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
                self.quote_offset = base + at
            else:
                if not line_empty:
                    self.rows += 1
                line_empty = True
                break
        self._quote = quote
        self._line_empty = line_empty
        return pos


__all__ = ["VECTOR_MIN_BYTES", "RowCounter", "vector_module", "with_count"]
