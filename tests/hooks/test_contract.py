"""
The transport contract: one table of sandbox scenarios, run against both hooks over real loopback sockets.

``WavyHook`` (requests) and ``WavyAsyncHook`` (httpx) drive the same exchange loop; each row says what
both must give: the file URL (or "not yet"), the file (the whole of it through requests; its first data
row through httpx, which only looks), or an error of a given class and words. The pauses' lengths are the
exchange loop's and are checked on a fake clock in ``tests/test_exchange.py``; the one real-time row here
(``420-retry-after-honoured``) shows that both transports really sleep.
"""

from __future__ import annotations

import asyncio
import json
import socket
import time
from dataclasses import dataclass, field
from typing import TYPE_CHECKING, Any

import pytest

from airflow_provider_wavy.exceptions import (
    WavyAuthenticationError,
    WavyConfigurationError,
    WavyDownloadError,
    WavyRedirectError,
    WavyRequestError,
    WavyTransientError,
)
from airflow_provider_wavy.hooks.wavy import WavyHook
from airflow_provider_wavy.hooks.wavy_async import WavyAsyncHook
from airflow_provider_wavy.sandbox import Scenario, WavySandbox
from tests.conftest import SANDBOX_CUSTOMER, SANDBOX_TOKEN, SANDBOX_USER, set_conn

if TYPE_CHECKING:
    from collections.abc import Callable

BACKOFF = 0.05
TRANSPORTS = [pytest.param("requests", id="requests"), pytest.param("httpx", id="httpx")]


def ask(transport: str, backoff_base: float = BACKOFF, **ids: Any) -> str | None:
    """Ask for the open-sessions file URL through one transport (a fresh hook, as a task or trigger has)."""
    if transport == "requests":
        return WavyHook(backoff_base=backoff_base).get_open_sessions_file_url(**ids)
    return asyncio.run(WavyAsyncHook(backoff_base=backoff_base).get_open_sessions_file_url(**ids))


def fetch_file(transport: str, file_url: str) -> bytes | bool:
    """Read the file through one transport: all of it with requests, up to its first data row with httpx."""
    if transport == "requests":
        return b"".join(WavyHook(backoff_base=BACKOFF).iter_file_chunks(file_url, chunk_size=4096))
    return asyncio.run(WavyAsyncHook(backoff_base=BACKOFF).file_has_rows(file_url))


@dataclass
class Case:
    scenario: dict[str, Any] = field(default_factory=dict)
    conn: dict[str, Any] = field(default_factory=dict)
    action: str = "file"
    calls: int = 1
    error: type[Exception] | None = None
    message: str = ""
    api_calls: int | None = None
    min_seconds: float = 0.0
    logged: str = ""
    #: The transports the row holds for; a whole-file failure (a cut or stalled body after the first
    #: rows) is only the requests hook's: the httpx hook stops reading at the first data row.
    transports: tuple[str, ...] = ("requests", "httpx")


def p(case_id: str, **kwargs: Any) -> Any:
    return pytest.param(Case(**kwargs), id=case_id)


