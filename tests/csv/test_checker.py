"""Tests for the streaming verifier of the open-sessions CSV, with ``csv.reader`` as the oracle."""

from __future__ import annotations

import codecs
import csv
import hashlib
import io
import itertools
import mmap
import random
from typing import TYPE_CHECKING, NamedTuple

import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from airflow_provider_wavy.csv import counter
from airflow_provider_wavy.csv.checker import SessionsCsvChecker, SessionsCsvError, SessionsCsvSummary
from airflow_provider_wavy.csv.counter import VECTOR_MIN_BYTES
from airflow_provider_wavy.csv.header import DELIMITERS, MAX_HEADER_BYTES, parse_header

if TYPE_CHECKING:
    from collections.abc import Callable, Iterable, Sequence

BOM = codecs.BOM_UTF8
HEADER = b"source;session_created_at\n"
ROW = b"5511987654321;2026-11-23T14:05:09Z\n"


# -- helpers ----------------------------------------------------------------------------------------------


@pytest.fixture(autouse=True, params=["scans", "numpy"])
def counting(request: pytest.FixtureRequest, monkeypatch: pytest.MonkeyPatch) -> str:
    """
    Run every test of this module twice: with C scans only (no NumPy), and with NumPy counting every chunk.

    The NumPy run lowers the size threshold to one byte, so that chunks of any size, split anywhere, go
    through the vectorised count and are checked against ``csv.reader`` like the scans.
    """
    mode: str = request.param
    if mode == "scans":
        monkeypatch.setattr(counter, "vector_module", lambda: None)
    else:
        assert counter.vector_module() is not None, "NumPy is part of the test extra"
        monkeypatch.setattr(counter, "VECTOR_MIN_BYTES", 1)
    return mode


def in_mmap(chunk: bytes) -> mmap.mmap | bytes:
    """
    Copy a chunk into anonymous memory, as the operator's download buffers are (an empty one stays bytes).

    :param chunk: the bytes to carry.
    """
    if not chunk:
        return chunk
    buffer = mmap.mmap(-1, len(chunk))
    buffer[:] = chunk
    return buffer


#: How verify() hands chunks to the checker: as they are, or in mmap buffers (set by the `carrier` fixture).
CARRIERS: dict[str, Callable[[bytes], bytes | mmap.mmap]] = {"bytes": bytes, "mmap": in_mmap}
carry = CARRIERS["bytes"]


@pytest.fixture(autouse=True, params=list(CARRIERS))
def carrier(request: pytest.FixtureRequest, monkeypatch: pytest.MonkeyPatch) -> str:
    """
    Run every test of this module with chunks as bytes, and again in ``mmap`` buffers as the operator has.

    An ``mmap`` lacks some of ``bytes``' methods (``count``, ``in``): every path must read it correctly.
    """
    name: str = request.param
    monkeypatch.setitem(globals(), "carry", CARRIERS[name])
    return name


def verify(chunks: Iterable[bytes], *, hash_bytes: bool = True) -> SessionsCsvSummary:
    """
    Feed the chunks to a new checker, carried as the `carrier` fixture says, and finish it.

    :param chunks: the file, in pieces.
    :param hash_bytes: passed to the checker.
    """
    checker = SessionsCsvChecker(hash_bytes=hash_bytes)
    for chunk in chunks:
        checker.feed(carry(chunk))
    return checker.finish()


def split_at(data: bytes, cuts: Iterable[int]) -> list[bytes]:
    """
    Split ``data`` at the given offsets (any order, duplicates give empty chunks).

    :param data: the bytes to split.
    :param cuts: offsets between 0 and ``len(data)``.
    """
    bounds = [0, *sorted(cuts), len(data)]
    return [data[a:b] for a, b in itertools.pairwise(bounds)]


def csv_rows(data: bytes, delimiter: str) -> int:
    """
    Count data rows the way a consumer of the file would: non-empty ``csv.reader`` records after the header.

    :param data: the whole file.
    :param delimiter: the field delimiter.
    """
    text = data.decode("utf-8-sig")
    records = list(csv.reader(io.StringIO(text, newline=""), delimiter=delimiter))
    return sum(1 for record in records[1:] if record)


