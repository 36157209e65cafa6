"""WavyOpenSessionsSensor without an Airflow database: poke, the poke loop, deferral and its completion."""

from __future__ import annotations

import asyncio
import json
import subprocess
import sys
import time
from contextlib import contextmanager
from dataclasses import dataclass, field
from datetime import timedelta
from typing import TYPE_CHECKING, Any

import pytest
from airflow.providers.common.compat.sdk import (
    AirflowException,
    AirflowSensorTimeout,
    AirflowSkipException,
    TaskDeferred,
)

from airflow_provider_wavy import exceptions
from airflow_provider_wavy.exceptions import (
    WavyAuthenticationError,
    WavyConfigurationError,
    WavyError,
    WavyRequestError,
    WavyResponseError,
)
from airflow_provider_wavy.sandbox import Scenario, WavySandbox
from airflow_provider_wavy.sensors.wavy import DEFERRAL_GRACE, WavyOpenSessionsSensor
from airflow_provider_wavy.triggers.wavy import WavyOpenSessionsTrigger
from tests.conftest import REPO_ROOT, SANDBOX_TOKEN, set_conn
from tests.triggers.test_wavy import first_event, malformed_api

if TYPE_CHECKING:
    from collections.abc import Iterator

_task_ids = iter(range(1_000_000))


def make_sensor(**kwargs: Any) -> WavyOpenSessionsSensor:
    kwargs.setdefault("task_id", f"wait_{next(_task_ids)}")
    kwargs.setdefault("poke_interval", 0.05)
    kwargs.setdefault("timeout", 20)
    return WavyOpenSessionsSensor(**kwargs)


@pytest.fixture
def fast_retries(monkeypatch: pytest.MonkeyPatch) -> None:
    """Make the hook's transient retries fast (the sensor builds the hook itself)."""
    from airflow_provider_wavy.hooks.wavy import WavyHook

    original = WavyHook.__init__

    def init(self: WavyHook, **kwargs: Any) -> None:
        original(self, backoff_base=0.01, **kwargs)

    monkeypatch.setattr(WavyHook, "__init__", init)


# -- construction and import cost ---------------------------------------------------------------------


def test_constructor_and_templates() -> None:
    sensor = make_sensor(customer_id="{{ params.customer }}", sub_account_id="9", require_rows=True)
    assert sensor.template_fields == ("customer_id", "sub_account_id")
    assert isinstance(sensor.template_fields, tuple)
    assert (sensor.wavy_conn_id, sensor.require_rows, sensor.deferrable) == ("wavy_default", True, False)
    # Keyword-only: Airflow 3 raises TypeError, Airflow 2's operator metaclass an AirflowException.
    with pytest.raises((TypeError, AirflowException)):
        WavyOpenSessionsSensor("task", "1001")  # type: ignore[misc]


@pytest.mark.slow
def test_default_deferrable_follows_config() -> None:
    code = (
        "from airflow_provider_wavy.sensors.wavy import WavyOpenSessionsSensor as S;"
        "print(S(task_id='t').deferrable)"
    )
    env = {"AIRFLOW__OPERATORS__DEFAULT_DEFERRABLE": "True", "PYTHONWARNINGS": "ignore"}
    result = subprocess.run(
        [sys.executable, "-c", code],
        capture_output=True,
        text=True,
        check=True,
        cwd=REPO_ROOT,
        env={**__import__("os").environ, **env},
    )
    assert result.stdout.strip().splitlines()[-1] == "True"


@pytest.mark.slow
def test_module_imports_cheaply() -> None:
    """DAG parsing imports the sensor module all day: no hook, trigger, requests or httpx at import."""
    code = (
        "import sys, airflow.providers.common.compat.sdk;"
        "before = set(sys.modules);"
        "import airflow_provider_wavy.sensors.wavy;"
        "print(sorted(m for m in set(sys.modules) - before if m.split('.')[0] in "
        "('requests', 'httpx', 'urllib3', 'aiohttp') or m.startswith(('airflow_provider_wavy.hooks', "
        "'airflow_provider_wavy.triggers', 'airflow_provider_wavy.sessions_csv', "
        "'airflow_provider_wavy.csv'))))"
    )
    result = subprocess.run(
        [sys.executable, "-c", code], capture_output=True, text=True, check=True, cwd=REPO_ROOT
    )
    assert result.stdout.strip().splitlines()[-1] == "[]"


# -- poke ---------------------------------------------------------------------------------------------------


def test_poke_ready_after_n(sandbox: WavySandbox) -> None:
    sandbox.scenario = Scenario(ready_after=2)
    sensor = make_sensor()
    results = [sensor.poke({}) for _ in range(3)]  # type: ignore[arg-type]
    assert [bool(r) for r in results] == [False, False, True]
    assert str(results[-1].xcom_value).startswith(sandbox.cdn_url)
    assert sandbox.api_calls == 3


@dataclass
class Case:
    scenario: dict[str, Any] = field(default_factory=dict)
    conn: dict[str, Any] = field(default_factory=dict)
    kwargs: dict[str, Any] = field(default_factory=dict)
    done: bool = True
    cdn_calls: int | None = None