CASES = [
    p("happy-path", api_calls=1),
    p("header-only", scenario={"rows": 0}),
    p(
        "comma-bom-crlf-origin",
        scenario={"delimiter": ",", "bom": True, "crlf": True, "phone_column": "origin"},
    ),
    p(
        "quoted-extra-columns-no-final-newline",
        scenario={"quote": True, "extra_columns": ("x",), "final_newline": False},
    ),
    p("gzip-transfer", scenario={"gzip": True, "rows": 5000}),
    p("chunked-transfer", scenario={"chunked": True, "rows": 5000}),
    p(
        "gzip-chunked-crlf-bom",
        scenario={"gzip": True, "chunked": True, "crlf": True, "bom": True, "rows": 3000},
    ),
    *(
        p(
            f"ready-after-2-{style}",
            scenario={"ready_after": 2, "pending_style": style},
            action="poll",
            calls=3,
        )
        for style in ("missing", "null", "empty", "data")
    ),
    p(
        "400-not-retried",
        scenario={"api_status": 400},
        action="url",
        error=WavyRequestError,
        message="rejected the open-sessions request for customer_id='1001'",
        api_calls=1,
    ),
    p(
        "401-not-retried",
        scenario={"api_status": 401},
        action="url",
        error=WavyAuthenticationError,
        message="No user was found with this combination",
        api_calls=1,
    ),
    p(
        "403-not-retried",
        scenario={"api_status": 403},
        action="url",
        error=WavyAuthenticationError,
        message="HTTP 403",
        api_calls=1,
    ),
    p(
        "404-not-retried",
        scenario={"api_status": 404},
        action="url",
        error=WavyRequestError,
        message="not found",
        api_calls=1,
    ),
    p(
        # The one real-time pause of the table: both transports really sleep what the loop asks.
        "420-retry-after-honoured",
        scenario={"rate_limit_status": 420, "rate_limited_calls": 1, "retry_after": "1"},
        api_calls=2,
        min_seconds=0.95,
        logged="HTTP 420",
    ),
    p(
        "429-retry-after-http-date",
        scenario={"rate_limited_calls": 1, "retry_after": "Thu, 01 Jan 1970 00:00:00 GMT"},
        api_calls=2,
        logged="HTTP 429",
    ),
    p(
        "5xx-burst-recovers",
        scenario={"server_errors": 3, "server_error_status": 502},
        api_calls=4,
        logged="retry 3 of 3",
    ),
    p(
        "5xx-burst-exhausts-retries",
        scenario={"server_errors": 9},
        action="url",
        error=WavyTransientError,
        message="failed 4 times, last: HTTP 503",
        api_calls=4,
    ),
    p(
        "slow-answer-times-out",
        scenario={"api_delay": 3.0},
        conn={"extra": {"timeout": 0.5, "max_retries": 1}},
        action="url",
        error=WavyTransientError,
        message="no answer from http://127.0.0.1",
        api_calls=2,
    ),
    p(
        "one-slow-answer-then-ok",
        scenario={"api_delay": 3.0, "slow_calls": 1},
        conn={"extra": {"timeout": 0.5}},
        api_calls=2,
        logged="within 0.5s",
    ),
    p(
        "slow-file-times-out",
        scenario={"cdn_delay": 3.0},
        conn={"extra": {"timeout": 0.5, "max_retries": 0}},
        error=WavyTransientError,
        message="no answer from http://127.0.0.1",
    ),
    p(
        "truncated-body",
        scenario={"rows": 20000, "truncate_at": 50000},
        error=WavyDownloadError,
        message="cut short: the file host closed the connection after 50,000 of",
        transports=("requests",),
    ),
    p(
        "stalled-body-times-out",
        scenario={"rows": 20000, "truncate_at": 50000, "truncate_stall": 3.0},
        conn={"extra": {"timeout": 0.5, "max_retries": 0}},
        error=WavyDownloadError,
        # A stall is a timeout, not a short body, even though fewer bytes came than announced.
        message=r"^The download of http://127\.0\.0\.1:\d+/\S+ failed after at least [\d,]+ of [\d,]+ bytes: "
        r"no answer from the file host within 0\.5s\. Nothing was kept; run the task again \(or raise the "
        r"wavy connection's timeout extra",
        min_seconds=0.5,
        transports=("requests",),
    ),
    p(
        "cross-origin-redirect-refused",
        scenario={"redirect": "api-cross-origin"},
        action="url",
        error=WavyRedirectError,
        message="never sent to another origin",
    ),
    p("same-origin-redirect-followed", scenario={"redirect": "api-same-origin"}),
    p("file-redirect-followed-without-token", scenario={"redirect": "file"}),
    p(
        "cdn-404-not-retried",
        scenario={"cdn_not_found_calls": 1, "cdn_status": 404},
        error=WavyDownloadError,
        message="HTTP 404",
    ),
    p(
        "cdn-403-not-retried",
        scenario={"cdn_not_found_calls": 1, "cdn_status": 403},
        error=WavyDownloadError,
        message="may have expired",
    ),
    p("cdn-503-retried", scenario={"cdn_not_found_calls": 1, "cdn_status": 503}, logged="HTTP 503"),
    p(
        "wrong-token",
        conn={"password": "not-the-token"},
        action="url",
        error=WavyAuthenticationError,
        message="Check its Login",
    ),
    p(
        "missing-customer-id",
        conn={"extra": {"customer_id": ""}},
        action="url",
        error=WavyConfigurationError,
        message="extra 'customer_id' on connection 'wavy_default'",
        api_calls=0,
    ),
    p(
        "incomplete-connection",
        conn={"password": ""},
        action="url",
        error=WavyConfigurationError,
        message="has no Password",
        api_calls=0,
    ),
]


def run(transport: str, case: Case) -> Any:
    if case.action == "url":
        return ask(transport)
    if case.action == "poll":
        return [ask(transport) for _ in range(case.calls)]
    file_url = ask(transport)
    assert file_url is not None
    return fetch_file(transport, file_url)


def check_result(transport: str, case: Case, result: Any, sandbox: WavySandbox) -> None:
    if case.action == "poll":
        assert result[:-1] == [None] * (case.calls - 1)
        assert isinstance(result[-1], str)
        assert result[-1].startswith(sandbox.cdn_url)
    elif case.action == "file":
        expected = sandbox.expected_bytes(SANDBOX_CUSTOMER)
        if transport == "requests":
            assert result == expected, "the bytes are exactly those served"
        else:
            assert result is (Scenario(**case.scenario).rows > 0), "a data row, or a header only"