def reference_count(body: str, delimiter: str) -> tuple[int, bool]:
    """
    Count records with a character-by-character mirror of ``Modules/_csv.c`` (default dialect, not strict).

    Unlike ``csv.reader``, which silently returns a record cut by the end of the file inside a quoted
    field, this says so.

    :param body: the text after the header line.
    :param delimiter: the field delimiter.
    :return: the number of complete non-empty records and whether the text ends inside a quoted field.
    """
    rows = 0
    state = "start_record"
    for line in io.StringIO(body, newline=""):
        for char in [*line, None]:  # None stands for the end of the line, as in _csv.c
            line_end = char is None or char in "\r\n"
            if state == "start_record":
                if char is None:
                    continue
                if char in "\r\n":
                    state = "eat_crnl"
                    continue
                state = "start_field"
            if state in ("start_field", "in_field", "quote_in_quoted") and line_end:
                rows += 1
                state = "start_record" if char is None else "eat_crnl"
            elif state == "start_field":
                state = "in_quoted" if char == '"' else "start_field" if char == delimiter else "in_field"
            elif state == "in_field":
                state = "start_field" if char == delimiter else "in_field"
            elif state == "in_quoted":
                state = "quote_in_quoted" if char == '"' else "in_quoted"
            elif state == "quote_in_quoted":
                state = "in_quoted" if char == '"' else "start_field" if char == delimiter else "in_field"
            elif state == "eat_crnl" and char is None:
                state = "start_record"
    return rows, state == "in_quoted"


@pytest.fixture(params=[None, 1, 2, 7, 64], ids=lambda size: "whole" if size is None else f"chunks-of-{size}")
def feed_all(request: pytest.FixtureRequest) -> Callable[[bytes], SessionsCsvSummary]:
    """Return a function verifying a whole file fed in one chunk or in chunks of a fixed size."""
    size: int | None = request.param

    def run(data: bytes) -> SessionsCsvSummary:
        if size is None:
            return verify([data])
        return verify(data[i : i + size] for i in range(0, len(data), size))

    return run


# -- valid files ------------------------------------------------------------------------------------------


class Expect(NamedTuple):
    """What the summary of a valid file holds (``columns`` only checked when given)."""

    rows: int
    delimiter: str = ";"
    columns: tuple[str, ...] | None = None
    bom: bool = False


STANDARD = ("source", "session_created_at")
CRLF_HEADER = HEADER.replace(b"\n", b"\r\n")

VALID = [
    pytest.param(HEADER + ROW * 3, Expect(3, columns=STANDARD), id="semicolon-lf"),
    pytest.param(b"source,session_created_at\n5511,2026\n5512,2026\n", Expect(2, ","), id="comma"),
    pytest.param(BOM + HEADER + ROW * 2, Expect(2, bom=True), id="bom"),
    pytest.param(BOM + (HEADER + ROW * 2).replace(b"\n", b"\r\n"), Expect(2, bom=True), id="bom-crlf"),
    pytest.param(HEADER + ROW + ROW.rstrip(b"\n"), Expect(2), id="no-final-newline"),
    pytest.param(CRLF_HEADER + b"1;2\r\n3;4", Expect(2), id="crlf-no-final-newline"),
    pytest.param(HEADER + b"1;2\n3;4\r\n5;6\n", Expect(3), id="mixed-line-ends"),
    pytest.param(
        b'"source";"session_created_at"\n"5511";"2026-11-23"\n', Expect(1, columns=STANDARD), id="all-quoted"
    ),
    pytest.param(HEADER + b'"55;11";"a ""quoted"" word"\n2;3\n', Expect(2), id="quoted-delimiter-escapes"),
    pytest.param(HEADER + b'1;"line one\nline two"\n2;"x\r\n\r\ny"\r\n', Expect(2), id="quoted-newlines"),
    pytest.param(HEADER + b'1;"\n\n\n"\n', Expect(1), id="quoted-blank-lines"),
    pytest.param(
        b"campaign;source;channel;session_created_at\nc;1;w;2\n",
        Expect(1, columns=("campaign", "source", "channel", "session_created_at")),
        id="extra-columns",
    ),
    pytest.param(
        b"origin;session_created_at\n1;2\n", Expect(1, columns=("origin", "session_created_at")), id="origin"
    ),
    pytest.param(
        b' "Source" ; SESSION_CREATED_AT \n1;2\n',
        Expect(1, columns=("Source", "SESSION_CREATED_AT")),
        id="header-case-spaces-quotes",
    ),
    pytest.param(b'"source,x",session_created_at,origin\n1,2,3\n', Expect(1, ","), id="quoted-header-name"),
    pytest.param(HEADER, Expect(0), id="header-only"),
    pytest.param(HEADER.rstrip(b"\n"), Expect(0), id="header-only-no-newline"),
    pytest.param(BOM + CRLF_HEADER, Expect(0, bom=True), id="header-only-bom-crlf"),
    pytest.param(HEADER + b"\n\n1;2\n\n\n3;4\n\n", Expect(2), id="blank-lines"),
    pytest.param(HEADER + b"\r\n1;2\r\n\r\n\r\n3;4\r\n\r\n", Expect(2), id="blank-lines-crlf"),
    pytest.param(HEADER + b"1;2\n\r\n\n3;4", Expect(2), id="blank-lines-mixed"),
    pytest.param(HEADER + b" \n\t\n", Expect(2), id="whitespace-lines-are-records"),
    pytest.param(HEADER + b'""\n;\n', Expect(2), id="empty-fields-are-records"),
    pytest.param(HEADER + b"1;2\r3;4\r\r5;6\n", Expect(3), id="lone-cr-ends-records-like-csv"),
    pytest.param(HEADER + b'1;ab"c\n2;d"\n', Expect(2), id="quote-inside-unquoted-field"),
    pytest.param(HEADER + b'1;"ab"c"d\n2;3\n', Expect(2), id="text-after-closing-quote"),
    pytest.param(b"source;origin;session_created_at\n1;2;3\n", Expect(1), id="source-and-origin"),
]


