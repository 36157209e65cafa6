"""
WavyOpenSessionsTrigger against the sandbox over real loopback sockets, on one event loop per test.

Only what is the trigger's own: serialization, polling, deadlines, events. What WavyAsyncHook must answer
(faults, redirects, credentials, ids) is the transport contract, tests/hooks/test_contract.py.
"""

from __future__ import annotations

import asyncio
import http.server
import importlib
import json
import logging
import threading
import time
from contextlib import contextmanager
from dataclasses import dataclass, field
from typing import TYPE_CHECKING, Any

import pytest

from airflow_provider_wavy.sandbox import Scenario, WavySandbox
from airflow_provider_wavy.triggers.wavy import WavyOpenSessionsTrigger, shared_ssl_context
from tests.conftest import SANDBOX_TOKEN, set_conn
from tests.hostile import always, answer, serve

if TYPE_CHECKING:
    from collections.abc import Callable, Iterator


async def first_event(trigger: WavyOpenSessionsTrigger) -> dict[str, Any]:
    """Run a trigger the way the triggerer does, up to its first event."""
    async for event in trigger.run():
        payload = event.payload
        assert isinstance(payload, dict)
        return payload
    raise AssertionError("the trigger ended without an event")


def run_trigger(**kwargs: Any) -> tuple[dict[str, Any], float]:
    """Run a trigger to its event; return the event and the seconds it took."""
    kwargs.setdefault("poke_interval", 0.05)
    kwargs.setdefault("backoff_base", 0.01)
    kwargs.setdefault("deadline", time.time() + 20)
    started = time.monotonic()
    event = asyncio.run(first_event(WavyOpenSessionsTrigger(**kwargs)))
    return event, time.monotonic() - started


class _MalformedHandler(http.server.BaseHTTPRequestHandler):
    body = b"<html><body>Service portal</body></html>"

    def do_GET(self) -> None:
        self.send_response(200)
        self.send_header("Content-Type", "text/html")
        self.send_header("Content-Length", str(len(self.body)))
        self.end_headers()
        self.wfile.write(self.body)

    def log_message(self, format: str, *args: Any) -> None:
        """Stay quiet."""


@contextmanager
def malformed_api() -> Iterator[str]:
    """Serve an "API" answering 200 with an HTML page (say, a proxy's portal); yield its base URL."""
    server = http.server.ThreadingHTTPServer(("127.0.0.1", 0), _MalformedHandler)
    thread = threading.Thread(target=server.serve_forever, kwargs={"poll_interval": 0.05}, daemon=True)
    thread.start()
    try:
        yield f"http://127.0.0.1:{server.server_port}"
    finally:
        server.shutdown()
        server.server_close()


# -- serialization ---------------------------------------------------------------------------------------


SERIALIZE_CASES = [
    pytest.param({}, id="defaults"),
    pytest.param(
        {
            "wavy_conn_id": "wavy_prod",
            "customer_id": "42",
            "sub_account_id": "7",
            "require_rows": True,
            "poke_interval": 30,
            "exponential_backoff": True,
            "max_wait": 600,
            "deadline": 1_900_000_000.5,
            "backoff_base": 2,
        },
        id="every-argument",
    ),
]


@pytest.mark.parametrize("kwargs", SERIALIZE_CASES)
def test_serialize_round_trip(kwargs: dict[str, Any], sandbox: WavySandbox) -> None:
    trigger = WavyOpenSessionsTrigger(**kwargs)
    classpath, serialized = trigger.serialize()
    text = json.dumps(serialized)  # JSON-safe, as the triggerer table stores it
    module_name, _, class_name = classpath.rpartition(".")
    cls = getattr(importlib.import_module(module_name), class_name)
    again = cls(**json.loads(text))
    assert again.serialize() == (classpath, serialized)
    assert classpath == "airflow_provider_wavy.triggers.wavy.WavyOpenSessionsTrigger"
    assert SANDBOX_TOKEN not in text
    assert "password" not in text
    assert "token" not in text.lower()


def test_rejects_non_finite_deadline() -> None:
    with pytest.raises(ValueError, match="deadline"):
        WavyOpenSessionsTrigger(deadline=float("inf"))


