"""The sandbox's file generator and scenario knobs, without sockets."""

from __future__ import annotations

import csv
import gzip
import hashlib
import io
import re
import subprocess
import sys
from pathlib import Path
from typing import Any

import pytest

from airflow_provider_wavy.sandbox import Scenario, csv_size, gzip_size, iter_csv_chunks, iter_gzip_chunks
from airflow_provider_wavy.sandbox.data import BLOCK_ROWS, CHUNK_SIZE

REPO_ROOT = Path(__file__).resolve().parents[2]

FORMATS = [
    pytest.param({}, id="default"),
    pytest.param({"delimiter": ","}, id="comma"),
    pytest.param({"bom": True, "crlf": True}, id="bom-crlf"),
    pytest.param({"final_newline": False}, id="no-final-newline"),
    pytest.param({"final_newline": False, "crlf": True}, id="no-final-crlf"),
    pytest.param({"quote": True, "extra_columns": ("a", "bb", "ccc")}, id="quoted-extras"),
    pytest.param({"file_body": "missing-column", "phone_column": "origin"}, id="missing-column"),
    pytest.param({"file_body": "html"}, id="html"),
    pytest.param({"file_body": "json-error"}, id="json-error"),
    pytest.param({"file_body": "empty"}, id="empty"),
]
ROW_COUNTS = [0, 1, 2, BLOCK_ROWS - 1, BLOCK_ROWS, BLOCK_ROWS + 1, 2 * BLOCK_ROWS + 7]


def body(customer: str = "42", sub: str | None = None, **knobs: Any) -> bytes:
    """Generate a whole (small) file."""
    return b"".join(iter_csv_chunks(customer, sub, Scenario(**knobs)))


@pytest.mark.parametrize("knobs", FORMATS)
@pytest.mark.parametrize("rows", ROW_COUNTS)
def test_size_is_exact_and_chunks_are_bounded(knobs: dict[str, Any], rows: int) -> None:
    scenario = Scenario(rows=rows, **knobs)
    chunks = list(iter_csv_chunks("42", "3", scenario))
    assert all(0 < len(chunk) <= CHUNK_SIZE for chunk in chunks)
    data = b"".join(chunks)
    assert len(data) == csv_size("42", "3", scenario)
    assert b"".join(iter_csv_chunks("42", "3", scenario, chunk_size=997)) == data


@pytest.mark.parametrize("knobs", FORMATS[:7])
def test_rows_parse_with_the_csv_module(knobs: dict[str, Any]) -> None:
    rows = 2 * BLOCK_ROWS + 5
    scenario = Scenario(rows=rows, **knobs)
    text = body(rows=rows, **knobs).decode("utf-8-sig")
    parsed = list(csv.reader(io.StringIO(text, newline=""), delimiter=scenario.delimiter))
    header, data = parsed[0], parsed[1:]
    assert header[0] == scenario.phone_column
    assert ("session_created_at" in header) is (scenario.file_body == "csv")
    assert header[len(header) - len(scenario.extra_columns) :] == list(scenario.extra_columns)
    assert len(data) == rows
    assert all(len(row) == len(header) for row in data)
    phones = [row[0] for row in data]
    assert all(re.fullmatch(r"55[1-9]\d9\d{8}", phone) for phone in phones)
    assert len(set(phones)) == rows
    if scenario.file_body == "csv":
        stamps = [row[1] for row in data]
        assert all(re.fullmatch(r"\d{4}-\d{2}-\d{2}T\d{2}:\d{2}:\d{2}Z", stamp) for stamp in stamps)
        assert stamps == sorted(stamps)
        assert len(set(stamps)) == rows


def test_default_file_looks_like_wavys() -> None:
    lines = body(rows=3).decode().splitlines()
    assert lines[0] == "source;session_created_at"
    assert len(lines) == 4
    assert all(re.fullmatch(r"55\d{11};\d{4}-\d\d-\d\dT\d\d:\d\d:\d\dZ", line) for line in lines[1:])


@pytest.mark.parametrize(
    ("knobs", "expected"),
    [
        pytest.param({}, b"source;session_created_at\n", id="default"),
        pytest.param({"final_newline": False}, b"source;session_created_at", id="no-final-newline"),
        pytest.param(
            {"bom": True, "quote": True, "crlf": True, "delimiter": ","},
            b'\xef\xbb\xbf"source","session_created_at"\r\n',
            id="bom-quoted-crlf",
        ),
    ],
)
def test_zero_rows_is_the_header_only(knobs: dict[str, Any], expected: bytes) -> None:
    assert body(rows=0, **knobs) == expected


def test_files_depend_on_customer_and_sub_account_only() -> None:
    assert body("42", None, rows=50) == body("42", "", rows=50)
    assert body("42", None, rows=50) != body("43", None, rows=50)
    assert body("42", None, rows=50) != body("42", "1", rows=50)
    assert body("42", None, rows=50) == body("42", None, rows=50)


def test_bytes_are_the_same_in_another_process() -> None:
    scenario = {"rows": 10_000, "quote": True, "extra_columns": ["x"]}
    code = (
        "import hashlib, sys\n"
        "from airflow_provider_wavy.sandbox import Scenario, iter_csv_chunks\n"
        "h = hashlib.sha256()\n"
        f"for c in iter_csv_chunks('777', 's', Scenario.from_dict({scenario!r})): h.update(c)\n"
        "print(h.hexdigest())\n"
    )
    result = subprocess.run(
        [sys.executable, "-c", code], cwd=REPO_ROOT, capture_output=True, text=True, check=True, timeout=30
    )
    here = hashlib.sha256(b"".join(iter_csv_chunks("777", "s", Scenario.from_dict(scenario)))).hexdigest()
    assert result.stdout.strip() == here


