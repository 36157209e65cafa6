"""
The sensor, the trigger and the operator against hostile servers: the hooks' guarantees hold through them.

The transport contract itself is tested in ``tests/hooks/test_hostile.py``; here each driver shows that it
passes the guarantees on (same error class everywhere, the sensor's own timeout bounds its calls, nothing
is written when a download is refused).
"""

from __future__ import annotations

import json
import re
import time
from typing import TYPE_CHECKING, Any

import pytest
from airflow.providers.common.compat.sdk import AirflowSensorTimeout

from airflow_provider_wavy.exceptions import (
    WavyConfigurationError,
    WavyDownloadError,
    WavyRedirectError,
)
from airflow_provider_wavy.operators.wavy import WavyOpenSessionsOperator
from airflow_provider_wavy.sensors.wavy import WavyOpenSessionsSensor
from tests.conftest import set_conn
from tests.hostile import HostileServer, RawRequest, answer, raw_answer, serve
from tests.operators.test_wavy import make_context
from tests.triggers.test_wavy import run_trigger

if TYPE_CHECKING:
    from collections.abc import Iterable, Iterator
    from pathlib import Path

TOKEN = "tok-DRIVERS-31f0-SECRET"
CSV = b"source;session_created_at\n5511999990000;2026-11-24 10:00:00\n"


def point_at(monkeypatch: pytest.MonkeyPatch, api: HostileServer, **extra: Any) -> None:
    conn = {"conn_type": "wavy", "host": api.url, "login": "user", "password": TOKEN}
    set_conn(monkeypatch, json.dumps(conn), extra={"customer_id": "1001", "timeout": 1, **extra})


@pytest.fixture
def csv_host() -> Iterator[HostileServer]:
    with serve(lambda _r: [answer(200, CSV, [("Content-Type", "text/csv")])]) as server:
        yield server


def _sensor(**kwargs: Any) -> WavyOpenSessionsSensor:
    kwargs.setdefault("poke_interval", 0.1)
    return WavyOpenSessionsSensor(task_id=f"wait_{time.monotonic_ns()}", **kwargs)


# -- a missing customer id: one class from every driver ---------------------------------------------------


def _sensor_poke() -> Any:
    return _sensor(timeout=5).poke({})  # type: ignore[arg-type]


def _trigger_event() -> Any:
    event, _ = run_trigger()
    if event["status"] == "error":
        from airflow_provider_wavy.sensors.wavy import exception_from_event

        raise exception_from_event(event)
    return event


def _operator_run(tmp_path: Path) -> Any:
    operator = WavyOpenSessionsOperator(task_id="download", destination=str(tmp_path) + "/")
    return operator.execute(make_context())  # type: ignore[arg-type]


@pytest.mark.parametrize(
    "driver",
    [
        pytest.param(lambda _p: _sensor_poke(), id="sensor"),
        pytest.param(lambda _p: _trigger_event(), id="trigger"),
        pytest.param(_operator_run, id="operator"),
    ],
)
def test_missing_customer_id_is_the_same_error_everywhere(
    driver: Any, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    with serve(lambda _r: [answer(200, b"{}")]) as api:
        point_at(monkeypatch, api, customer_id="")
        with pytest.raises(WavyConfigurationError, match="extra 'customer_id' on connection 'wavy_default'"):
            driver(tmp_path)
        assert api.requests == []


# -- the poke-mode sensor never waits past its own timeout ---------------------------------------------------


def _drip(_request: RawRequest) -> Iterable[bytes | float]:
    yield b"HTTP/1.1 200 OK\r\nContent-Length: 100000\r\n\r\n{"
    for _ in range(300):
        yield 0.2
        yield b" "


def test_poke_mode_sensor_never_waits_past_its_timeout(monkeypatch: pytest.MonkeyPatch) -> None:
    """A server dripping a byte inside the read timeout: the sensor still times out on time."""
    with serve(_drip) as api:
        point_at(monkeypatch, api)  # call_timeout stays at its 600 s default
        sensor = _sensor(timeout=2, mode="poke")
        started = time.monotonic()
        with pytest.raises(AirflowSensorTimeout):
            sensor.execute({})  # type: ignore[arg-type]
        assert time.monotonic() - started < 6


# -- the operator refuses a hostile file host and writes nothing -------------------------------------------


@pytest.mark.parametrize(
    ("file_script", "error", "words"),
    [
        pytest.param(
            lambda _r: [raw_answer("HTTP/1.1 302 Found", [b"Location: http://127.0.0.1:1\\@127.0.0.2/x"])],
            WavyRedirectError,
            "not a valid URL",
            id="backslash-redirect",
        ),
        pytest.param(
            lambda _r: [raw_answer("HTTP/1.1 302 Found", [b"Location: file:///etc/passwd"])],
            WavyRedirectError,
            "not an absolute http(s) URL",
            id="file-scheme-redirect",
        ),
        pytest.param(
            _drip,
            WavyDownloadError,
            "time limit of 1.5s",
            id="drip-past-download-timeout",
        ),
    ],
)
def test_operator_refuses_and_writes_nothing(
    file_script: Any, error: type[Exception], words: str, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    with serve(file_script) as files, serve(lambda _r: [answer(200, b"{}")]) as api:
        point_at(monkeypatch, api)
        operator = WavyOpenSessionsOperator(
            task_id="download",
            file_url=f"{files.url}/f.csv",
            destination=str(tmp_path) + "/",
            download_timeout=1.5,
        )
        started = time.monotonic()
        with pytest.raises(error, match=re.escape(words)) as info:
            operator.execute(make_context())  # type: ignore[arg-type]
        assert time.monotonic() - started < 5
        assert TOKEN not in str(info.value)
        assert not files.saw(TOKEN)
    assert list(tmp_path.iterdir()) == []


def test_operator_max_file_bytes_argument(
    csv_host: HostileServer, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    with serve(lambda _r: [answer(200, b"{}")]) as api:
        point_at(monkeypatch, api)
        operator = WavyOpenSessionsOperator(
            task_id="download",
            file_url=f"{csv_host.url}/f.csv",
            destination=str(tmp_path) + "/",
            max_file_bytes=10,
        )
        with pytest.raises(WavyDownloadError, match="larger than max_file_bytes=10"):
            operator.execute(make_context())  # type: ignore[arg-type]
    assert list(tmp_path.iterdir()) == []


@pytest.mark.parametrize(
    ("kwargs", "words"),
    [
        pytest.param(
            {"download_timeout": 0}, "download_timeout must be a number of seconds > 0", id="zero-timeout"
        ),
        pytest.param({"download_timeout": float("nan")}, "download_timeout", id="nan-timeout"),
        pytest.param({"max_file_bytes": 1.5}, "max_file_bytes must be a whole number", id="float-bytes"),
        pytest.param({"max_file_bytes": True}, "max_file_bytes", id="bool-bytes"),
    ],
)
def test_operator_limit_arguments_are_checked(kwargs: dict[str, Any], words: str) -> None:
    with pytest.raises(ValueError, match=words):
        WavyOpenSessionsOperator(task_id="download", **kwargs)
