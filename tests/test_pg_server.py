"""The shared throwaway PostgreSQL fixture answers, and databases made on it are separate."""

from __future__ import annotations

import subprocess
from typing import TYPE_CHECKING

if TYPE_CHECKING:
    from tests.pg_server import PgServer


def test_pg_server_answers_sql(pg_server: PgServer) -> None:
    uri = pg_server.create_database("wavy_fixture_check")
    assert uri.endswith(f":{pg_server.port}/wavy_fixture_check")
    assert pg_server.create_database("wavy_fixture_check") == uri  # kept when it exists
    from tests.pg_server import postgres_bin

    bin_dir = postgres_bin()
    assert bin_dir is not None
    out = subprocess.run(
        [str(bin_dir / "psql"), uri, "-XAtc", "select 40 + 2"],
        capture_output=True, text=True, timeout=60, check=True,
    )  # fmt: skip
    assert out.stdout.strip() == "42"
