from __future__ import annotations

from datetime import UTC, datetime
from typing import Any

import pytest

from airflow_provider_wavy.exceptions import (
    WavyAuthenticationError,
    WavyConfigurationError,
    WavyDownloadError,
    WavyRedirectError,
    WavyRequestError,
    WavyResponseError,
    WavyTransientError,
)
from airflow_provider_wavy.protocol import (
    DEFAULT_BASE_URL,
    Done,
    FileCall,
    FollowRedirect,
    ReadBody,
    Retry,
    RetryPolicy,
    SessionCall,
    WavySettings,
    check_received_length,
    content_length,
    describe_network_error,
    describe_url,
    error_text,
    is_transient_status,
    normalize_base_url,
    parse_retry_after,
    parse_session_body,
)

TOKEN = "s3cr3t-token-value"


def make_settings(**overrides: Any) -> WavySettings:
    fields: dict[str, Any] = {
        "conn_id": "wavy_default",
        "host": "https://api.example.com",
        "port": None,
        "login": "user",
        "password": TOKEN,
        "extra": {"customer_id": "42"},
    }
    fields.update(overrides)
    return WavySettings.from_connection(**fields)


@pytest.mark.parametrize(
    ("host", "port", "expected"),
    [
        pytest.param(None, None, DEFAULT_BASE_URL, id="empty-is-public-api"),
        pytest.param("", None, DEFAULT_BASE_URL, id="blank-is-public-api"),
        pytest.param(
            "api-messaging.movile.com", None, "https://api-messaging.movile.com", id="bare-host-https"
        ),
        pytest.param("http://127.0.0.1:8080", None, "http://127.0.0.1:8080", id="scheme-honoured"),
        pytest.param("http://127.0.0.1", 8080, "http://127.0.0.1:8080", id="port-field-added"),
        pytest.param("http://127.0.0.1:8080", 8080, "http://127.0.0.1:8080", id="port-agrees-with-host"),
        # The Port field exists for Airflow 3's Test button (docs/troubleshooting-ui.md): the scheme's
        # default port names the same URL, so the base URL (and every message) stays the canonical one.
        pytest.param("api-messaging.wavy.global", 443, "https://api-messaging.wavy.global", id="https-443"),
        pytest.param(None, 443, DEFAULT_BASE_URL, id="default-host-443"),
        pytest.param("http://127.0.0.1", 80, "http://127.0.0.1", id="http-80"),
        pytest.param("https://example.com:443/v", 443, "https://example.com:443/v", id="explicit-443-kept"),
        pytest.param(
            "HTTPS://Example.com/prefix/", None, "https://example.com/prefix", id="path-kept-no-slash"
        ),
    ],
)
def test_normalize_base_url(host: str | None, port: int | None, expected: str) -> None:
    assert normalize_base_url(host, port) == expected


@pytest.mark.parametrize(
    "host",
    [
        pytest.param("ftp://example.com", id="other-scheme"),
        pytest.param("https://", id="no-host"),
        pytest.param("https://example.com/?a=1", id="query"),
        pytest.param("https://user:pw@example.com", id="credentials-in-host"),
        pytest.param("https://example.com:99999", id="bad-port"),
    ],
)
def test_normalize_base_url_rejects(host: str) -> None:
    with pytest.raises(WavyConfigurationError, match="host"):
        normalize_base_url(host)


@pytest.mark.parametrize(
    ("host", "port"),
    [
        pytest.param("http://127.0.0.1:9", 8080, id="host-port-differs"),
        pytest.param("https://api-messaging.wavy.global:8443", 443, id="default-port-against-explicit"),
    ],
)
def test_normalize_base_url_rejects_a_port_the_host_contradicts(host: str, port: int) -> None:
    """A Port field that disagrees with the host's URL is an error, not silently ignored."""
    with pytest.raises(WavyConfigurationError, match=rf"port {port} .*host.*{host.rsplit(':', 1)[1]}"):
        normalize_base_url(host, port)


def test_settings_from_connection_reads_extras() -> None:
    settings = make_settings(
        extra={"customer_id": " 42 ", "sub_account_id": 7, "timeout": "2.5", "max_retries": "0"}
    )
    assert (settings.customer_id, settings.sub_account_id) == ("42", "7")
    assert settings.timeout == 2.5
    assert settings.max_retries == 0
    assert TOKEN not in repr(settings)