# -- run() against the sandbox --------------------------------------------------------------------------


@dataclass
class Case:
    scenario: dict[str, Any] = field(default_factory=dict)
    kwargs: dict[str, Any] = field(default_factory=dict)
    conn: dict[str, Any] = field(default_factory=dict)
    status: str = "success"
    error_class: str = ""
    message: str = ""
    api_calls: int | None = None
    max_api_calls: int | None = None
    cdn_calls: int | None = None
    max_seconds: float = 10.0
    logged: str = ""


def p(case_id: str, **kwargs: Any) -> Any:
    return pytest.param(Case(**kwargs), id=case_id)


RUN_CASES = [
    p("ready-at-once", api_calls=1, cdn_calls=0),
    # The four shapes of "not yet" are in the transport contract; the trigger's own part is polling.
    p("ready-after-3", scenario={"ready_after": 3, "pending_style": "missing"}, api_calls=4),
    p("require-rows-ready", kwargs={"require_rows": True}, api_calls=1, cdn_calls=1),
    p(
        "require-rows-cdn-lagging-404",
        scenario={"cdn_not_found_calls": 2, "cdn_status": 404},
        kwargs={"require_rows": True},
        api_calls=3,
        cdn_calls=3,
        logged="HTTP 404",
    ),
    p(
        "require-rows-header-only-waits-until-deadline",
        scenario={"rows": 0},
        kwargs={"require_rows": True, "deadline_in": 1.0, "poke_interval": 0.2},
        status="timeout",
        message="with data rows by the deadline",
        max_seconds=3,
        logged="header only",
    ),
    p(
        "require-rows-html-file-fails-at-once",
        scenario={"file_body": "html"},
        kwargs={"require_rows": True},
        status="error",
        error_class="WavyResponseError",
        message="is not the open-sessions CSV",
        api_calls=1,
    ),
    p(
        "5xx-forever-keeps-waiting-with-backoff-then-times-out",
        scenario={"server_errors": 10_000},
        conn={"extra": {"max_retries": 1}},
        kwargs={"deadline_in": 2.0, "poke_interval": 0.3, "backoff_base": 0.2},
        status="timeout",
        # Per poll: a try, a 0.1-0.2 s backoff, a retry, then a 0.3 s pause: never a tight loop.
        max_api_calls=12,
        max_seconds=4,
        logged="Still waiting",
    ),
    p(
        "slow-api-bounded-by-the-deadline",
        # Short enough that the abandoned answer lands before the tests that count "not yet" answers.
        scenario={"api_delay": 1.5},
        kwargs={"deadline_in": 0.5},
        status="timeout",
        max_seconds=3,
    ),
    p(
        "401-error-event",
        scenario={"api_status": 401},
        status="error",
        error_class="WavyAuthenticationError",
        message="No user was found with this combination",
        api_calls=1,
    ),
    p(
        "missing-customer-id-error-event",
        conn={"extra": {"customer_id": ""}},
        status="error",
        error_class="WavyConfigurationError",
        message="No Wavy customer id",
        api_calls=0,
    ),
    p(
        "deadline-already-passed",
        kwargs={"deadline_in": -1.0},
        status="timeout",
        api_calls=0,
        max_seconds=1,
    ),
]


@pytest.mark.parametrize("case", RUN_CASES)
def test_run_against_sandbox(
    case: Case, sandbox: WavySandbox, monkeypatch: pytest.MonkeyPatch, all_logs: Callable[[], str]
) -> None:
    sandbox.scenario = Scenario(**case.scenario)
    if case.conn:
        set_conn(monkeypatch, sandbox.connection_json(), **case.conn)
    kwargs = dict(case.kwargs)
    if "deadline_in" in kwargs:
        kwargs["deadline"] = time.time() + kwargs.pop("deadline_in")

    event, seconds = run_trigger(**kwargs)

    assert event["status"] == case.status, event
    if case.status == "success":
        assert event["file_url"].startswith(sandbox.cdn_url)
    if case.error_class:
        assert event["error_class"] == case.error_class
    assert case.message in event.get("message", "")
    if case.api_calls is not None:
        assert sandbox.api_calls == case.api_calls
    if case.max_api_calls is not None:
        assert 2 <= sandbox.api_calls <= case.max_api_calls
    if case.cdn_calls is not None:
        assert sandbox.cdn_calls == case.cdn_calls
    assert seconds < case.max_seconds
    assert not sandbox.cdn_saw_credentials, "the token must never reach the file host"
    assert SANDBOX_TOKEN not in json.dumps(event)
    text = all_logs()
    assert SANDBOX_TOKEN not in text
    assert case.logged in text