@pytest.mark.parametrize(("data", "expect"), VALID)
def test_valid_file(feed_all: Callable[[bytes], SessionsCsvSummary], data: bytes, expect: Expect) -> None:
    assert csv_rows(data, expect.delimiter) == expect.rows, "the expected count disagrees with csv.reader"
    summary = feed_all(data)
    assert summary.rows == expect.rows
    assert summary.delimiter == expect.delimiter
    assert summary.encoding_bom is expect.bom
    assert summary.bytes == len(data)
    assert summary.sha256 == hashlib.sha256(data).hexdigest()
    if expect.columns is not None:
        assert summary.columns == expect.columns
    assert summary.phone_column in ("source", "origin")


@pytest.mark.parametrize("size", [None, 4096], ids=["whole", "chunks-of-4096"])
def test_long_header_within_limit(size: int | None) -> None:
    header = b"source;session_created_at;" + b"x" * (MAX_HEADER_BYTES - 30) + b"\r\n"
    data = BOM + header + ROW * 3
    chunks = [data] if size is None else [data[i : i + size] for i in range(0, len(data), size)]
    summary = verify(chunks)
    assert (summary.rows, len(summary.columns)) == (3, 3)


def test_phone_column_prefers_source() -> None:
    assert verify([b"origin;source;session_created_at\n"]).phone_column == "source"
    assert verify([b"Origin;session_created_at\n"]).phone_column == "origin"
    assert verify([b"origem;session_created_at\n"]).phone_column == "origem"


# -- invalid files ----------------------------------------------------------------------------------------