@pytest.mark.parametrize(
    ("overrides", "message"),
    [
        pytest.param({"login": None}, "no Login", id="no-login"),
        pytest.param({"password": ""}, "no Password", id="no-password"),
        pytest.param({"extra": {"timeout": "soon"}}, "'timeout' must be a positive number", id="bad-timeout"),
        pytest.param({"extra": {"timeout": 0}}, "'timeout' must be a positive number", id="zero-timeout"),
        pytest.param(
            {"extra": {"max_retries": "-1"}}, "'max_retries' must be a whole number", id="neg-retries"
        ),
    ],
)
def test_settings_from_connection_rejects(overrides: dict[str, Any], message: str) -> None:
    with pytest.raises(WavyConfigurationError, match=message) as info:
        make_settings(**overrides)
    assert "wavy_default" in str(info.value)


@pytest.mark.parametrize(
    ("host", "in_clear"),
    [
        pytest.param("http://api.example.com", True, id="http-remote"),
        pytest.param("https://api.example.com", False, id="https"),
        pytest.param("http://127.0.0.1:8080", False, id="loopback-v4"),
        pytest.param("http://[::1]:8080", False, id="loopback-v6"),
        pytest.param("http://localhost:8080", False, id="localhost"),
    ],
)
def test_sends_token_in_clear(host: str, in_clear: bool) -> None:
    assert make_settings(host=host).sends_token_in_clear is in_clear


def test_resolve_ids_falls_back_to_extras_then_fails_naming_both_places() -> None:
    settings = make_settings(extra={"customer_id": "42", "sub_account_id": "9"})
    assert settings.resolve_ids(None, None) == ("42", "9")
    assert settings.resolve_ids("7", "") == ("7", "9")
    with pytest.raises(WavyConfigurationError, match="pass customer_id") as info:
        make_settings(extra={}).resolve_ids(None, None)
    assert "extra 'customer_id' on connection 'wavy_default'" in str(info.value)


def test_session_request_matches_documented_contract() -> None:
    call = SessionCall(make_settings(), "42", None)
    assert call.request.url == "https://api.example.com/v1/session"
    assert dict(call.request.params) == {"customerId": "42"}
    assert call.request.headers["UserName"] == "user"
    assert call.request.headers["authenticationToken"] == TOKEN
    assert call.request.headers["Content-Type"] == "application/json"
    assert TOKEN not in repr(call.request)
    with_sub = SessionCall(make_settings(), "42", "3")
    assert with_sub.request.full_url == "https://api.example.com/v1/session?customerId=42&subAccountId=3"


@pytest.mark.parametrize(
    ("body", "expected"),
    [
        pytest.param(b'{"file_url": "https://cdn.example/a/b"}', "https://cdn.example/a/b", id="documented"),
        pytest.param(b'{"file_url": " https://cdn.example/a "}', "https://cdn.example/a", id="trimmed"),
        pytest.param(b"{}", None, id="missing"),
        pytest.param(b'{"file_url": null}', None, id="null"),
        pytest.param(b'{"file_url": ""}', None, id="empty"),
        pytest.param(b'{"success": true, "status": 200}', None, id="lists-shape-without-data"),
        pytest.param(
            b'{"success": true, "data": "https://cdn.example/x"}', "https://cdn.example/x", id="lists-data"
        ),
        pytest.param(b"", None, id="empty-body"),
    ],
)
def test_parse_session_body(body: bytes, expected: str | None) -> None:
    assert parse_session_body(body) == expected


@pytest.mark.parametrize(
    ("body", "message"),
    [
        pytest.param(b"<html>oops</html>", "not JSON", id="html"),
        pytest.param(b"[1, 2]", "JSON array", id="list"),
        pytest.param(b'{"file_url": 12}', "JSON number", id="number"),
        pytest.param(b'{"file_url": "/relative/path"}', "not an absolute http", id="relative"),
        pytest.param(b'{"file_url": "ftp://x/y"}', "not an absolute http", id="ftp"),
    ],
)
def test_parse_session_body_rejects(body: bytes, message: str) -> None:
    with pytest.raises(WavyResponseError, match=message):
        parse_session_body(body)


@pytest.mark.parametrize(
    ("status", "transient"),
    [
        (200, False),
        (400, False),
        (401, False),
        (404, False),
        (420, True),
        (429, True),
        (500, True),
        (504, True),
    ],
)
def test_is_transient_status(status: int, transient: bool) -> None:
    assert is_transient_status(status) is transient


NOW = datetime(2026, 11, 24, 12, 0, 0, tzinfo=UTC)


