"""Tests for FirstRowCheck, the ``require_rows`` check of both transports, for every export."""

from __future__ import annotations

import pytest

from airflow_provider_wavy import protocol
from airflow_provider_wavy.csv.first_row import FirstRowCheck
from airflow_provider_wavy.exceptions import WavyResponseError
from airflow_provider_wavy.exports import LISTS, OPEN_SESSIONS, Export, WavyListType

SHOWN = "https://cdn.example/f.csv"
OPTOUT = LISTS[WavyListType.OPTOUT]


def test_protocol_still_exports_it() -> None:
    assert protocol.FirstRowCheck is FirstRowCheck


@pytest.mark.parametrize(
    ("chunks", "done_at", "has_rows"),
    [
        pytest.param([b"source;session_created_at\n"], None, False, id="header-only"),
        pytest.param([b"source;session_created_at"], None, False, id="header-only-no-line-end"),
        pytest.param(
            [b"source;session_", b"created_at\n55", b"11;2026\n", b"never read"], 2, True, id="row-split"
        ),
        pytest.param([b"source;session_created_at\n5511;2026"], None, True, id="last-row-without-line-end"),
    ],
)
def test_first_row_check_stops_at_the_first_row(
    chunks: list[bytes], done_at: int | None, has_rows: bool
) -> None:
    check = FirstRowCheck(SHOWN)
    for index, chunk in enumerate(chunks):
        if check.feed(chunk):
            assert index == done_at
            break
    else:
        assert done_at is None
        assert check.finish() is has_rows


@pytest.mark.parametrize(
    ("body", "at_finish"),
    [
        pytest.param(b"<!DOCTYPE html><html><body>Access denied</body></html>", False, id="html"),
        pytest.param(b"source;created\n1;2\n", False, id="missing-column"),
        pytest.param(b"", True, id="empty"),
    ],
)
def test_first_row_check_names_a_file_that_is_not_the_csv(body: bytes, at_finish: bool) -> None:
    check = FirstRowCheck(SHOWN)
    expected = r"The file at https://cdn\.example/f\.csv is not the open-sessions CSV: "
    if at_finish:
        assert check.feed(body) is False
        with pytest.raises(WavyResponseError, match=expected) as info:
            check.finish()
    else:
        with pytest.raises(WavyResponseError, match=expected) as info:
            check.feed(body)
    assert info.value.__cause__ is None
    assert info.value.__suppress_context__


@pytest.mark.parametrize("export", [pytest.param(e, id=e.key) for e in LISTS.values()])
def test_a_list_file_with_a_row(export: Export) -> None:
    check = FirstRowCheck(SHOWN, export=export)
    assert check.feed(b"\xef\xbb\xbfsource,createdAt\r\n") is False
    assert check.feed(b"5511987654321,2026-11-23 14:05:09\r\n") is True


@pytest.mark.parametrize(
    ("body", "message"),
    [
        pytest.param(
            b"source;session_created_at\n5511;2026\n",
            r"The file at https://cdn\.example/f\.csv is not the OPTOUT list CSV: .* missing: 'createdAt'",
            id="sessions-file",
        ),
        pytest.param(b"<html>", "is not the OPTOUT list CSV: the file URL returned an HTML page", id="html"),
    ],
)
def test_a_list_check_names_the_list(body: bytes, message: str) -> None:
    check = FirstRowCheck(SHOWN, export=OPTOUT)
    with pytest.raises(WavyResponseError, match=message):
        check.feed(body)


def test_the_sessions_check_refuses_a_list_file() -> None:
    check = FirstRowCheck(SHOWN, export=OPEN_SESSIONS)
    with pytest.raises(WavyResponseError, match=r"open-sessions CSV: .* missing: 'session_created_at'"):
        check.feed(b"source;createdAt\n5511;2026\n")
