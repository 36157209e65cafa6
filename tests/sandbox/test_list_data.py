"""The sandbox's list generator: sizes, determinism, phone numbers, and the new scenario knobs."""

from __future__ import annotations

import subprocess
import sys
from typing import Any

import pytest

from airflow_provider_wavy.sandbox import (
    LIST_TYPES,
    Scenario,
    iter_csv_chunks,
    iter_list_chunks,
    list_phone,
    list_size,
)

CUSTOMER = "42"


def test_lists_are_deterministic_and_differ_per_type() -> None:
    scenario = Scenario(rows=30)
    bodies = {name: b"".join(iter_list_chunks(CUSTOMER, None, name, scenario)) for name in LIST_TYPES}
    assert len(set(bodies.values())) == 4
    code = (
        "import sys\n"
        "from airflow_provider_wavy.sandbox import Scenario, iter_list_chunks\n"
        f"sys.stdout.buffer.write(b''.join(iter_list_chunks({CUSTOMER!r}, None, 'OPTIN', Scenario(rows=30))))"
    )
    # Another process (another hash seed) gives the same bytes.
    child = subprocess.run([sys.executable, "-c", code], capture_output=True, check=True, timeout=60)
    assert child.stdout == bodies["OPTIN"]


def test_list_only_numbers_are_in_no_sessions_file_and_differ_per_type() -> None:
    sessions = b"".join(iter_csv_chunks(CUSTOMER, None, Scenario(rows=8000)))
    session_phones = {line.split(b";")[0] for line in sessions.splitlines()[1:]}
    assert len(session_phones) == 8000
    outsiders: dict[str, set[bytes]] = {}
    for name in LIST_TYPES:
        body = b"".join(iter_list_chunks(CUSTOMER, None, name, Scenario(rows=8000)))
        phones = [line.split(b";")[0] for line in body.splitlines()[1:]]
        assert len(set(phones)) == 8000
        assert {phone for n, phone in enumerate(phones) if n % 2 == 0} <= session_phones
        outsiders[name] = {phone for n, phone in enumerate(phones) if n % 2}
        assert not outsiders[name] & session_phones
    assert sum(len(found) for found in outsiders.values()) == len(set().union(*outsiders.values()))


@pytest.mark.parametrize("chunk_size", [1, 7, 4096])
def test_list_chunks_and_size_agree(chunk_size: int) -> None:
    scenario = Scenario(rows=1100, extra_columns=("a", "b"), quote=True, crlf=True, final_newline=False)
    chunks = list(iter_list_chunks(CUSTOMER, "9", "WHITELIST", scenario, chunk_size=chunk_size))
    assert all(0 < len(chunk) <= chunk_size for chunk in chunks)
    body = b"".join(chunks)
    assert len(body) == list_size(CUSTOMER, "9", "WHITELIST", scenario)
    assert body == b"".join(iter_list_chunks(CUSTOMER, "9", "WHITELIST", scenario))


@pytest.mark.parametrize(
    "knobs",
    [
        pytest.param({"failed_answers": -1}, id="negative-failed-answers"),
        pytest.param({"failed_status": 99}, id="bad-failed-status"),
        pytest.param({"body_status": 600}, id="bad-body-status"),
        pytest.param({"no_data": "yes"}, id="no-data-not-bool"),
        pytest.param({"extra_columns": ("createdAt",)}, id="extra-column-named-createdAt"),
    ],
)
def test_new_knobs_are_validated(knobs: dict[str, Any]) -> None:
    with pytest.raises(ValueError, match=r"Scenario|Column"):
        Scenario(**knobs)


def test_list_phone_names_the_rows_phone() -> None:
    body = b"".join(iter_list_chunks(CUSTOMER, "5", "BLACKLIST", Scenario(rows=40)))
    phones = [line.split(b";")[0].decode() for line in body.splitlines()[1:]]
    assert phones == [list_phone(CUSTOMER, "5", "BLACKLIST", row) for row in range(40)]


@pytest.mark.parametrize(
    "list_type", [pytest.param("optout", id="lower-case"), pytest.param("X", id="other")]
)
def test_generator_rejects_unknown_list_types(list_type: str) -> None:
    with pytest.raises(ValueError, match="OPTOUT"):
        list_size(CUSTOMER, None, list_type)
    with pytest.raises(ValueError, match="OPTOUT"):
        next(iter_list_chunks(CUSTOMER, None, list_type))