def test_gzip_helpers() -> None:
    scenario = Scenario(rows=10_000)
    raw = b"".join(iter_csv_chunks("42", None, scenario))
    compressed = b"".join(iter_gzip_chunks(iter_csv_chunks("42", None, scenario)))
    assert gzip.decompress(compressed) == raw
    assert gzip_size("42", None, scenario) == len(compressed)
    assert compressed == b"".join(iter_gzip_chunks(iter_csv_chunks("42", None, scenario)))


def test_chunk_size_must_be_positive() -> None:
    with pytest.raises(ValueError, match="chunk_size"):
        next(iter_csv_chunks("42", None, chunk_size=0))


# -- Scenario ------------------------------------------------------------------------------------------------


@pytest.mark.parametrize(
    "knobs",
    [
        pytest.param({"rows": -1}, id="negative-rows"),
        pytest.param({"rows": 1.5}, id="float-rows"),
        pytest.param({"ready_after": True}, id="bool-count"),
        pytest.param({"pending_style": "nothing"}, id="pending-style"),
        pytest.param({"api_status": 200}, id="api-status-success"),
        pytest.param({"rate_limit_status": 99}, id="rate-limit-status"),
        pytest.param({"server_error_status": 404}, id="server-error-not-5xx"),
        pytest.param({"api_delay": -1}, id="negative-delay"),
        pytest.param({"slow_calls": -2}, id="negative-slow-calls"),
        pytest.param({"truncate_at": -2}, id="negative-truncate"),
        pytest.param({"truncate_stall": -0.5, "truncate_at": 10}, id="negative-stall"),
        pytest.param({"truncate_stall": 1.0}, id="stall-without-truncation"),
        pytest.param({"redirect": "elsewhere"}, id="redirect"),
        pytest.param({"file_body": "pdf"}, id="file-body"),
        pytest.param({"delimiter": ";;"}, id="delimiter"),
        pytest.param({"phone_column": "a;b"}, id="delimiter-in-name"),
        pytest.param({"extra_columns": ('"q"',)}, id="quote-in-name"),
        pytest.param({"extra_columns": ("source",)}, id="duplicate-name"),
        pytest.param({"phone_column": ""}, id="empty-name"),
        pytest.param({"gzip": "yes"}, id="non-bool"),
        pytest.param({"retry_after": 5}, id="retry-after-int"),
        pytest.param({"bad_timestamp_rows": (-1,)}, id="negative-bad-timestamp-row"),
        pytest.param({"bad_timestamp_rows": ("3",)}, id="text-bad-timestamp-row"),
    ],
)
def test_scenario_rejects_bad_knobs(knobs: dict[str, Any]) -> None:
    with pytest.raises(ValueError, match=r"Scenario|Column"):
        Scenario(**knobs)


def test_scenario_dict_round_trip() -> None:
    scenario = Scenario.from_dict({"rows": 3, "extra_columns": ["a", "b"], "gzip": True})
    assert scenario.extra_columns == ("a", "b")
    assert hash(scenario) == hash(Scenario(rows=3, extra_columns=("a", "b"), gzip=True))
    assert Scenario.from_dict(scenario.to_dict()) == scenario
    assert scenario.replace(rows=4).rows == 4
    with pytest.raises(ValueError, match="Unknown scenario knob"):
        Scenario.from_dict({"rowz": 1})


def test_scenario_is_frozen() -> None:
    scenario = Scenario()
    with pytest.raises(AttributeError):
        scenario.rows = 3  # type: ignore[misc]


@pytest.mark.parametrize(
    ("list_type", "knobs"),
    [
        pytest.param(None, {}, id="sessions"),
        pytest.param(None, {"quote": True, "crlf": True, "final_newline": False}, id="sessions-quoted"),
        pytest.param("OPTOUT", {}, id="list"),
        pytest.param("OPTIN", {"quote": True, "extra_columns": ("a",)}, id="list-quoted"),
    ],
)
def test_bad_timestamp_rows_replace_only_those_timestamps(
    list_type: str | None, knobs: dict[str, Any]
) -> None:
    """A data-quality trap for loaders: the chosen rows' timestamps are no time at all, nothing else moves."""
    from airflow_provider_wavy.sandbox import iter_list_chunks, list_size

    rows, bad = BLOCK_ROWS + 10, (0, 3, BLOCK_ROWS + 2)
    good, trapped = Scenario(rows=rows, **knobs), Scenario(rows=rows, bad_timestamp_rows=bad, **knobs)

    def generate(scenario: Scenario) -> tuple[bytes, int]:
        if list_type is None:
            return b"".join(iter_csv_chunks("42", None, scenario, chunk_size=997)), csv_size(
                "42", None, scenario
            )
        chunks = iter_list_chunks("42", None, list_type, scenario, chunk_size=997)
        return b"".join(chunks), list_size("42", None, list_type, scenario)

    (expected, _), (data, size) = generate(good), generate(trapped)
    assert len(data) == size == len(expected)
    old = list(csv.reader(io.StringIO(expected.decode(), newline=""), delimiter=";"))[1:]
    new = list(csv.reader(io.StringIO(data.decode(), newline=""), delimiter=";"))[1:]
    changed = [n for n, (a, b) in enumerate(zip(old, new, strict=True)) if a != b]
    assert changed == list(bad)
    for n in bad:
        assert new[n][0] == old[n][0]
        assert new[n][2:] == old[n][2:]
        assert re.fullmatch(r"9999-99-99[T ]99:99:99Z?", new[n][1]), new[n][1]
        assert len(new[n][1]) == len(old[n][1])
