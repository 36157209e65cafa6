"""The ``db`` fixture: each SQL transfer test runs on a throwaway PostgreSQL and on SQLite."""

from __future__ import annotations

import json
from typing import Any

import pytest

from tests.transfers.sql_env import SQL_CONN, Db


@pytest.fixture(params=["postgres", "sqlite"])
def db(request: pytest.FixtureRequest, monkeypatch: pytest.MonkeyPatch, tmp_path: Any) -> Db:
    if request.param == "postgres":
        server = request.getfixturevalue("pg_server")
        server.create_database("wavy_sql")
        conn = {"conn_type": "postgres", "host": server.host, "port": server.port, "login": server.user,
                "schema": "wavy_sql"}  # fmt: skip
    else:
        conn = {"conn_type": "sqlite", "host": str(tmp_path / "wavy.sqlite")}
    monkeypatch.setenv(f"AIRFLOW_CONN_{SQL_CONN.upper()}", json.dumps(conn))
    return Db(request.param)
