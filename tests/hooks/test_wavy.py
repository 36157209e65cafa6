"""WavyHook against the sandbox over real loopback sockets: no Airflow database, no mocked HTTP."""

from __future__ import annotations

import http.server
import json
import socket
import subprocess
import sys
import threading
import time
from dataclasses import dataclass, field
from typing import TYPE_CHECKING, Any, ClassVar

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
from airflow_provider_wavy.sandbox import Scenario, WavySandbox
from tests.conftest import REPO_ROOT, SANDBOX_CUSTOMER, SANDBOX_TOKEN, SANDBOX_USER, set_conn

if TYPE_CHECKING:
    from collections.abc import Callable


@dataclass
class Case:
    scenario: dict[str, Any] = field(default_factory=dict)
    extra: dict[str, Any] = field(default_factory=dict)
    password: str | None = None
    action: str = "download"
    calls: int = 1
    error: type[Exception] | None = None
    message: str = ""
    api_calls: int | None = None
    min_seconds: float = 0.0
    logged: str = ""


def p(case_id: str, **kwargs: Any) -> Any:
    return pytest.param(Case(**kwargs), id=case_id)


SCENARIOS = [
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
        "ready-after-2-missing",
        scenario={"ready_after": 2, "pending_style": "missing"},
        action="poll",
        calls=3,
    ),
    p("ready-after-2-null", scenario={"ready_after": 2, "pending_style": "null"}, action="poll", calls=3),
    p("ready-after-2-empty", scenario={"ready_after": 2, "pending_style": "empty"}, action="poll", calls=3),
    p(
        "ready-after-2-lists-shape",
        scenario={"ready_after": 2, "pending_style": "data"},
        action="poll",
        calls=3,
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
        extra={"timeout": 0.5, "max_retries": 1},
        action="url",
        error=WavyTransientError,
        message="no answer from http://127.0.0.1",
        api_calls=2,
    ),
    p(
        "one-slow-answer-then-ok",
        scenario={"api_delay": 3.0, "slow_calls": 1},
        extra={"timeout": 0.5},
        api_calls=2,
        logged="within 0.5s",
    ),
    p(
        "slow-file-times-out",
        scenario={"cdn_delay": 3.0},
        extra={"timeout": 0.5, "max_retries": 0},
        error=WavyTransientError,
        message="no answer from http://127.0.0.1",
    ),
    p(
        "truncated-body",
        scenario={"rows": 20000, "truncate_at": 50000},
        error=WavyDownloadError,
        message="cut short: the file host closed the connection after 50,000 of",
    ),
    p(
        "stalled-body-times-out",
        scenario={"rows": 20000, "truncate_at": 50000, "truncate_stall": 3.0},
        extra={"timeout": 0.5, "max_retries": 0},
        error=WavyDownloadError,
        # A stall is a timeout, not a short body, even though fewer bytes came than announced.
        message=r"^The download of http://127\.0\.0\.1:\d+/\S+ failed after at least [\d,]+ of [\d,]+ bytes: "
        r"no answer from the file host within 0\.5s\. Nothing was kept; run the task again \(or raise the "
        r"wavy connection's timeout extra",
        min_seconds=0.5,
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
        password="not-the-token",
        action="url",
        error=WavyAuthenticationError,
        message="Check its Login",
    ),
    p(
        "missing-customer-id",
        extra={"customer_id": ""},
        action="url",
        error=WavyConfigurationError,
        message="extra 'customer_id' on connection 'wavy_default'",
        api_calls=0,
    ),
]


