"""XCom mode against hostile file bodies: bounded by the bytes it holds and returns, not only by rows."""

from __future__ import annotations

import csv
import io
import json
import re
import tracemalloc
from datetime import UTC, datetime
from typing import TYPE_CHECKING, Any
from zoneinfo import ZoneInfo

import pytest

from airflow_provider_wavy.csv.timestamps import TimestampNormaliser
from airflow_provider_wavy.csv.xcom_rows import RowsTooLargeError, parse_rows
from airflow_provider_wavy.exceptions import WavyDownloadError, WavyTimestampError
from airflow_provider_wavy.operators.wavy import (
    DEFAULT_MAX_XCOM_BYTES,
    WavyListOperator,
    WavyOpenSessionsOperator,
)
from airflow_provider_wavy.sandbox import Scenario, iter_list_chunks
from tests.conftest import SANDBOX_CUSTOMER
from tests.hostile import RawRequest, answer, serve

if TYPE_CHECKING:
    from collections.abc import Iterable
    from pathlib import Path

    from airflow_provider_wavy.sandbox import WavySandbox

MIB = 1024 * 1024
HEADER = b"source;session_created_at\n"
BYTES_LIMIT = f"max_xcom_bytes={DEFAULT_MAX_XCOM_BYTES:,} exceeded"


def run(**kwargs: Any) -> Any:
    operator = WavyOpenSessionsOperator(task_id="download", **kwargs)
    return operator.execute({"ds": "2026-11-23", "run_id": "manual"})  # type: ignore[arg-type]


class CsvFile:
    """A scripted file host sending ``head``, then ``piece`` ``count`` times; counts the pieces it sent."""

    def __init__(self, head: bytes, piece: bytes = b"", count: int = 0) -> None:
        self.head, self.piece, self.count = head, piece, count
        self.size = len(head) + len(piece) * count
        self.pieces_sent = 0

    def script(self, _request: RawRequest) -> Iterable[bytes | float]:
        headers = [("Content-Type", "text/csv"), ("Content-Length", str(self.size))]
        yield answer(200, b"", headers, length=False) + self.head
        for _ in range(self.count):
            yield self.piece
            self.pieces_sent += 1


def traced(**kwargs: Any) -> tuple[Any, int]:
    """Run the operator; return its result (or the WavyDownloadError) and the peak of Python allocations."""
    tracemalloc.start()
    try:
        try:
            result: Any = run(**kwargs)
        except WavyDownloadError as error:
            result = error
        return result, tracemalloc.get_traced_memory()[1]
    finally:
        tracemalloc.stop()


@pytest.fixture
def warm(sandbox: WavySandbox) -> WavySandbox:
    """The sandbox's connection, after one XCom run: imports and caches do not count in a measured peak."""
    sandbox.scenario = Scenario(rows=3)
    run()
    return sandbox