def p(case_id: str, **kwargs: Any) -> Any:
    return pytest.param(Case(**kwargs), id=case_id)


POKE_CASES = [
    p("file-url", cdn_calls=0),
    p("not-yet", scenario={"ready_after": 5}, done=False),
    p("require-rows-with-rows", kwargs={"require_rows": True}, cdn_calls=1),
    p("require-rows-header-only", scenario={"rows": 0}, kwargs={"require_rows": True}, done=False),
    p(
        "require-rows-cdn-404-is-not-yet",
        scenario={"cdn_not_found_calls": 1, "cdn_status": 404},
        kwargs={"require_rows": True},
        done=False,
    ),
    p(
        "require-rows-gzip-chunked",
        scenario={"gzip": True, "chunked": True, "rows": 5000},
        kwargs={"require_rows": True},
    ),
    p(
        "transient-errors-are-not-yet",
        scenario={"server_errors": 100},
        conn={"extra": {"max_retries": 1}},
        done=False,
    ),
]


@pytest.mark.usefixtures("fast_retries")
@pytest.mark.parametrize("case", POKE_CASES)
def test_poke(case: Case, sandbox: WavySandbox, monkeypatch: pytest.MonkeyPatch) -> None:
    sandbox.scenario = Scenario(**case.scenario)
    if case.conn:
        set_conn(monkeypatch, sandbox.connection_json(), **case.conn)
    result = make_sensor(**case.kwargs).poke({})  # type: ignore[arg-type]
    assert bool(result) is case.done
    if case.done:
        assert str(result.xcom_value).startswith(sandbox.cdn_url)
    else:
        assert result.xcom_value is None
    if case.cdn_calls is not None:
        assert sandbox.cdn_calls == case.cdn_calls
    assert not sandbox.cdn_saw_credentials


# -- the poke loop: timeout, soft_fail, fail-fast -------------------------------------------------------


def test_poke_loop_returns_the_file_url(sandbox: WavySandbox) -> None:
    sandbox.scenario = Scenario(ready_after=2)
    url = make_sensor().execute({})  # type: ignore[arg-type]
    assert url.startswith(sandbox.cdn_url)
    assert sandbox.api_calls == 3


@dataclass
class FailCase:
    scenario: dict[str, Any] = field(default_factory=dict)
    conn: dict[str, Any] = field(default_factory=dict)
    kwargs: dict[str, Any] = field(default_factory=dict)
    malformed: bool = False
    error: type[Exception] = WavyError
    message: str = ""


def f(case_id: str, **kwargs: Any) -> Any:
    return pytest.param(FailCase(**kwargs), id=case_id)


FAIL_CASES = [
    f("401", scenario={"api_status": 401}, error=WavyAuthenticationError, message="No user was found"),
    f("wrong-token", conn={"password": "nope"}, error=WavyAuthenticationError, message="Check its Login"),
    f("400", scenario={"api_status": 400}, error=WavyRequestError, message="Check the customer"),
    f(
        "missing-customer-id",
        conn={"extra": {"customer_id": ""}},
        error=WavyConfigurationError,
        message="No Wavy customer id",
    ),
    f("malformed-answer", malformed=True, error=WavyResponseError, message="not JSON"),
    f(
        "html-instead-of-csv",
        scenario={"file_body": "html"},
        kwargs={"require_rows": True},
        error=WavyResponseError,
        message="is not the open-sessions CSV",
    ),
    f(
        "never-ready-times-out",
        scenario={"ready_after": 10_000},
        kwargs={"timeout": 0.4},
        error=AirflowSensorTimeout,
        message="timed out",
    ),
    f(
        "failing-api-times-out-not-fails",
        scenario={"server_errors": 10_000},
        conn={"extra": {"max_retries": 0}},
        kwargs={"timeout": 0.4},
        error=AirflowSensorTimeout,
        message="timed out",
    ),
]


@contextmanager
def prepared(case: FailCase, sandbox: WavySandbox, monkeypatch: pytest.MonkeyPatch) -> Iterator[None]:
    sandbox.scenario = Scenario(**case.scenario)
    if case.malformed:
        with malformed_api() as base_url:
            set_conn(monkeypatch, sandbox.connection_json(), host=base_url, **case.conn)
            yield
        return
    if case.conn:
        set_conn(monkeypatch, sandbox.connection_json(), **case.conn)
    yield


@pytest.mark.usefixtures("fast_retries")
@pytest.mark.parametrize("soft_fail", [pytest.param(False, id="fails"), pytest.param(True, id="soft-fail")])
@pytest.mark.parametrize("case", FAIL_CASES)
def test_poke_loop_fails_fast_or_times_out(
    case: FailCase, soft_fail: bool, sandbox: WavySandbox, monkeypatch: pytest.MonkeyPatch
) -> None:
    sensor = make_sensor(soft_fail=soft_fail, **case.kwargs)
    started = time.monotonic()
    with prepared(case, sandbox, monkeypatch):
        expected = AirflowSkipException if soft_fail else case.error
        with pytest.raises(expected) as info:
            sensor.execute({})  # type: ignore[arg-type]
    elapsed = time.monotonic() - started
    assert elapsed < 5, "fail-fast errors fail at once; a timeout of 0.4 s is honoured"
    error = info.value.__cause__ if soft_fail and info.value.__cause__ else info.value
    if not soft_fail or case.error is not AirflowSensorTimeout:
        assert isinstance(error, case.error)
        assert case.message in str(error)
    assert SANDBOX_TOKEN not in str(error)