INVALID = [
    pytest.param(b"", r"empty \(0 bytes\)", id="empty"),
    pytest.param(b"<!DOCTYPE html><html><body>Expired</body></html>", r"returned an HTML page", id="html"),
    pytest.param(b"\r\n  <html>\n<p>x</p>", r"returned an HTML page", id="html-after-blank-lines"),
    pytest.param(BOM + b"<HTML>", r"returned an HTML page", id="html-after-bom"),
    pytest.param(
        b'<?xml version="1.0"?><Error><Code>AccessDenied</Code>'
        b"<Message>Request has expired</Message></Error>",
        r"XML document .*expired",
        id="xml-storage-error",
    ),
    pytest.param(
        b'{"errorCode": 403, "errorMessage": "link expired"}', r'JSON error .*"link expired"', id="json"
    ),
    pytest.param(b'\n  [{"error": "gone"}]', r'JSON error .*"gone"', id="json-array"),
    pytest.param(
        b'{\n  "message":\n  "Not Found"\n}\n',
        r'JSON error from the file host: \{ "message": "Not Found" \}',
        id="json-pretty",
    ),
    pytest.param(
        b"source;created_at\n1;2\n",
        r"columns \['source', 'created_at'\].*missing: 'session_created_at'",
        id="missing-created-at",
    ),
    pytest.param(b"phone,session_created_at\n1,2\n", r"missing: a phone column", id="missing-phone"),
    pytest.param(b"source\tsession_created_at\n1\t2\n", r"missing: a phone column", id="tab-delimited"),
    pytest.param(
        b"source;sess",
        r"ended inside its first line .*missing: 'session_created_at'",
        id="header-only-partial",
    ),
    pytest.param(bytes(range(256)) * 4, r"NUL byte at offset 0", id="binary-garbage"),
    pytest.param(b"\x89PNG\r\n\x1a\n\x00\x00", r"not UTF-8 \(byte 0x89 at offset 0\)", id="png"),
    pytest.param(b"\x1f\x8b\x08\x00\x00\x00", r"gzip-compressed", id="gzip"),
    pytest.param(b"PK\x03\x04\x14\x00", r"ZIP archive", id="zip"),
    pytest.param("source;session_created_at\n".encode("utf-16"), r"UTF-16", id="utf-16"),
    pytest.param(
        "orígem;session_created_at\n".encode("latin-1"), r"not UTF-8 \(byte 0xed at offset 2\)", id="latin-1"
    ),
    pytest.param(HEADER + ROW + b"\x00" * 10, r"NUL byte at offset 61", id="nul-in-body"),
    pytest.param(
        HEADER + b'1;"2\n3;4\n',
        r"ends inside a quoted field that opens at byte 28 \(after 0 complete",
        id="unterminated-quote",
    ),
    pytest.param(
        HEADER + ROW + b'2;"x', r"ends inside a quoted field .*after 1 complete", id="truncated-in-quote"
    ),
    pytest.param(b"x" * (MAX_HEADER_BYTES + 1), r"no line break in the first 64 KiB", id="header-too-long"),
    pytest.param(b"\n" + HEADER, r"first line of the file is blank", id="blank-first-line"),
    pytest.param(BOM + b" \r\n \t", r"only blank space", id="only-blank"),
    pytest.param(HEADER.replace(b"\n", b"\r") + b"1;2\r", r"CR alone", id="cr-only-line-ends"),
    pytest.param(b'source;"session_created_at\n', r"not valid CSV", id="header-unbalanced-quote"),
]


@pytest.mark.parametrize(("data", "message"), INVALID)
def test_invalid_file(feed_all: Callable[[bytes], SessionsCsvSummary], data: bytes, message: str) -> None:
    with pytest.raises(SessionsCsvError, match=message):
        feed_all(data)


def test_json_snippet_is_bounded_and_printable() -> None:
    data = b'{"error": "\x07\x1b[31m' + b"x" * 5000 + b'"}'
    with pytest.raises(SessionsCsvError) as info:
        verify([data])
    snippet = str(info.value).split("file host: ", 1)[1].split(" -- ", 1)[0]
    assert len(snippet) <= 200
    assert snippet.isprintable()


def test_xml_error_body_is_not_quoted() -> None:
    """A storage error can echo the signed request; none of it may reach the message (and the logs)."""
    data = b"<?xml version='1.0'?><Error><Code>SignatureDoesNotMatch</Code><StringToSign>X-Amz-Token=s3cr3t"
    with pytest.raises(SessionsCsvError) as info:
        verify([data])
    assert "s3cr3t" not in str(info.value)


# -- early errors -----------------------------------------------------------------------------------------

EARLY = [
    pytest.param([b"<!DOCTYPE html>"], r"HTML page", id="html-doctype"),
    pytest.param([b"<?xml version='1.0'?>", b" " * 500], r"XML document", id="xml-once-told-from-html"),
    pytest.param(
        [b"source;created", b"_at\n"], r"missing: 'session_created_at'", id="bad-header-at-line-end"
    ),
    pytest.param([b"\x00\x01\x02"], r"NUL byte", id="binary-before-line-end"),
    pytest.param([b"sour\xff"], r"not UTF-8", id="not-utf8-before-line-end"),
    pytest.param([b'{"error": "', b"x" * 1000], r"JSON error", id="json-once-quotable"),
    pytest.param([b"x" * MAX_HEADER_BYTES, b"x"], r"no line break", id="long-header-at-limit"),
    pytest.param([HEADER, ROW, b"1;\x002\n"], r"NUL byte at offset 63", id="nul-in-body"),
]