@pytest.mark.parametrize("case", SCENARIOS)
def test_hook_against_sandbox(
    case: Case, sandbox: WavySandbox, monkeypatch: pytest.MonkeyPatch, all_logs: Callable[[], str]
) -> None:
    sandbox.scenario = Scenario(**case.scenario)
    conn_changes: dict[str, Any] = {"extra": case.extra}
    if case.password is not None:
        conn_changes["password"] = case.password
    set_conn(monkeypatch, sandbox.connection_json(), **conn_changes)
    hook = WavyHook(backoff_base=0.05)

    started = time.monotonic()
    if case.error is not None:
        with pytest.raises(case.error, match=case.message) as info:
            run(hook, case)
        assert SANDBOX_TOKEN not in str(info.value)
        assert "Traceback" not in str(info.value)
    else:
        result = run(hook, case)
        if case.action == "download":
            assert result == sandbox.expected_bytes(SANDBOX_CUSTOMER), "the bytes are exactly those served"
        elif case.action == "poll":
            assert result[:-1] == [None] * (case.calls - 1)
            assert isinstance(result[-1], str)
            assert result[-1].startswith(sandbox.cdn_url)
    elapsed = time.monotonic() - started

    if case.api_calls is not None:
        assert sandbox.api_calls == case.api_calls
    assert elapsed >= case.min_seconds
    assert not sandbox.cdn_saw_credentials, "the token must never reach the file host"
    logs = all_logs()
    assert SANDBOX_TOKEN not in logs
    if case.logged:
        assert case.logged in logs


def run(hook: WavyHook, case: Case) -> Any:
    if case.action == "url":
        return hook.get_open_sessions_file_url()
    if case.action == "poll":
        return [hook.get_open_sessions_file_url() for _ in range(case.calls)]
    file_url = hook.get_open_sessions_file_url()
    assert file_url is not None
    return b"".join(hook.iter_file_chunks(file_url, chunk_size=4096))


def test_arguments_override_connection_ids(sandbox: WavySandbox) -> None:
    url = WavyHook().get_open_sessions_file_url(customer_id="77", sub_account_id="5")
    assert url is not None
    api_requests = [r for r in sandbox.requests if r.origin == "api"]
    assert api_requests[-1].query == {"customerId": "77", "subAccountId": "5"}
    assert api_requests[-1].headers["username"] == SANDBOX_USER
    body = b"".join(WavyHook().iter_file_chunks(url))
    assert body == sandbox.expected_bytes("77", "5")


def test_sub_account_left_out_when_not_given(sandbox: WavySandbox) -> None:
    WavyHook().get_open_sessions_file_url()
    assert [r.query for r in sandbox.requests if r.origin == "api"] == [{"customerId": SANDBOX_CUSTOMER}]


def test_download_reports_sizes(sandbox: WavySandbox) -> None:
    sandbox.scenario = Scenario(rows=1000)
    hook = WavyHook()
    url = hook.get_open_sessions_file_url()
    assert url is not None
    with hook.open_file(url) as download:
        size = len(b"".join(download.iter_chunks(1000)))
        assert download.content_length == download.expected_size == size == download.wire_bytes