@pytest.mark.parametrize("transport", TRANSPORTS)
@pytest.mark.parametrize("case", CASES)
def test_transport_contract(
    case: Case,
    transport: str,
    sandbox: WavySandbox,
    monkeypatch: pytest.MonkeyPatch,
    all_logs: Callable[[], str],
) -> None:
    if transport not in case.transports:
        pytest.skip(f"the {transport} hook reads only the start of a file")
    sandbox.scenario = Scenario(**case.scenario)
    set_conn(monkeypatch, sandbox.connection_json(), **case.conn)

    started = time.monotonic()
    if case.error is not None:
        with pytest.raises(case.error, match=case.message) as info:
            run(transport, case)
        assert SANDBOX_TOKEN not in str(info.value)
        assert "Traceback" not in str(info.value)
    else:
        check_result(transport, case, run(transport, case), sandbox)
    elapsed = time.monotonic() - started

    if case.api_calls is not None:
        assert sandbox.api_calls == case.api_calls
    assert elapsed >= case.min_seconds
    assert not sandbox.cdn_saw_credentials, "the token must never reach the file host"
    logs = all_logs()
    assert SANDBOX_TOKEN not in logs
    if case.logged:
        assert case.logged in logs


@pytest.mark.parametrize("transport", TRANSPORTS)
def test_arguments_override_connection_ids(transport: str, sandbox: WavySandbox) -> None:
    url = ask(transport, customer_id="77", sub_account_id="5")
    assert url is not None
    api_requests = [r for r in sandbox.requests if r.origin == "api"]
    assert api_requests[-1].query == {"customerId": "77", "subAccountId": "5"}
    assert api_requests[-1].headers["username"] == SANDBOX_USER
    if transport == "requests":
        assert b"".join(WavyHook().iter_file_chunks(url)) == sandbox.expected_bytes("77", "5")


@pytest.mark.parametrize("transport", TRANSPORTS)
def test_sub_account_left_out_when_not_given(transport: str, sandbox: WavySandbox) -> None:
    ask(transport)
    assert [r.query for r in sandbox.requests if r.origin == "api"] == [{"customerId": SANDBOX_CUSTOMER}]


@pytest.mark.parametrize("transport", TRANSPORTS)
def test_unreachable_host_is_transient_and_clear(
    transport: str, sandbox: WavySandbox, monkeypatch: pytest.MonkeyPatch
) -> None:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        free_port = sock.getsockname()[1]
    set_conn(
        monkeypatch, sandbox.connection_json(), host=f"http://127.0.0.1:{free_port}", extra={"max_retries": 1}
    )
    with pytest.raises(
        WavyTransientError, match=r"cannot connect to http://127\.0\.0\.1:\d+: Connection refused"
    ) as info:
        ask(transport)
    for internal in ("urllib3", "HTTPConnectionPool", "httpx", "Traceback"):
        assert internal not in str(info.value)


@pytest.mark.parametrize("transport", TRANSPORTS)
def test_tls_failure_is_fatal_and_says_so(
    transport: str, sandbox: WavySandbox, monkeypatch: pytest.MonkeyPatch
) -> None:
    """https:// to a plain-HTTP server fails the TLS handshake: a configuration error, not retried."""
    set_conn(
        monkeypatch,
        sandbox.connection_json(),
        host=f"https://127.0.0.1:{sandbox.port}",
        extra={"max_retries": 3},
    )
    started = time.monotonic()
    with pytest.raises(WavyConfigurationError, match=r"^TLS with https://127\.0\.0\.1:\d+ failed") as info:
        ask(transport, backoff_base=1.0)
    # No backoff (a retry would pause at least 0.5 s): waiting does not fix TLS. httpx's run includes an
    # event loop's start and the shared client's TLS context.
    assert time.monotonic() - started < {"requests": 1.0, "httpx": 2.0}[transport]
    assert "HTTPSConnectionPool" not in str(info.value)


def test_plain_http_to_remote_host_warns(
    monkeypatch: pytest.MonkeyPatch, all_logs: Callable[[], str]
) -> None:
    monkeypatch.setenv(
        "AIRFLOW_CONN_WAVY_DEFAULT",
        json.dumps(
            {"conn_type": "wavy", "host": "http://api.example.invalid", "login": "u", "password": "p"}
        ),
    )
    assert WavyHook().settings.base_url == "http://api.example.invalid"
    warned = all_logs().count("travels unencrypted")
    assert warned
    assert asyncio.run(WavyAsyncHook().get_settings()).base_url == "http://api.example.invalid"
    assert all_logs().count("travels unencrypted") > warned