@pytest.mark.parametrize(("chunks", "message"), EARLY)
def test_error_raised_by_feed(chunks: list[bytes], message: str) -> None:
    checker = SessionsCsvChecker()
    for chunk in chunks[:-1]:
        checker.feed(chunk)
    with pytest.raises(SessionsCsvError, match=message):
        checker.feed(chunks[-1])


def test_error_is_sticky() -> None:
    checker = SessionsCsvChecker()
    with pytest.raises(SessionsCsvError, match="HTML"):
        checker.feed(b"<html>")
    with pytest.raises(SessionsCsvError, match="HTML"):
        checker.feed(HEADER)
    with pytest.raises(SessionsCsvError, match="HTML"):
        checker.finish()


def test_feed_after_finish_is_a_usage_error() -> None:
    checker = SessionsCsvChecker()
    checker.feed(HEADER)
    first = checker.finish()
    assert checker.finish() is first
    with pytest.raises(RuntimeError, match="after finish"):
        checker.feed(ROW)


def test_progress_properties() -> None:
    checker = SessionsCsvChecker()
    assert checker.header is None
    checker.feed(HEADER[:5])
    assert (checker.header, checker.rows_so_far, checker.bytes_so_far) == (None, 0, 5)
    checker.feed(HEADER[5:] + ROW + ROW[:4])
    assert checker.header == ("source", "session_created_at")
    assert checker.rows_so_far == 1
    checker.feed(ROW[4:-1])
    assert checker.rows_so_far == 1
    summary = checker.finish()
    assert summary.rows == checker.rows_so_far == 2
    assert summary.bytes == checker.bytes_so_far == len(HEADER) + 2 * len(ROW) - 1


def test_without_hashing_and_with_buffer_types() -> None:
    data = HEADER + ROW
    checker = SessionsCsvChecker(hash_bytes=False)
    checker.feed(bytearray(data[:10]))
    checker.feed(memoryview(data)[10:])
    summary = checker.finish()
    assert (summary.rows, summary.sha256, summary.bytes) == (1, "", len(data))


@pytest.mark.parametrize(
    "make_buffer", [bytearray, lambda size: mmap.mmap(-1, size)], ids=["bytearray", "mmap"]
)
def test_buffer_is_read_in_place_and_can_be_reused(
    make_buffer: Callable[[int], bytearray | mmap.mmap],
) -> None:
    """The operator refills one buffer: the checker must keep nothing of a chunk once feed() returns."""
    data = HEADER + ROW * 5000 + b"\n" + ROW * 3000 + b'1;"two\nlines"\n'
    reused = make_buffer(4096)
    checker = SessionsCsvChecker()
    for start in range(0, len(data), len(reused)):
        piece = data[start : start + len(reused)]
        reused[: len(piece)] = piece
        checker.feed(reused if len(piece) == len(reused) else reused[: len(piece)])
        reused[:] = b"\n" * len(reused)  # anything kept from the chunk would now read as blank lines
    summary = checker.finish()
    assert summary.rows == csv_rows(data, ";") == 8001
    assert summary.sha256 == hashlib.sha256(data).hexdigest()