@pytest.mark.parametrize(
    ("value", "expected"),
    [
        pytest.param("3", 3.0, id="seconds"),
        pytest.param(" 0 ", 0.0, id="zero"),
        pytest.param("-4", 0.0, id="negative-clamped"),
        pytest.param("Tue, 24 Nov 2026 12:00:30 GMT", 30.0, id="http-date"),
        pytest.param("Tue, 24 Nov 2026 11:00:00 GMT", 0.0, id="http-date-past"),
        pytest.param("soon", None, id="garbage"),
        pytest.param("inf", None, id="infinite"),
        pytest.param(None, None, id="absent"),
    ],
)
def test_parse_retry_after(value: str | None, expected: float | None) -> None:
    assert parse_retry_after(value, now=NOW) == expected


def test_retry_policy_backoff_grows_with_jitter_and_caps() -> None:
    policy = RetryPolicy(max_retries=10, backoff_base=1.0, backoff_cap=8.0, retry_after_cap=5.0)
    for number, step in [(1, 1.0), (2, 2.0), (3, 4.0), (4, 8.0), (9, 8.0)]:
        delays = {policy.delay(number) for _ in range(50)}
        assert all(step / 2 <= delay <= step for delay in delays)
        assert len(delays) > 1, "jitter spreads clients that failed together"
    assert policy.delay(1, retry_after=3.0) == 3.0
    assert policy.delay(1, retry_after=300.0) == 5.0


def test_session_call_retries_transient_until_budget_then_raises() -> None:
    call = SessionCall(make_settings(), policy=RetryPolicy(max_retries=2, backoff_base=0.5))
    first = call.on_response(503, {}, b'{"errorMessage": "busy"}')
    assert isinstance(first, Retry)
    assert first.number == 1
    assert "HTTP 503 (busy)" in first.reason
    second = call.on_response(429, {"retry-after": "7"}, b"")
    assert isinstance(second, Retry)
    assert second.delay == 7.0
    with pytest.raises(WavyTransientError, match="failed 3 times, last: no answer") as info:
        call.on_transport_error("no answer within 1s")
    assert "max_retries" in str(info.value)


@pytest.mark.parametrize(
    ("status", "error", "message"),
    [
        pytest.param(401, WavyAuthenticationError, "rejected the credentials", id="401"),
        pytest.param(403, WavyAuthenticationError, "rejected the credentials", id="403"),
        pytest.param(400, WavyRequestError, "customer_id='42'", id="400"),
        pytest.param(404, WavyRequestError, "not found", id="404"),
        pytest.param(405, WavyRequestError, "rejected the open-sessions request", id="405"),
    ],
)
def test_session_call_fatal_statuses(status: int, error: type[Exception], message: str) -> None:
    call = SessionCall(make_settings(), policy=RetryPolicy(max_retries=5))
    body = f'{{"errorCode": {status}, "errorMessage": "nope {TOKEN}"}}'.encode()
    with pytest.raises(error, match=message) as info:
        call.on_response(status, {}, body)
    assert f"HTTP {status}: nope ***" in str(info.value), "the API's reason is kept, an echoed token is not"
    assert TOKEN not in str(info.value)


def test_session_call_follows_same_origin_redirect_with_credentials() -> None:
    call = SessionCall(make_settings(), "42")
    outcome = call.on_response(307, {"location": "/v2/session?customerId=42"}, b"")
    assert isinstance(outcome, FollowRedirect)
    assert outcome.request.url == "https://api.example.com/v2/session"
    assert dict(outcome.request.params) == {"customerId": "42"}
    assert outcome.request.headers["authenticationToken"] == TOKEN


@pytest.mark.parametrize(
    "location",
    [
        pytest.param("https://cdn.example.com/v1/session", id="other-host"),
        pytest.param("http://api.example.com/v1/session", id="downgrade-to-http"),
        pytest.param("https://api.example.com:8443/v1/session", id="other-port"),
    ],
)
def test_session_call_refuses_cross_origin_redirect(location: str) -> None:
    call = SessionCall(make_settings(), "42")
    with pytest.raises(WavyRedirectError, match="never sent to another origin"):
        call.on_response(302, {"location": location}, b"")


def test_session_call_stops_redirect_loops() -> None:
    call = SessionCall(make_settings(), "42")
    for _ in range(3):
        assert isinstance(call.on_response(302, {"location": "/again"}, b""), FollowRedirect)
    with pytest.raises(WavyRedirectError, match="more than 3 times"):
        call.on_response(302, {"location": "/again"}, b"")


def test_session_call_done() -> None:
    call = SessionCall(make_settings())
    assert call.on_response(200, {}, b'{"file_url": "https://cdn/x"}') == Done("https://cdn/x")
    assert call.on_response(200, {}, b"{}") == Done(None)


