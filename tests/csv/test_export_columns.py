"""The checker takes the columns of an export: the four lists' ``source`` and ``createdAt``."""

from __future__ import annotations

import codecs

import pytest

from airflow_provider_wavy.csv.checker import CsvChecker, CsvError, CsvSummary, SessionsCsvChecker
from airflow_provider_wavy.csv.header import parse_header
from airflow_provider_wavy.exports import LISTS, OPEN_SESSIONS, Export, WavyListType

BOM = codecs.BOM_UTF8
OPTOUT = LISTS[WavyListType.OPTOUT]
EVERY_LIST = [pytest.param(e, id=e.key) for e in LISTS.values()]


def check(data: bytes, export: Export, *, cut: int | None = None) -> CsvSummary:
    """
    Verify ``data`` as the export's file, fed whole or in two pieces.

    :param data: the file.
    :param export: the export it should be.
    :param cut: where to split it, if anywhere.
    """
    checker = CsvChecker(export=export)
    for chunk in (data,) if cut is None else (data[:cut], data[cut:]):
        checker.feed(chunk)
    return checker.finish()


def test_the_default_export_is_the_open_sessions() -> None:
    assert SessionsCsvChecker is CsvChecker
    with pytest.raises(CsvError, match="missing: 'session_created_at'"):
        CsvChecker().feed(b"source;createdAt\n")


@pytest.mark.parametrize("export", EVERY_LIST)
@pytest.mark.parametrize(
    ("line", "delimiter", "columns"),
    [
        pytest.param(b"source;createdAt", ";", ("source", "createdAt"), id="semicolon"),
        pytest.param(BOM + b"source,createdAt\r\n", ",", ("source", "createdAt"), id="comma-bom-crlf"),
        pytest.param(
            b'"SOURCE";CreatedAt;extra\n', ";", ("SOURCE", "CreatedAt", "extra"), id="case-quotes-extra"
        ),
    ],
)
def test_list_header(export: Export, line: bytes, delimiter: str, columns: tuple[str, ...]) -> None:
    assert parse_header(line, export=export) == (delimiter, columns, "source")


@pytest.mark.parametrize("cut", [None, 1, 2, 3, 10, 18, 19, 20, 40])
@pytest.mark.parametrize("export", EVERY_LIST)
def test_list_file(export: Export, cut: int | None) -> None:
    data = BOM + b"source,createdAt\r\n" + b"5511987654321,2026-11-23 14:05:09\r\n" * 3 + b"\r\n"
    summary = check(data, export, cut=cut)
    assert (summary.rows, summary.delimiter, summary.phone_column, summary.encoding_bom) == (
        3,
        ",",
        "source",
        True,
    )
    assert summary.columns == ("source", "createdAt")


@pytest.mark.parametrize(
    ("data", "message"),
    [
        pytest.param(
            b"source;created_at\n1;2\n",
            r"the CSV header has columns \['source', 'created_at'\] \(split on ';'\); expected 'source' and "
            r"'createdAt', extra columns allowed; missing: 'createdAt'\. Check that the file is the OPTOUT "
            r"list CSV \(the API may have changed its columns\)$",
            id="missing-createdAt",
        ),
        pytest.param(
            b"source;session_created_at\n5511;2026\n",
            r"missing: 'createdAt'\. Check that the file is the OPTOUT list CSV",
            id="a-sessions-file",
        ),
        pytest.param(
            b"origin;createdAt\n5511;2026\n",
            r"expected 'source' and 'createdAt', extra columns allowed; missing: 'source'\.",
            id="origin-is-sessions-only",
        ),
        pytest.param(
            b"",
            r"^the downloaded file is empty \(0 bytes\): even when the OPTOUT list is empty the file has a "
            r"header line \('source;createdAt'\)",
            id="empty",
        ),
        pytest.param(
            b"\nsource;createdAt\n",
            r"header line such as 'source;createdAt': the file is not the OPTOUT list CSV",
            id="blank",
        ),
        pytest.param(b"PK\x03\x04", "not the plain OPTOUT list CSV", id="zip"),
        pytest.param(b"source;createdAt\n1;\x00\n", "not the OPTOUT list CSV", id="nul"),
    ],
)
def test_list_file_refused(data: bytes, message: str) -> None:
    with pytest.raises(CsvError, match=message):
        check(data, OPTOUT)


def test_a_list_header_given_to_the_sessions_checker_is_refused() -> None:
    with pytest.raises(
        CsvError, match=r"missing: 'session_created_at'\. Check that the file is the open-sessions CSV"
    ):
        check(b"source;createdAt\n5511;2026\n", OPEN_SESSIONS)
