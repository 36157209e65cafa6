"""
:class:`CsvError`, and the wording of what a file host sends instead of an export's CSV.

An HTML page, an XML storage error, a JSON error, compressed or binary data: each is recognised from the
first bytes and named, with what to do. Every message names the export (``the open-sessions CSV``, ``the
OPTOUT list CSV``) and the header it expected.
"""

from __future__ import annotations

import codecs
from typing import TYPE_CHECKING, Final

from airflow_provider_wavy._text import one_line

if TYPE_CHECKING:
    from airflow_provider_wavy.exports import Export

BOM: Final = codecs.BOM_UTF8
#: Leading bytes that binary_error() and the BOM handling recognise.
MAGICS: Final = (BOM, b"\x1f\x8b", b"PK\x03\x04", b"\xff\xfe", b"\xfe\xff")
NEW_URL: Final = "ask the API for a new file URL and download again"

_JSON_SNIPPET_CHARS: Final = 200
#: Enough of a markup document to find "<html" after an XML declaration or a comment.
MARKUP_SNIFF_BYTES: Final = 512


class CsvError(ValueError):
    """The downloaded file is not a valid CSV of its export; the message says what is wrong and what to do."""


def csv_name(export: Export) -> str:
    """
    Name the export's file in a message: ``the open-sessions CSV``, ``the OPTOUT list CSV``.

    :param export: the export the file should be.
    """
    return f"the {export.title} CSV"


def header_example(export: Export) -> str:
    """
    Show the smallest header the export accepts, quoted: ``'source;session_created_at'``.

    :param export: the export the file should be.
    """
    return "'" + ";".join((export.columns.phone[0], *export.columns.required)) + "'"


def even_when_empty(export: Export) -> str:
    """
    Say that the header is there even when the export has no rows: ``even with no open sessions``.

    :param export: the export the file should be.
    """
    if export.key == "open_sessions":
        return "even with no open sessions"
    return f"even when the {export.title} is empty"


def binary_error(head: bytes, export: Export) -> CsvError | None:
    """
    Recognise compressed or non-UTF-8 data by its first bytes.

    :param head: the first bytes of the file (fewer than four is fine).
    :param export: the export the file should be.
    """
    if head.startswith(b"\x1f\x8b"):
        return CsvError(
            "the file is gzip-compressed data (it starts with 1f 8b), not CSV: the download kept the gzip "
            "Content-Encoding; let the HTTP client decode it (or gunzip the file) and verify again"
        )
    if head.startswith(b"PK\x03\x04"):
        return CsvError(
            f"the file is a ZIP archive (it starts with 'PK'), not the plain {export.title} CSV: check that "
            "the URL is the file URL the API returned, or " + NEW_URL
        )
    if head.startswith((b"\xff\xfe", b"\xfe\xff")):
        return CsvError(
            "the file is UTF-16 text (it starts with a UTF-16 byte order mark), not UTF-8 CSV: "
            f"{csv_name(export)} is UTF-8; re-encode the file as UTF-8 or " + NEW_URL
        )
    return None


def nul_error(offset: int, export: Export) -> CsvError:
    """
    Describe a NUL byte, which no text CSV holds (``csv.reader`` rejects it too).

    :param offset: the byte offset of the NUL in the file.
    :param export: the export the file should be.
    """
    return CsvError(
        f"the file holds a NUL byte at offset {offset}: it is binary or corrupt, not {csv_name(export)}; "
        + NEW_URL
    )


def foreign_error(data: bytes | bytearray, first: int, *, at_eof: bool) -> CsvError | None:
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
        raw = bytes(data[first : first + 4 * _JSON_SNIPPET_CHARS])
        snippet = one_line(raw.decode("utf-8", "replace"), _JSON_SNIPPET_CHARS)
        return CsvError(
            "the file URL returned JSON, not CSV; it looks like a JSON error from the file host: "
            f"{snippet} -- the link may have expired or be wrong; " + NEW_URL
        )
    window = bytes(data[first : first + MARKUP_SNIFF_BYTES]).lower()
    html = b"<html" in window or b"<!doctype html" in window
    if not html and not at_eof and len(window) < MARKUP_SNIFF_BYTES:
        return None
    if not html and window.startswith((b"<?xml", b"<error")):
        return CsvError(
            "the file URL returned an XML document (a storage error, typically for an expired or invalid "
            "link), not CSV: the link may have expired; " + NEW_URL
        )
    return CsvError("the file URL returned an HTML page, not CSV: the link may have expired; " + NEW_URL)


def not_utf8_error(line: bytes, offset: int, export: Export) -> CsvError:
    """
    Describe a header that is not UTF-8.

    :param line: the header bytes after the BOM (the first line, or as much of it as arrived).
    :param offset: where ``line`` starts in the file.
    :param export: the export the file should be.
    """
    try:
        line.decode("utf-8")
    except UnicodeDecodeError as exc:
        where = f"byte 0x{line[exc.start]:02x} at offset {offset + exc.start}"
    else:  # only the end was cut short, which the caller reports at end of file
        where = f"a multi-byte character cut off at offset {offset + len(line)}"
    return CsvError(
        f"the CSV header is not UTF-8 ({where}): the file is binary or in another encoding; expected UTF-8 "
        f"text starting with a header line such as {header_example(export)}"
    )


def blank_first_line_error(export: Export) -> CsvError:
    """
    Describe a file whose first line is blank.

    :param export: the export the file should be.
    """
    return CsvError(
        "the first line of the file is blank; expected the CSV header line such as "
        f"{header_example(export)}: the file is not {csv_name(export)}, or it was cut short"
    )


def header_too_long_error(what: str, export: Export) -> CsvError:
    """
    Describe a first line longer than any header.

    :param what: how the long line shows, e.g. ``the first line of the file is longer than 64 KiB``.
    :param export: the export the file should be.
    """
    return CsvError(
        f"{what}: this is not {csv_name(export)}, whose header is a short line such as "
        + header_example(export)
    )


__all__ = [
    "BOM",
    "MAGICS",
    "MARKUP_SNIFF_BYTES",
    "NEW_URL",
    "CsvError",
    "binary_error",
    "blank_first_line_error",
    "csv_name",
    "even_when_empty",
    "foreign_error",
    "header_example",
    "header_too_long_error",
    "not_utf8_error",
    "nul_error",
]