def test_malformed_answer_is_an_error_event(sandbox: WavySandbox, monkeypatch: pytest.MonkeyPatch) -> None:
    with malformed_api() as base_url:
        set_conn(monkeypatch, sandbox.connection_json(), host=base_url)
        event, seconds = run_trigger()
    assert event["status"] == "error"
    assert event["error_class"] == "WavyResponseError"
    assert "not JSON" in event["message"]
    assert seconds < 5


def test_ids_passed_to_the_trigger_win(sandbox: WavySandbox) -> None:
    event, _ = run_trigger(customer_id="77", sub_account_id="5")
    assert event["status"] == "success"
    queries = [r.query for r in sandbox.requests if r.origin == "api"]
    assert queries == [{"customerId": "77", "subAccountId": "5"}]


def test_unreachable_api_keeps_waiting(sandbox: WavySandbox, monkeypatch: pytest.MonkeyPatch) -> None:
    set_conn(monkeypatch, sandbox.connection_json(), host="http://127.0.0.1:9", extra={"max_retries": 0})
    event, seconds = run_trigger(deadline=time.time() + 1, poke_interval=0.2)
    assert event["status"] == "timeout"
    assert seconds < 3


@pytest.mark.parametrize(
    ("kwargs", "expected"),
    [
        pytest.param({"poke_interval": 5}, [5, 5, 5, 5], id="fixed"),
        pytest.param({"poke_interval": 5, "exponential_backoff": True}, [5, 10, 20, 40], id="doubling"),
        pytest.param(
            {"poke_interval": 5, "exponential_backoff": True, "max_wait": 15}, [5, 10, 15, 15], id="capped"
        ),
        pytest.param({"poke_interval": 0}, [0.1] * 4, id="never-a-tight-loop"),
    ],
)
def test_poll_intervals(kwargs: dict[str, Any], expected: list[float]) -> None:
    trigger = WavyOpenSessionsTrigger(**kwargs)
    assert [trigger._interval(n) for n in range(1, 5)] == expected


def test_ssl_context_is_shared() -> None:
    async def contexts() -> list[Any]:
        return list(await asyncio.gather(*(shared_ssl_context() for _ in range(20))))

    first = asyncio.run(contexts())
    second = asyncio.run(contexts())
    assert len({id(context) for context in first + second}) == 1


def test_many_triggers_share_one_client_closed_with_the_last(sandbox: WavySandbox) -> None:
    from airflow_provider_wavy.hooks import _httpx_client

    sandbox.scenario = Scenario(ready_after=60)

    async def many() -> list[dict[str, Any]]:
        triggers = [WavyOpenSessionsTrigger(poke_interval=0.05, deadline=time.time() + 20) for _ in range(30)]
        events = list(await asyncio.gather(*(first_event(trigger) for trigger in triggers)))
        assert asyncio.get_running_loop() not in _httpx_client._clients, "closed when its last trigger ended"
        return events

    events = asyncio.run(many())
    assert {event["status"] for event in events} == {"success"}
    assert len({event["file_url"] for event in events}) == 1
    assert sandbox.api_calls >= 61


def test_shared_client_refuses_cookies() -> None:
    """Triggers of different connections share the client: nothing set for one may reach another."""
    import httpx

    from airflow_provider_wavy.hooks._httpx_client import _no_cookies

    seen: list[str | None] = []

    def handler(request: httpx.Request) -> httpx.Response:
        seen.append(request.headers.get("cookie"))
        return httpx.Response(200, headers={"Set-Cookie": "session=abc; Path=/"}, json={})

    async def twice() -> None:
        async with httpx.AsyncClient(transport=httpx.MockTransport(handler), cookies=_no_cookies()) as client:
            await client.get("https://api.example/v1/session")
            await client.get("https://api.example/v1/session")
            assert not client.cookies

    asyncio.run(twice())
    assert seen == [None, None]