@pytest.mark.parametrize(
    "max_xcom_rows",
    [pytest.param(None, id="default-limits"), pytest.param(1_000_000, id="many-rows-allowed")],
)
def test_a_single_enormous_row_stops_the_download_before_memory_grows(
    warm: WavySandbox, max_xcom_rows: int | None
) -> None:
    file = CsvFile(HEADER, b"5519" * (MIB // 4), 50)  # 50 MiB without a line break
    rows = {} if max_xcom_rows is None else {"max_xcom_rows": max_xcom_rows}
    with serve(file.script) as server:
        result, peak = traced(file_url=f"{server.url}/f.csv", **rows)

    assert isinstance(result, WavyDownloadError)
    assert BYTES_LIMIT in str(result)
    assert "destination=" in str(result)
    assert peak < 24 * MIB, f"peak {peak / MIB:.1f} MiB for a 50 MiB file"
    assert file.pieces_sent < 40, "the download stopped once the bound was passed, not at the file's end"


def test_wide_rows_are_bounded_by_their_size_as_json(warm: WavySandbox) -> None:
    # 2 MB of CSV whose rows would be about 130 MB of JSON: each row repeats ~60 KB of column names.
    names = [f"column_with_a_long_descriptive_name_{i:04d}_padded_out_to_sixty_chars" for i in range(900)]
    header = ";".join(["source", "session_created_at", *names]).encode() + b"\n"
    file = CsvFile(header, b";" * (len(names) + 1) + b"\n", 2000)
    with serve(file.script) as server:
        result, peak = traced(file_url=f"{server.url}/f.csv")

    assert isinstance(result, WavyDownloadError)
    assert BYTES_LIMIT in str(result)
    assert "as JSON" in str(result)
    assert peak < 32 * MIB, f"peak {peak / MIB:.1f} MiB"


def test_xcom_bytes_bound_is_the_size_of_the_returned_json(sandbox: WavySandbox) -> None:
    sandbox.scenario = Scenario(rows=200)
    rows = run()
    size = len(json.dumps(rows))

    assert run(max_xcom_bytes=size) == rows
    with pytest.raises(WavyDownloadError, match=f"max_xcom_bytes={size - 1:,} exceeded"):
        run(max_xcom_bytes=size - 1)


def test_xcom_bytes_bound_stops_the_download(sandbox: WavySandbox) -> None:
    sandbox.scenario = Scenario(rows=100_000)  # about 3.5 MB: rows are under max_xcom_rows=1,000,000
    with pytest.raises(WavyDownloadError, match=r"max_xcom_bytes=1,000,000 exceeded.*destination=") as caught:
        run(max_xcom_rows=1_000_000, max_xcom_bytes=1_000_000)
    assert "raise max_xcom_bytes" in str(caught.value)


@pytest.mark.parametrize(
    ("header", "named"),
    [
        pytest.param(b"source;session_created_at;source\n", "'source' (columns 1 and 3,", id="same"),
        pytest.param(b"Source;session_created_at; SOURCE \n", "'SOURCE' (columns 1 and 3,", id="case-space"),
        pytest.param(
            b'source;"session_created_at";x;\xef\xbb\xbfx\n', "'x' (columns 3 and 4,", id="quote-bom"
        ),
    ],
)
def test_xcom_refuses_a_header_that_repeats_a_column(
    sandbox: WavySandbox, tmp_path: Path, header: bytes, named: str
) -> None:
    body = header + b"5519900000000;2026-11-23T10:00:00Z;a;b\n"
    with serve(CsvFile(body).script) as server:
        with pytest.raises(WavyDownloadError, match=rf"repeats the column {re.escape(named)}.*destination="):
            run(file_url=f"{server.url}/f.csv")
        # A destination keeps the bytes as they are: nothing is lost there, so the file is accepted.
        summary = run(file_url=f"{server.url}/f.csv", destination=str(tmp_path / "s.csv"))
    assert (tmp_path / "s.csv").read_bytes() == body
    assert summary["rows"] == 1


@pytest.mark.parametrize("value", [-1, 0, True, 1.5, "8"])
def test_max_xcom_bytes_must_be_a_positive_whole_number(value: Any) -> None:
    with pytest.raises(ValueError, match="max_xcom_bytes"):
        WavyOpenSessionsOperator(task_id="t", max_xcom_bytes=value)


def test_parse_rows_counts_json_bytes_and_refuses_repeated_names() -> None:
    data = b"source;session_created_at\n1;a\n22\n"
    rows = parse_rows(data, ";", ("source", "session_created_at"), False, max_bytes=10_000)
    assert rows == [{"source": "1", "session_created_at": "a"}, {"source": "22", "session_created_at": None}]
    size = len(json.dumps(rows))
    assert parse_rows(data, ";", ("source", "session_created_at"), False, max_bytes=size) == rows
    with pytest.raises(RowsTooLargeError):
        parse_rows(data, ";", ("source", "session_created_at"), False, max_bytes=size - 1)
    with pytest.raises(ValueError, match="repeats the column 'Source'"):
        parse_rows(data, ";", ("source", "Source"), False)


# -- normalize_timestamps ------------------------------------------------------------------------------------


def _sandbox_list(list_type: str, rows: int) -> list[dict[str, str]]:
    """The list the sandbox serves to the test connection, read with the csv module."""
    body = b"".join(iter_list_chunks(SANDBOX_CUSTOMER, None, list_type, Scenario(rows=rows)))
    return list(csv.DictReader(io.StringIO(body.decode()), delimiter=";"))


def _sao_paulo_to_utc(text: str) -> str:
    """Independently of the provider: a naive São Paulo time as UTC text (zoneinfo, fold=0)."""
    local = datetime.strptime(text, "%Y-%m-%d %H:%M:%S").replace(tzinfo=ZoneInfo("America/Sao_Paulo"))
    return local.astimezone(UTC).strftime("%Y-%m-%dT%H:%M:%SZ")


def test_xcom_rows_keep_timestamps_as_sent_by_default(sandbox: WavySandbox) -> None:
    sandbox.scenario = Scenario(rows=120)
    rows = WavyListOperator(task_id="l", list_type="OPTIN").execute({"ds": "2026-11-23"})  # type: ignore[arg-type]

    assert rows == _sandbox_list("OPTIN", 120)


@pytest.mark.parametrize("on_bad", ["fail", "null"])
def test_list_timestamps_become_utc_text(sandbox: WavySandbox, on_bad: str) -> None:
    sandbox.scenario = Scenario(rows=300)  # six of each kind of trap: ambiguous, DST, nonexistent
    operator = WavyListOperator(
        task_id="l", list_type="optout", normalize_timestamps=True, on_bad_timestamp=on_bad
    )
    rows = operator.execute({"ds": "2026-11-23"})  # type: ignore[arg-type]

    sent = _sandbox_list("OPTOUT", 300)
    assert [row["source"] for row in rows] == [row["source"] for row in sent]
    assert [row["createdAt"] for row in rows] == [_sao_paulo_to_utc(row["createdAt"]) for row in sent]
    # The very text the SQL loader loads.
    normaliser = TimestampNormaliser(column="createdAt")
    assert [row["createdAt"] for row in rows] == [
        normaliser.normalise(row["createdAt"], n) for n, row in enumerate(sent, start=1)
    ]


def test_sessions_iso_z_timestamps_pass_unchanged(sandbox: WavySandbox) -> None:
    sandbox.scenario = Scenario(rows=50)
    assert run(normalize_timestamps=True) == run()


MIXED = (
    b"source;Session_Created_At;extra\n"
    b"1;2018-11-04 00:30:00;a\n"  # nonexistent in Sao Paulo: the offset before the jump
    b"2;1513616971473;b\n"  # epoch milliseconds
    b"3;;c\n"  # empty: None, not bad
    b"4;2019-02-30 10:00:00;d\n"  # bad
    b"5;2019-02-16 23:30:00.25-03:00;e\n"
    b"6\n"  # short row: the column is missing, None stays None
)


@pytest.mark.parametrize(
    ("zone", "first"),
    [
        pytest.param("America/Sao_Paulo", "2018-11-04T03:30:00Z", id="sao-paulo"),
        pytest.param("UTC", "2018-11-04T00:30:00Z", id="utc"),
    ],
)
def test_null_turns_bad_values_into_none(sandbox: WavySandbox, zone: str, first: str) -> None:
    with serve(CsvFile(MIXED).script) as server:
        rows = run(
            file_url=f"{server.url}/f.csv",
            normalize_timestamps=True,
            on_bad_timestamp="null",
            source_timezone=zone,
        )
    assert [row["Session_Created_At"] for row in rows] == [
        first,
        "2017-12-18T17:09:31.473Z",
        None,
        None,
        "2019-02-17T02:30:00.25Z",
        None,
    ]
    assert [row["extra"] for row in rows] == ["a", "b", "c", "d", "e", None]


def test_fail_names_the_row_column_and_value(sandbox: WavySandbox) -> None:
    with serve(CsvFile(MIXED).script) as server, pytest.raises(WavyTimestampError) as raised:
        run(file_url=f"{server.url}/f.csv", normalize_timestamps=True)
    message = str(raised.value)
    assert message.startswith("Data row 4, column 'Session_Created_At': '2019-02-30 10:00:00' is not")
    assert "on_bad_timestamp='null'" in message


def test_normalised_rows_stay_within_max_xcom_bytes(sandbox: WavySandbox) -> None:
    body = HEADER + b"".join(b"55199%08d;1513616971473\n" % n for n in range(100))
    with serve(CsvFile(body).script) as server:
        url = f"{server.url}/f.csv"
        size = len(json.dumps(run(file_url=url)))
        assert len(run(file_url=url, max_xcom_bytes=size)) == 100
        # Epoch milliseconds grow from 13 to 24 characters: the same bound no longer holds the rows.
        with pytest.raises(WavyDownloadError, match=f"normalised timestamps, max_xcom_bytes={size:,}"):
            run(file_url=url, max_xcom_bytes=size, normalize_timestamps=True)
        grown = len(json.dumps(run(file_url=url, normalize_timestamps=True)))
        assert grown == size + 100 * 11
        assert len(run(file_url=url, max_xcom_bytes=grown, normalize_timestamps=True)) == 100


@pytest.mark.parametrize(
    ("kwargs", "match"),
    [
        pytest.param(
            {"normalize_timestamps": True, "destination": "/tmp/x/"}, "XCom mode only", id="with-destination"
        ),
        pytest.param({"source_timezone": "UTC"}, "only with normalize_timestamps=True", id="zone-alone"),
        pytest.param({"on_bad_timestamp": "null"}, "only with normalize_timestamps=True", id="bad-alone"),
        pytest.param(
            {"normalize_timestamps": True, "source_timezone": "Brazil/Nowhere"}, "IANA", id="unknown-zone"
        ),
        pytest.param(
            {"normalize_timestamps": True, "on_bad_timestamp": "skip"}, "on_bad_timestamp", id="bad-choice"
        ),
    ],
)
def test_timestamp_arguments_are_checked_when_the_dag_is_parsed(kwargs: dict[str, Any], match: str) -> None:
    with pytest.raises(ValueError, match=match):
        WavyOpenSessionsOperator(task_id="t", **kwargs)
    with pytest.raises(ValueError, match=match):
        WavyListOperator(task_id="t", list_type="OPTOUT", **kwargs)
