"""
A wrong host or port gets advice about the host and port on every path, through real sockets.

"Connection refused" (nothing listens: a closed loopback port) and a port where something else than an
HTTP server answers (a scripted server that closes at once, or speaks SSH) must not read "the service may
be down or rate limiting": the API call of both hooks, the Test button, the file download of both hooks,
the sensor's poke, the trigger and the operator.
"""

from __future__ import annotations

import asyncio
import socket
import time
from typing import TYPE_CHECKING, Any

import pytest

from airflow_provider_wavy.exceptions import WavyError
from airflow_provider_wavy.hooks.wavy import WavyHook
from airflow_provider_wavy.hooks.wavy_async import WavyAsyncHook
from airflow_provider_wavy.messages import HOST_PORT_ADVICE
from airflow_provider_wavy.operators.wavy import WavyOpenSessionsOperator
from airflow_provider_wavy.sensors.wavy import WavyOpenSessionsSensor
from airflow_provider_wavy.triggers.wavy import WavyOpenSessionsTrigger
from tests.conftest import set_conn
from tests.hostile import HostileServer

if TYPE_CHECKING:
    from collections.abc import Callable, Iterator

    from airflow_provider_wavy.sandbox import WavySandbox

BUSY_ADVICE = "may be down or rate limiting"


def _closed_port_url() -> str:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return f"http://127.0.0.1:{sock.getsockname()[1]}"


@pytest.fixture(params=["refused", "closes-at-once", "speaks-ssh"])
def wrong_port(request: pytest.FixtureRequest) -> Iterator[str]:
    """Return the origin of a loopback port where no HTTP server answers."""
    if request.param == "refused":
        yield _closed_port_url()
        return
    banner = [b"SSH-2.0-OpenSSH_9.6\r\n"] if request.param == "speaks-ssh" else []
    with HostileServer(lambda _request: iter(banner)) as server:
        yield server.url.rstrip("/")


async def _trigger_warnings(trigger: WavyOpenSessionsTrigger) -> dict[str, Any]:
    async for event in trigger.run():
        return dict(event.payload)
    raise AssertionError("no event")


def _api_sync() -> object:
    return WavyHook(backoff_base=0.01).get_open_sessions_file_url()


def _api_async() -> object:
    return asyncio.run(WavyAsyncHook(backoff_base=0.01).get_open_sessions_file_url())


def _test_button() -> object:
    ok, message = WavyHook().test_connection()
    assert not ok
    raise WavyError(message)


def _sensor_poke() -> object:
    sensor = WavyOpenSessionsSensor(task_id=f"wait_{time.monotonic_ns()}", poke_interval=0.05, timeout=20)
    assert not sensor.poke({}).is_done  # type: ignore[arg-type]
    return None


def _trigger() -> object:
    # Its first poll logs the advice; the deadline only ends the run, with room for a slow first client.
    trigger = WavyOpenSessionsTrigger(poke_interval=0.5, backoff_base=0.01, deadline=time.time() + 4)
    return asyncio.run(_trigger_warnings(trigger))


API_PATHS: list[Any] = [
    pytest.param(_api_sync, id="requests-hook"),
    pytest.param(_api_async, id="httpx-hook"),
    pytest.param(_test_button, id="test-connection"),
    pytest.param(_sensor_poke, id="sensor-poke-logs"),
    pytest.param(_trigger, id="trigger-logs"),
]


@pytest.mark.parametrize("path", API_PATHS)
def test_wrong_api_port_gets_host_and_port_advice(
    path: Callable[[], object],
    wrong_port: str,
    sandbox: WavySandbox,
    monkeypatch: pytest.MonkeyPatch,
    all_logs: Callable[[], str],
) -> None:
    set_conn(monkeypatch, sandbox.connection_json(), host=wrong_port, extra={"max_retries": 0})
    try:
        result = path()
    except WavyError as error:
        text = str(error)
    else:
        # The logs, and what the path returned (a trigger's last event), so a failure shows both.
        text = f"{all_logs()}\nreturned: {result!r}"
    assert HOST_PORT_ADVICE in text, text
    assert BUSY_ADVICE not in text, text
    assert wrong_port in text


def _file_sync(url: str) -> object:
    with WavyHook(backoff_base=0.01).open_file(url) as download:
        return download


def _file_async(url: str) -> object:
    return asyncio.run(WavyAsyncHook(backoff_base=0.01).file_has_rows(url))


def _operator(url: str) -> object:
    operator = WavyOpenSessionsOperator(task_id=f"download_{time.monotonic_ns()}", file_url=url)
    return operator.execute({"ds": "2026-11-23", "run_id": "manual"})  # type: ignore[arg-type]


@pytest.mark.parametrize(
    "path",
    [
        pytest.param(_file_sync, id="requests-download"),
        pytest.param(_file_async, id="httpx-file-has-rows"),
        pytest.param(_operator, id="operator"),
    ],
)
def test_wrong_file_port_gets_host_and_port_advice(
    path: Callable[[str], object], wrong_port: str, sandbox: WavySandbox, monkeypatch: pytest.MonkeyPatch
) -> None:
    set_conn(monkeypatch, sandbox.connection_json(), extra={"max_retries": 0})
    with pytest.raises(WavyError) as info:
        path(f"{wrong_port}/2026/11/23/file.csv")
    assert HOST_PORT_ADVICE in str(info.value), info.value
    assert BUSY_ADVICE not in str(info.value)
