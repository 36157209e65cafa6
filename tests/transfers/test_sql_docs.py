"""docs/sql.md shows the DDL the operator runs: the blocks are compared with the code's, not copied."""

from __future__ import annotations

import re

import pytest

from airflow_provider_wavy.transfers._table import GENERIC_TYPES, POSTGRES_TYPES, SQLITE_TYPES, Statements
from tests.conftest import REPO_ROOT

DOC = REPO_ROOT / "docs" / "sql.md"


def sql_blocks() -> list[str]:
    return re.findall(r"```sql\n(.*?)```", DOC.read_text(), flags=re.S)


def canonical(sql: str) -> str:
    """Drop comments, and compare whitespace as one space."""
    return " ".join(re.sub(r"--[^\n]*", "", sql).split())


def reachable_query() -> str:
    (query,) = [block for block in sql_blocks() if block.startswith("-- reachable")]
    return query


def _quote(word: str) -> str:
    return '"' + word.replace('"', '""') + '"'


@pytest.mark.parametrize(
    ("position", "types", "qualify_index"),
    [
        pytest.param(0, POSTGRES_TYPES, False, id="postgres"),
        pytest.param(1, SQLITE_TYPES, True, id="sqlite"),
        pytest.param(2, GENERIC_TYPES, False, id="generic"),
    ],
)
def test_documented_ddl_is_the_ddl_run(position: int, types: dict[str, str], qualify_index: bool) -> None:
    statements = Statements(("wavy_sessions",), _quote, types)
    run = statements.create_table() + ";\n" + statements.create_index(qualify_index=qualify_index) + ";"
    assert canonical(sql_blocks()[position]) == canonical(run)