def test_unreachable_host_is_transient_and_clear(
    sandbox: WavySandbox, monkeypatch: pytest.MonkeyPatch
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
        WavyHook(backoff_base=0.01).get_open_sessions_file_url()
    assert "urllib3" not in str(info.value)
    assert "HTTPConnectionPool" not in str(info.value)


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
    assert "travels unencrypted" in all_logs()


def test_token_registered_with_secrets_masker(sandbox: WavySandbox) -> None:
    from airflow.providers.common.compat.sdk import redact

    WavyHook().settings  # noqa: B018 - reading the connection registers the token
    assert SANDBOX_TOKEN not in str(redact(f"token is {SANDBOX_TOKEN}"))


def test_incomplete_connection_is_a_configuration_error(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("AIRFLOW_CONN_WAVY_DEFAULT", json.dumps({"conn_type": "wavy", "login": "u"}))
    with pytest.raises(WavyConfigurationError, match="no Password"):
        WavyHook().get_open_sessions_file_url(customer_id="1")


@pytest.mark.parametrize(
    ("changes", "ok", "message"),
    [
        pytest.param({}, True, "Connected to http://127.0.0.1", id="ok"),
        pytest.param({"password": "wrong"}, False, "rejected the credentials", id="bad-token"),
        pytest.param({"extra": {"customer_id": ""}}, True, "checked with customerId=0", id="no-customer"),
        pytest.param({"host": "http://127.0.0.1:9"}, False, "cannot connect", id="unreachable"),
        pytest.param({"host": "ftp://x"}, False, "not an absolute http(s) URL", id="bad-host"),
    ],
)
def test_test_connection(
    changes: dict[str, Any], ok: bool, message: str, sandbox: WavySandbox, monkeypatch: pytest.MonkeyPatch
) -> None:
    set_conn(monkeypatch, sandbox.connection_json(), **changes)
    started = time.monotonic()
    success, text = WavyHook().test_connection()
    assert (success, message in text) == (ok, True), text
    assert SANDBOX_TOKEN not in text
    assert time.monotonic() - started < 5, "the Test button answers quickly: no retries"


def test_test_connection_when_server_errors(sandbox: WavySandbox) -> None:
    sandbox.scenario = Scenario(server_errors=5)
    success, text = WavyHook().test_connection()
    assert not success
    assert "HTTP 503" in text
    assert sandbox.api_calls == 1


def test_connection_form_metadata() -> None:
    behaviour = WavyHook.get_ui_field_behaviour()
    assert set(behaviour["hidden_fields"]) == {"schema", "port", "extra"}
    assert behaviour["relabeling"]["password"] == "Authentication token"


CONNECTION_FORMS = [
    pytest.param("uri", id="env-uri"),
    pytest.param("json", id="env-json"),
    pytest.param("secrets-backend", id="local-filesystem-secrets-backend"),
]


@pytest.mark.parametrize("form", CONNECTION_FORMS)
def test_connection_forms_in_a_fresh_interpreter(form: str, sandbox: WavySandbox, tmp_path: Any) -> None:
    """Each way users write connections works, in a process that never saw the test's monkeypatching."""
    env = {k: v for k, v in __import__("os").environ.items() if not k.startswith("AIRFLOW_CONN_")}
    if form == "uri":
        env["AIRFLOW_CONN_WAVY_DEFAULT"] = sandbox.connection_uri()
    elif form == "json":
        env["AIRFLOW_CONN_WAVY_DEFAULT"] = sandbox.connection_json()
    else:
        secrets = tmp_path / "connections.json"
        secrets.write_text(json.dumps({"wavy_default": json.loads(sandbox.connection_json())}))
        env["AIRFLOW__SECRETS__BACKEND"] = "airflow.secrets.local_filesystem.LocalFilesystemBackend"
        env["AIRFLOW__SECRETS__BACKEND_KWARGS"] = json.dumps({"connections_file_path": str(secrets)})
    code = (
        "from airflow_provider_wavy.hooks.wavy import WavyHook\n"
        "hook = WavyHook()\n"
        "url = hook.get_open_sessions_file_url()\n"
        "print('ROWS', sum(c.count(b'\\n') for c in hook.iter_file_chunks(url)) - 1)\n"
    )
    result = subprocess.run(
        [sys.executable, "-c", code],
        check=False,
        env=env,
        cwd=REPO_ROOT,
        capture_output=True,
        text=True,
        timeout=120,
    )
    assert result.returncode == 0, result.stderr[-3000:]
    assert "ROWS 25" in result.stdout
    assert SANDBOX_TOKEN not in result.stdout + result.stderr
    assert not sandbox.cdn_saw_credentials


def test_tls_failure_is_fatal_and_says_so(sandbox: WavySandbox, monkeypatch: pytest.MonkeyPatch) -> None:
    """https:// to a plain-HTTP server fails the TLS handshake: a configuration error, not retried."""
    set_conn(
        monkeypatch,
        sandbox.connection_json(),
        host=f"https://127.0.0.1:{sandbox.port}",
        extra={"max_retries": 3},
    )
    started = time.monotonic()
    with pytest.raises(WavyConfigurationError, match=r"TLS with https://127\.0\.0\.1:\d+ failed") as info:
        WavyHook(backoff_base=1.0).get_open_sessions_file_url()
    assert time.monotonic() - started < 1.0, "no backoff: waiting does not fix TLS"
    assert "HTTPSConnectionPool" not in str(info.value)


def test_test_connection_probe_refused_customer_means_credentials_ok(
    sandbox: WavySandbox, monkeypatch: pytest.MonkeyPatch
) -> None:
    set_conn(monkeypatch, sandbox.connection_json(), extra={"customer_id": ""})
    sandbox.scenario = Scenario(api_status=404)
    success, text = WavyHook().test_connection()
    assert success, text
    assert "credentials accepted" in text
    assert "set the customer_id extra" in text


class _CookieSetter(http.server.BaseHTTPRequestHandler):
    cookies_seen: ClassVar[list[str | None]] = []

    def do_GET(self) -> None:
        type(self).cookies_seen.append(self.headers.get("Cookie"))
        body = b'{"file_url": null}'
        self.send_response(200)
        self.send_header("Set-Cookie", "sid=abc; Path=/")
        self.send_header("Content-Type", "application/json")
        self.send_header("Content-Length", str(len(body)))
        self.end_headers()
        self.wfile.write(body)

    def log_message(self, format: str, *args: Any) -> None:
        """Stay quiet."""


def test_session_refuses_cookies(monkeypatch: pytest.MonkeyPatch) -> None:
    """Nothing an API answer sets may ride along on later requests (to the API or the file host)."""
    server = http.server.ThreadingHTTPServer(("127.0.0.1", 0), _CookieSetter)
    thread = threading.Thread(target=server.serve_forever, kwargs={"poll_interval": 0.05}, daemon=True)
    thread.start()
    try:
        conn = {"conn_type": "wavy", "host": f"http://127.0.0.1:{server.server_port}", "login": "u"}
        monkeypatch.setenv("AIRFLOW_CONN_WAVY_DEFAULT", json.dumps({**conn, "password": "p"}))
        hook = WavyHook()
        assert hook.get_open_sessions_file_url(customer_id="1") is None
        assert hook.get_open_sessions_file_url(customer_id="1") is None
    finally:
        server.shutdown()
        server.server_close()
    assert _CookieSetter.cookies_seen == [None, None]
    assert not hook.session.cookies


READINTO_TRANSFERS = [
    pytest.param({}, True, id="identity-read-in-place"),
    pytest.param({"chunked": True}, True, id="chunked-read-in-place"),
    pytest.param({"gzip": True}, False, id="gzip-decoded-by-urllib3"),
    pytest.param({"gzip": True, "chunked": True}, False, id="gzip-chunked-decoded-by-urllib3"),
]


@pytest.mark.parametrize(("transfer", "in_place"), READINTO_TRANSFERS)
def test_readinto_fills_buffers_with_the_decoded_file(
    sandbox: WavySandbox, transfer: dict[str, Any], in_place: bool
) -> None:
    sandbox.scenario = Scenario(rows=30_000, **transfer)
    hook = WavyHook()
    url = hook.get_open_sessions_file_url()
    assert url is not None
    buffer = bytearray(64 * 1024)
    received = bytearray()
    with hook.open_file(url) as download:
        assert (download._direct is not None) is in_place
        while size := download.readinto(buffer):
            # Only the last read may come short: the others fill the buffer.
            assert size == len(buffer) or len(received) + size == len(sandbox.expected_bytes())
            received += buffer[:size]
        assert download.readinto(buffer) == 0
        if "gzip" not in transfer and "chunked" not in transfer:
            assert download.wire_bytes == download.content_length == len(received)
    assert bytes(received) == sandbox.expected_bytes()


@pytest.mark.parametrize(
    ("transfer", "message"),
    [
        pytest.param({}, r"closed the connection after 50,000 of [\d,]+ bytes\.", id="identity"),
        pytest.param({"gzip": True}, r"closed the connection after 50,000 of [\d,]+ bytes\.", id="gzip"),
        pytest.param(
            {"chunked": True},
            r"closed the connection after [\d,]+ bytes, before the end of its chunked answer\. Nothing",
            id="chunked",
        ),
    ],
)
def test_readinto_reports_a_cut_download_clearly(
    sandbox: WavySandbox, all_logs: Any, transfer: dict[str, Any], message: str
) -> None:
    sandbox.scenario = Scenario(rows=30_000, truncate_at=50_000, **transfer)
    hook = WavyHook()
    url = hook.get_open_sessions_file_url()
    assert url is not None
    buffer = bytearray(16 * 1024)

    def read_all() -> None:
        with hook.open_file(url) as download:
            while download.readinto(buffer):
                pass

    with pytest.raises(WavyDownloadError, match=message) as info:
        read_all()
    # Nothing of the library's own exception is chained into the traceback Airflow logs.
    assert info.value.__cause__ is None
    assert info.value.__context__ is None or info.value.__suppress_context__
    for internal in ("urllib3", "http.client", "IncompleteRead(", "Traceback"):
        assert internal not in str(info.value)
    assert SANDBOX_TOKEN not in str(info.value)