def test_file_call() -> None:
    call = FileCall("https://cdn.example/f?sig=abc", policy=RetryPolicy(max_retries=1))
    assert "authenticationToken" not in call.request.headers
    assert "UserName" not in call.request.headers
    assert isinstance(call.on_response(200, {}), ReadBody)
    assert isinstance(call.on_response(503, {}), Retry)
    with pytest.raises(WavyTransientError):
        call.on_response(503, {})
    with pytest.raises(WavyDownloadError, match="may have expired") as info:
        FileCall("https://cdn.example/f?sig=abc", policy=RetryPolicy()).on_response(404, {}, b"gone")
    assert "sig=abc" not in str(info.value), "signed query strings stay out of messages"


def test_file_call_rejects_non_http_url() -> None:
    with pytest.raises(WavyResponseError, match="not an absolute http"):
        FileCall("file:///etc/passwd", policy=RetryPolicy())


def test_length_helpers() -> None:
    assert content_length({"content-length": "10"}) == 10
    assert content_length({"content-length": "10", "transfer-encoding": "chunked"}) is None
    assert content_length({}) is None
    check_received_length(10, 10, "u")
    check_received_length(10, None, "u")
    with pytest.raises(
        WavyDownloadError, match="cut short: the file host closed the connection after 5 of 10 bytes"
    ):
        check_received_length(5, 10, "u")


def test_describe_url_and_error_text() -> None:
    assert describe_url("https://u:p@cdn.example/a/b?X-Sig=1") == "https://cdn.example/a/b"
    assert error_text(b'{"errorMessage": "bad\\n thing"}') == "bad thing"
    assert error_text(b"x" * 1000).endswith("...")
    assert error_text(b"") == "no details in the answer"


@pytest.mark.parametrize(
    ("error", "timed_out", "expected"),
    [
        pytest.param(TimeoutError("read"), True, "no answer from https://h within 2.5s", id="timeout"),
        pytest.param(
            OSError(
                "HTTPConnectionPool(...): Max retries (Caused by NewConnectionError('<x>: [Errno 111] "
                "Connection refused'))"
            ),
            False,
            "cannot connect to https://h: Connection refused",
            id="errno-in-library-text",
        ),
        pytest.param(
            OSError("NameResolutionError(...)"), False, "cannot resolve the host of https://h", id="dns"
        ),
        pytest.param(
            RuntimeError("<object at 0x7f>"), False, "cannot reach https://h: RuntimeError", id="other"
        ),
    ],
)
def test_describe_network_error(error: BaseException, timed_out: bool, expected: str) -> None:
    message = describe_network_error(error, "https://h", 2.5, timed_out=timed_out)
    assert message == expected
    assert "0x" not in message, "no library object reprs"


def test_relative_redirects_resolve_against_the_previous_hop() -> None:
    call = SessionCall(make_settings(), "42")
    first = call.on_response(302, {"location": "/api/v1/session"}, b"")
    assert isinstance(first, FollowRedirect)
    second = call.on_response(302, {"location": "session2"}, b"")
    assert isinstance(second, FollowRedirect)
    assert second.request.url == "https://api.example.com/api/v1/session2"


# -- hostile JSON bodies: one WavyResponseError (or bounded text), never RecursionError ------------------

_URL_1MB = b"https://cdn.example/" + b"a" * 1_000_000
_DEEP = 100_000