def test_httpx_request_log_lines_drop_query_strings(
    caplog: pytest.LogCaptureFixture, monkeypatch: pytest.MonkeyPatch
) -> None:
    """On Airflow 2.11 httpx logs each request at INFO: the provider's signed URLs lose their query there."""
    csv = b"source;session_created_at\n5511999990000;2026-11-24 10:00:00\n"
    with serve(always(answer(200, csv, [("Content-Type", "text/csv")]))) as cdn:
        body = json.dumps({"file_url": f"{cdn.url}/2026/11/24/x/y?X-Signature=s3cr3t-sig"}).encode()
        with serve(always(answer(200, body, [("Content-Type", "application/json")]))) as api:
            set_conn(
                monkeypatch,
                json.dumps({"conn_type": "wavy", "host": api.url, "login": "u"}),
                password="t0ken-abcdef",
                extra={"customer_id": "1"},
            )
            caplog.set_level(logging.INFO, logger="httpx")
            httpx_logger = logging.getLogger("httpx")
            httpx_logger.addHandler(caplog.handler)
            try:
                event, _ = run_trigger(require_rows=True)
            finally:
                httpx_logger.removeHandler(caplog.handler)
    assert event["status"] == "success", event
    assert f"{cdn.url}/2026/11/24/x/y" in caplog.text
    assert "s3cr3t-sig" not in caplog.text


def test_other_httpx_users_logs_are_left_alone(
    sandbox: WavySandbox, caplog: pytest.LogCaptureFixture
) -> None:
    """Nothing process-wide: another library's httpx requests are logged as httpx logs them."""
    import httpx

    caplog.set_level(logging.INFO, logger="httpx")
    httpx_logger = logging.getLogger("httpx")
    httpx_logger.addHandler(caplog.handler)

    async def with_a_trigger_running() -> None:
        sandbox.scenario = Scenario(ready_after=1000)
        waiting = asyncio.ensure_future(first_event(WavyOpenSessionsTrigger(poke_interval=0.05)))
        await asyncio.sleep(0.3)  # the trigger's shared client exists now
        async with httpx.AsyncClient() as other:
            await other.get(f"{sandbox.cdn_url}/2026/11/24/x/y?X-Signature=other-sig", timeout=5)
        waiting.cancel()

    try:
        asyncio.run(with_a_trigger_running())
    finally:
        httpx_logger.removeHandler(caplog.handler)
    assert "X-Signature=other-sig" in caplog.text


def test_last_look_at_the_deadline(sandbox: WavySandbox) -> None:
    """A file published before the deadline is found even when the next poll would come after it."""
    sandbox.scenario = Scenario(ready_after=1)
    event, seconds = run_trigger(poke_interval=30, deadline=time.time() + 1.0)
    assert event["status"] == "success", event
    assert sandbox.api_calls == 2
    assert 0.9 <= seconds < 5, "it waited for the deadline, not for the 30 s interval"


@pytest.mark.parametrize(
    "body",
    [
        pytest.param(b"rejected token tok-TRIG-77aa-SECRET", id="plain-echo"),
        pytest.param(b'{"errorMessage": "tok%2DTRIG%2D77aa%2DSECRET is wrong"}', id="percent-encoded-echo"),
    ],
)
def test_token_is_masked_on_the_triggerer_and_never_in_an_event(
    body: bytes, monkeypatch: pytest.MonkeyPatch
) -> None:
    """A server echoing the token: the event holds none of it, and the triggerer's masker knows it."""
    from airflow.providers.common.compat.sdk import redact

    token = "tok-TRIG-77aa-SECRET"
    with serve(always(answer(400, body))) as api:
        set_conn(
            monkeypatch,
            json.dumps({"conn_type": "wavy", "host": api.url, "login": "u", "password": token}),
            extra={"customer_id": "1"},
        )
        event, _ = run_trigger()
    assert event["status"] == "error", event
    assert event["error_class"] == "WavyRequestError"
    assert "HTTP 400" in event["message"]
    assert token not in json.dumps(event)
    assert "tok%2DTRIG" not in json.dumps(event)
    assert token not in str(redact(f"the token is {token}"))
