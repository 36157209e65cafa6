"""The asynchronous connection helpers the triggers use, run on a real event loop on each Airflow version."""

from __future__ import annotations

import asyncio
import json
from typing import Any

import pytest
from airflow.providers.common.compat.sdk import AirflowNotFoundException

from airflow_provider_wavy._compat import get_async_connection
from airflow_provider_wavy.settings import read_extra

SECRET = "p-secret-123"
JSON_CONNECTION = {
    "conn_type": "wavy",
    "host": "http://127.0.0.1:9",
    "login": "u",
    "password": SECRET,
    "extra": {"customer_id": "42"},
}


async def _lookup(conn_id: str) -> tuple[Any, dict[str, Any]]:
    """Read a connection and its extra the way the triggers do."""
    conn = await get_async_connection(conn_id)
    return conn, read_extra(conn, conn_id)


@pytest.mark.parametrize(
    ("definition", "host", "port"),
    [
        pytest.param(json.dumps(JSON_CONNECTION), "http://127.0.0.1:9", None, id="json-extra-object"),
        pytest.param(
            json.dumps({**JSON_CONNECTION, "extra": json.dumps(JSON_CONNECTION["extra"])}),
            "http://127.0.0.1:9",
            None,
            id="json-extra-string",
        ),
        pytest.param(f"wavy://u:{SECRET}@127.0.0.1:9?customer_id=42", "127.0.0.1", 9, id="uri"),
    ],
)
def test_connection_and_extra_from_environment(
    monkeypatch: pytest.MonkeyPatch, definition: str, host: str, port: int | None
) -> None:
    monkeypatch.setenv("AIRFLOW_CONN_WAVY_DEFAULT", definition)

    conn, extra = asyncio.run(_lookup("wavy_default"))

    assert conn.conn_id == "wavy_default"
    assert conn.conn_type == "wavy"
    assert (conn.host, conn.port) == (host, port)
    assert conn.login == "u"
    assert conn.password == SECRET
    assert extra == {"customer_id": "42"}


def test_environment_change_is_seen_by_the_next_lookup(monkeypatch: pytest.MonkeyPatch) -> None:
    # Triggers read the connection at every start: an edited connection must not be served from a cache.
    monkeypatch.setenv("AIRFLOW_CONN_WAVY_DEFAULT", json.dumps(JSON_CONNECTION))
    _, before = asyncio.run(_lookup("wavy_default"))
    edited = {**JSON_CONNECTION, "login": "v", "extra": {"customer_id": "7"}}
    monkeypatch.setenv("AIRFLOW_CONN_WAVY_DEFAULT", json.dumps(edited))

    conn, after = asyncio.run(_lookup("wavy_default"))

    assert before == {"customer_id": "42"}
    assert (conn.login, after) == ("v", {"customer_id": "7"})


def test_concurrent_lookups_share_one_loop(monkeypatch: pytest.MonkeyPatch) -> None:
    # A triggerer runs many triggers on one loop: lookups in flight together must each get their own answer.
    for conn_id, customer in (("wavy_a", "1"), ("wavy_b", "2"), ("wavy_c", "3")):
        connection = {**JSON_CONNECTION, "login": conn_id, "extra": {"customer_id": customer}}
        monkeypatch.setenv(f"AIRFLOW_CONN_{conn_id.upper()}", json.dumps(connection))

    async def main() -> list[tuple[Any, dict[str, Any]]]:
        return await asyncio.gather(*(_lookup(c) for c in ("wavy_a", "wavy_b", "wavy_c") * 5))

    results = asyncio.run(main())

    assert [(conn.login, extra["customer_id"]) for conn, extra in results] == [
        ("wavy_a", "1"),
        ("wavy_b", "2"),
        ("wavy_c", "3"),
    ] * 5


def test_missing_connection_raises_not_found(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.delenv("AIRFLOW_CONN_WAVY_NOWHERE", raising=False)

    with pytest.raises(AirflowNotFoundException, match="wavy_nowhere"):
        asyncio.run(get_async_connection("wavy_nowhere"))