def test_numpy_counts_only_large_chunks(counting: str, monkeypatch: pytest.MonkeyPatch) -> None:
    """Small files never import NumPy; large quote-free chunks are counted with it when it is installed."""
    monkeypatch.setattr(counter, "VECTOR_MIN_BYTES", VECTOR_MIN_BYTES)
    looked_up: list[bool] = []
    real = counter.vector_module

    def spy() -> object:
        looked_up.append(True)
        return real()

    monkeypatch.setattr(counter, "vector_module", spy)
    small = SessionsCsvChecker()
    small.feed(HEADER + ROW * 1000)
    assert looked_up == []
    big = SessionsCsvChecker()
    body = ROW * (VECTOR_MIN_BYTES // len(ROW) + 1)
    big.feed(HEADER)
    big.feed(body + b"\n" + body)  # one blank line in the middle of a large chunk
    assert looked_up == [True]
    assert big.finish().rows == 2 * body.count(b"\n")
    assert big._counter is not None
    assert (big._counter._scratch is not None) is (counting == "numpy")


# -- parse_header -----------------------------------------------------------------------------------------

HEADERS = [
    pytest.param(b"source;session_created_at", (";", ("source", "session_created_at"), "source"), id="plain"),
    pytest.param(
        BOM + b"origin,session_created_at\r\n",
        (",", ("origin", "session_created_at"), "origin"),
        id="bom-crlf",
    ),
    pytest.param(
        b"a,b;source;session_created_at",
        (";", ("a,b", "source", "session_created_at"), "source"),
        id="comma-in-name",
    ),
    pytest.param(
        b"source,session_created_at,a;b",
        (",", ("source", "session_created_at", "a;b"), "source"),
        id="semicolon-in-name",
    ),
    pytest.param(
        b"'source';\xef\xbb\xbfsession_created_at",
        (";", ("source", "session_created_at"), "source"),
        id="odd-quotes-bom",
    ),
]


@pytest.mark.parametrize(("line", "expected"), HEADERS)
def test_parse_header(line: bytes, expected: tuple[str, tuple[str, ...], str]) -> None:
    assert parse_header(line) == expected


def test_parse_header_takes_one_line() -> None:
    with pytest.raises(ValueError, match="single line"):
        parse_header(HEADER + ROW)


def test_parse_header_error_lists_columns_bounded() -> None:
    line = ";".join(f"column_{i}" for i in range(100)).encode()
    with pytest.raises(SessionsCsvError, match=r"'column_19'\] and 80 more \(split on ';'\)"):
        parse_header(line)


# -- chunk boundaries -------------------------------------------------------------------------------------

TRICKY = (
    BOM
    + b'"source";session_created_at\r\n'
    + b'1;"a;b"\r\n\r\n'
    + b'2;"x""y\r\nz"\n'
    + b"\n\r\n"
    + b'3;ab"c\r'
    + b'4;"q"r\r\r\n'
    + b'"";\n'
    + b"5;6"
)


def test_tricky_file_matches_csv() -> None:
    assert csv_rows(TRICKY, ";") == 6
    assert verify([TRICKY]).rows == 6


def test_every_split_gives_the_same_summary() -> None:
    whole = verify([TRICKY])
    for i in range(len(TRICKY) + 1):
        assert verify(split_at(TRICKY, [i])) == whole, f"split at {i}"
    for i in range(len(TRICKY) + 1):
        for j in range(i, len(TRICKY) + 1):
            assert verify(split_at(TRICKY, [i, j])) == whole, f"split at {i}, {j}"


@pytest.mark.slow  # hundreds of MiB through every checker
def test_large_file_in_realistic_chunks() -> None:
    """A few MiB of varied rows through the 1 MiB code paths, against csv.reader."""
    rng = random.Random(20261123)  # noqa: S311  # reproducible test data, not security
    out = io.StringIO()
    writer = csv.writer(out, delimiter=";", lineterminator="\r\n")
    writer.writerow(["source", "session_created_at", "note"])
    notes = ["", "plain", "with;delimiter", 'with "quotes"', "two\nlines", "crlf\r\ninside", "é日"]
    for _ in range(80_000):
        if rng.random() < 0.01:
            writer.writerow([])
        writer.writerow([f"55{rng.randrange(10**11):011d}", "2026-11-23T14:05:09Z", rng.choice(notes)])
    data = out.getvalue().encode()
    sizes = [1 << 20, 256 << 10, 65_537]
    for size in sizes:
        summary = verify(data[i : i + size] for i in range(0, len(data), size))
        assert summary.rows == csv_rows(data, ";")
        assert summary.sha256 == hashlib.sha256(data).hexdigest()


# -- properties -------------------------------------------------------------------------------------------

FIELD = st.text(alphabet=st.sampled_from(["a", "5", " ", ";", ",", '"', "\n", "\r", "é", "日"]), max_size=6)


@st.composite
def csv_files(draw: st.DrawFn) -> tuple[bytes, str, tuple[str, ...]]:
    """Draw a valid open-sessions CSV as ``csv.writer`` writes it: ``(bytes, delimiter, header)``."""
    delimiter = draw(st.sampled_from(DELIMITERS))
    phone = draw(st.sampled_from(["source", "origin", "Source", "ORIGIN"]))
    extras = draw(st.lists(st.sampled_from(["campaign", "Channel ID", "x_1"]), max_size=2))
    header = tuple(draw(st.permutations([phone, "session_created_at", *extras])))
    rows = draw(st.lists(st.lists(FIELD, max_size=4), max_size=12))
    quote_all = draw(st.booleans())
    out = io.StringIO()
    for row in [header, *rows]:
        line_end = draw(st.sampled_from(["\n", "\r\n"]))
        if quote_all:
            csv.writer(out, delimiter=delimiter, lineterminator=line_end, quoting=csv.QUOTE_ALL).writerow(row)
        else:
            csv.writer(out, delimiter=delimiter, lineterminator=line_end).writerow(row)
    text = out.getvalue()
    if draw(st.booleans()):
        text = text.removesuffix("\n").removesuffix("\r")
    data = text.encode()
    if draw(st.booleans()):
        data = BOM + data
    return data, delimiter, header


def draw_chunks(data: st.DataObject, file: bytes) -> list[bytes]:
    """
    Draw a split of ``file`` into chunks.

    :param data: hypothesis' interactive draw.
    :param file: the bytes to split.
    """
    cuts: Sequence[int] = data.draw(st.lists(st.integers(0, len(file)), max_size=8), label="cuts")
    return split_at(file, cuts)


@pytest.mark.slow
@settings(max_examples=400, deadline=None, suppress_health_check=[HealthCheck.too_slow])
@given(csv_files(), st.data())
def test_property_valid_tables_count_like_csv_reader(
    file: tuple[bytes, str, tuple[str, ...]], data: st.DataObject
) -> None:
    raw, delimiter, header = file
    summary = verify(draw_chunks(data, raw))
    assert summary.rows == csv_rows(raw, delimiter)
    assert summary.sha256 == hashlib.sha256(raw).hexdigest()
    assert summary.bytes == len(raw)
    assert summary.delimiter == delimiter
    assert summary.columns == header
    assert summary.encoding_bom is raw.startswith(BOM)


TOKENS = st.sampled_from(["a", "5", " ", ";", ",", '"', '""', "\n", "\r\n", "\r", "é"])


@pytest.mark.slow
@settings(max_examples=600, deadline=None)
@given(
    st.sampled_from(DELIMITERS),
    st.sampled_from(["\n", "\r\n"]),
    st.lists(TOKENS, max_size=40).map("".join),
    st.data(),
)
def test_property_messy_bodies_count_like_csv_reader(
    delimiter: str, line_end: str, body: str, data: st.DataObject
) -> None:
    """Any body, RFC 4180 or not: the count is csv.reader's, or the file ends inside a quoted field."""
    raw = f"source{delimiter}session_created_at{line_end}{body}".encode()
    rows, ends_in_quote = reference_count(body, delimiter)
    assert rows + ends_in_quote == csv_rows(raw, delimiter), "the reference model disagrees with csv.reader"
    chunks = draw_chunks(data, raw)
    if ends_in_quote:
        with pytest.raises(SessionsCsvError, match="ends inside a quoted field"):
            verify(chunks)
    else:
        assert verify(chunks).rows == rows


# -- lines without a line break: the checker holds none of them -------------------------------------------

_MIB = 1024 * 1024


@pytest.mark.slow  # 100 MiB rows, each through every checker and buffer type
@pytest.mark.parametrize(
    ("start", "piece", "end", "rows"),
    [
        pytest.param(b"", b"5519" * (_MIB // 4), b"\n", 1, id="100MiB-unquoted-line"),
        pytest.param(b'"', b"ab;\n\r" * (_MIB // 5), b'"\n', 1, id="100MiB-quoted-field"),
        pytest.param(b'"', b'x""' * (_MIB // 3), b'"\n', 1, id="100MiB-quoted-escapes"),
        pytest.param(b"", b";" * _MIB, b"\n", 1, id="100MiB-of-delimiters"),
    ],
)
@pytest.mark.parametrize("buffer", [pytest.param(bytes, id="bytes"), pytest.param(bytearray, id="bytearray")])
def test_a_row_without_line_break_is_never_buffered(
    start: bytes, piece: bytes, end: bytes, rows: int, buffer: type[bytes] | type[bytearray]
) -> None:
    import tracemalloc

    checker = SessionsCsvChecker(hash_bytes=False)
    chunk = buffer(piece)
    tracemalloc.start()
    try:
        checker.feed(b"source;session_created_at\n" + start)
        for _ in range(100):
            checker.feed(chunk)
        checker.feed(end)
        summary = checker.finish()
        peak = tracemalloc.get_traced_memory()[1]
    finally:
        tracemalloc.stop()

    assert summary.rows == rows
    assert peak < 4 * _MIB, f"peak {peak / _MIB:.1f} MiB while checking a 100 MiB row"