@pytest.mark.parametrize(
    ("body", "message"),
    [
        pytest.param(b"[" * _DEEP + b"]" * _DEEP, "nested more than", id="deep-arrays-1e5"),
        pytest.param(b"[" * 1_000_000, "nested more than", id="deep-open-arrays-1e6"),
        pytest.param(b'{"a":' * _DEEP + b"1" + b"}" * _DEEP, "nested more than", id="deep-objects-1e5"),
        pytest.param(
            b'{"file_url": ' + b"[" * _DEEP + b"]" * _DEEP + b"}", "nested more than", id="deep-file-url"
        ),
        pytest.param(
            b'{"file_url": {"href": "https://x/y"}}', "'file_url' as a JSON object", id="url-object"
        ),
        pytest.param(b'{"data": [["https://x/y"]]}', "'data' as a JSON array", id="data-array"),
        pytest.param(b'{"file_url": ' + b"1" * 5000 + b"}", "digits", id="huge-int"),
        pytest.param(b'{"file_url": ' + b"1" * 1_000_000 + b"}", "digits", id="huge-int-1mb"),
        pytest.param(b'{"file_url": NaN}', "NaN", id="nan"),
        pytest.param(b'{"file_url": -Infinity}', "Infinity", id="infinity"),
        pytest.param(
            b'{"file_url": "https://a.example/x", "file_url": "https://b.example/y"}',
            "'file_url' appears twice",
            id="duplicate-key",
        ),
        pytest.param(b'{"file_url": "https://x/\xff"}', r"not UTF-8.*0xff", id="not-utf8"),
        pytest.param('{"file_url": "https://x/y"}'.encode("utf-16"), "UTF-16", id="utf16-with-bom"),
        pytest.param('{"file_url": "https://x/y"}'.encode("utf-16-le"), "not JSON", id="utf16-no-bom"),
        pytest.param(b"null", "JSON null", id="null"),
        pytest.param(b'"https://cdn.example/a"', "JSON string", id="top-level-string"),
        pytest.param(b"[1, 2]", "JSON array", id="top-level-array"),
        pytest.param(b"42", "JSON number", id="top-level-number"),
        pytest.param(b"true", "JSON true or false", id="top-level-bool"),
        pytest.param(b'{"file_url": "' + _URL_1MB + b'"}', "1,000,020 characters", id="url-1mb"),
        pytest.param(b'{"data": "' + b"x" * 1_000_000 + b'"}', "characters", id="data-1mb-not-url"),
        pytest.param(b'{"file_url": "https://x/' + b"a" * 1_000_000, "not JSON", id="unterminated-1mb"),
        pytest.param(b'{"file_url": "\\' + b'\\"' * 300_000 + b"\\", "not JSON", id="escapes-unterminated"),
    ],
)
def test_parse_session_body_hostile(body: bytes, message: str) -> None:
    with pytest.raises(WavyResponseError, match=message) as caught:
        parse_session_body(body)
    text = str(caught.value)
    assert len(text) < 600, "the message quotes a bounded excerpt"
    assert "Traceback" not in text
    assert "JSONDecodeError" not in text
    assert "RecursionError" not in text


@pytest.mark.parametrize(
    ("body", "expected"),
    [
        pytest.param(b'\xef\xbb\xbf{"file_url": "https://cdn.example/a"}', "https://cdn.example/a", id="bom"),
        pytest.param(
            b'{"file_url": "https://cdn.example/a", "x": [[[1]]]}', "https://cdn.example/a", id="nested-ok"
        ),
        pytest.param(
            b'{"file_url": "https://cdn.example/' + b"a" * 4000 + b'"}',
            "https://cdn.example/" + "a" * 4000,
            id="long-signed-url",
        ),
        pytest.param(
            b'{"file_url": "https://cdn.example/a", "n": 1.5e300}', "https://cdn.example/a", id="float"
        ),
    ],
)
def test_parse_session_body_accepts(body: bytes, expected: str) -> None:
    assert parse_session_body(body) == expected


def test_parse_session_body_deep_nesting_fails_the_same_in_a_deep_call_stack() -> None:
    # The limit is the provider's own, not what is left of the interpreter's recursion budget.
    def nest(levels: int) -> Exception:
        if levels:
            return nest(levels - 1)
        with pytest.raises(WavyResponseError) as caught:
            parse_session_body(b"[" * 40 + b"]" * 40)
        return caught.value

    assert "nested more than" in str(nest(800))


@pytest.mark.parametrize(
    "body",
    [
        pytest.param(b"[" * 4096, id="deep-arrays"),
        pytest.param(b'{"errorMessage": ' * 1000 + b'"x"' + b"}" * 1000, id="deep-objects"),
        pytest.param(b'{"errorMessage": "' + b"y" * 1_000_000 + b'"}', id="huge-message"),
        pytest.param(b'{"errorMessage": ' + b"9" * 5000 + b"}", id="huge-int"),
        pytest.param(b'{"errorMessage": NaN}', id="nan"),
        pytest.param(b"\xff\xfe\x00\x01" * 2000, id="binary"),
        pytest.param('{"errorMessage": "bad"}'.encode("utf-16"), id="utf16"),
        pytest.param(b"null", id="null"),
        pytest.param(b'["errorMessage"]', id="array"),
    ],
)
def test_error_text_of_hostile_bodies_is_bounded_text(body: bytes) -> None:
    text = error_text(body, secret=TOKEN)
    assert isinstance(text, str)
    assert 0 < len(text) <= 300


def test_error_text_reads_a_duplicate_free_error_and_hides_the_token() -> None:
    body = b'{"errorMessage": "no user for token ' + TOKEN.encode() + b'", "extra": [[[]]]}'
    assert error_text(body, secret=TOKEN) == "no user for token ***"