# -- deferrable ----------------------------------------------------------------------------------------------


def test_deferrable_defers_at_once_with_timeout_and_deadline(sandbox: WavySandbox) -> None:
    sensor = make_sensor(
        deferrable=True,
        timeout=600,
        poke_interval=30,
        customer_id="42",
        require_rows=True,
        exponential_backoff=True,
        max_wait=300,
    )
    with pytest.raises(TaskDeferred) as info:
        sensor.execute({})  # type: ignore[arg-type]
    deferred = info.value
    assert deferred.method_name == "execute_complete"
    # The trigger's own deadline is the sensor's timeout; Airflow's deferral timeout only backs it up.
    assert deferred.timeout == timedelta(seconds=600 + DEFERRAL_GRACE)
    trigger = deferred.trigger
    assert isinstance(trigger, WavyOpenSessionsTrigger)
    _classpath, kwargs = trigger.serialize()
    assert kwargs["deadline"] == pytest.approx(time.time() + 600, abs=5)
    assert {k: kwargs[k] for k in ("customer_id", "require_rows", "poke_interval", "max_wait")} == {
        "customer_id": "42",
        "require_rows": True,
        "poke_interval": 30,
        "max_wait": 300,
    }
    assert SANDBOX_TOKEN not in json.dumps(kwargs)
    assert sandbox.api_calls == 0, "the whole wait runs on the triggerer"


COMPLETE_CASES = [
    pytest.param({"status": "success", "file_url": "https://cdn/x"}, False, None, id="success"),
    pytest.param({"status": "timeout", "message": "late"}, False, AirflowSensorTimeout, id="timeout"),
    pytest.param({"status": "timeout", "message": "late"}, True, AirflowSkipException, id="timeout-soft"),
    *(
        pytest.param(
            {"status": "error", "error_class": name, "message": "boom"},
            False,
            getattr(exceptions, name),
            id=f"error-{name}",
        )
        for name in (
            "WavyAuthenticationError",
            "WavyConfigurationError",
            "WavyRequestError",
            "WavyResponseError",
            "WavyRedirectError",
            "WavyTransientError",
            "WavyDownloadError",
        )
    ),
    pytest.param(
        {"status": "error", "error_class": "os.system", "message": "x"}, False, WavyError, id="alien"
    ),
    pytest.param({"status": "error", "message": "x"}, False, WavyError, id="no-class"),
    pytest.param(None, False, WavyError, id="no-event"),
]


@pytest.mark.parametrize(("event", "soft_fail", "error"), COMPLETE_CASES)
def test_execute_complete(
    event: dict[str, Any] | None, soft_fail: bool, error: type[Exception] | None
) -> None:
    sensor = make_sensor(deferrable=True, soft_fail=soft_fail)
    if error is None:
        assert sensor.execute_complete({}, event) == "https://cdn/x"  # type: ignore[arg-type]
        return
    with pytest.raises(error) as info:
        sensor.execute_complete({}, event)  # type: ignore[arg-type]
    assert type(info.value) is error
    if event and "message" in event:
        assert str(info.value) == event["message"]


SAME_ERROR_CASES = [
    pytest.param({"scenario": {"api_status": 401}}, id="401"),
    pytest.param({"conn": {"extra": {"customer_id": ""}}}, id="missing-customer-id"),
    pytest.param({"malformed": True}, id="malformed-answer"),
    pytest.param({"scenario": {"file_body": "json-error"}, "kwargs": {"require_rows": True}}, id="json-file"),
]


@pytest.mark.parametrize("spec", SAME_ERROR_CASES)
def test_deferrable_raises_what_poke_raises(
    spec: dict[str, Any], sandbox: WavySandbox, monkeypatch: pytest.MonkeyPatch
) -> None:
    """The same class and message, whether the check ran in the worker or on the triggerer."""
    case = FailCase(**spec)
    with prepared(case, sandbox, monkeypatch):
        with pytest.raises(WavyError) as sync:
            make_sensor(**case.kwargs).poke({})  # type: ignore[arg-type]
        sensor = make_sensor(deferrable=True, **case.kwargs)
        with pytest.raises(TaskDeferred) as deferred:
            sensor.execute({})  # type: ignore[arg-type]
        _classpath, kwargs = deferred.value.trigger.serialize()
        kwargs["poke_interval"] = 0.05
        event = asyncio.run(first_event(WavyOpenSessionsTrigger(**kwargs)))
    with pytest.raises(WavyError) as deferrable:
        sensor.execute_complete({}, event)  # type: ignore[arg-type]
    assert type(deferrable.value) is type(sync.value)
    assert str(deferrable.value) == str(sync.value)
    assert isinstance(sync.value, exceptions.WavyFatalError)
