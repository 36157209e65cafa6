"""The sandbox over real loopback sockets: API origin, CDN origin, scenario knobs, lifecycle and CLI."""

from __future__ import annotations

import csv
import gzip
import hashlib
import http.client
import io
import json
import re
import resource
import shlex
import signal
import subprocess
import sys
import threading
import time
import urllib.request
from dataclasses import dataclass
from pathlib import Path
from typing import TYPE_CHECKING, Any
from urllib.parse import urlsplit

import pytest

from airflow_provider_wavy.sandbox import (
    AUTH_ERROR_MESSAGE,
    Scenario,
    WavySandbox,
    csv_size,
    iter_csv_chunks,
)

if TYPE_CHECKING:
    from collections.abc import Iterator

USER = "sandbox-user"
TOKEN = "sandbox-token-5c1e"
CUSTOMER = "42"
AUTH = {"UserName": USER, "authenticationToken": TOKEN}
FILE_PATH = re.compile(r"^/\d{4}/\d{2}/\d{2}/[0-9a-f-]{36}/[0-9a-f-]{36}$")
REPO_ROOT = Path(__file__).resolve().parents[2]


@dataclass
class Reply:
    """What a client saw: status, lower-cased headers, body and whether the body was complete."""

    status: int
    headers: dict[str, str]
    body: bytes
    complete: bool = True

    def json(self) -> Any:
        """Parse the body as JSON."""
        return json.loads(self.body)


def fetch(
    url: str, headers: dict[str, str] | None = None, method: str = "GET", timeout: float = 10.0
) -> Reply:
    """GET (or another method) one URL on a fresh connection, without following redirects."""
    parts = urlsplit(url)
    conn = http.client.HTTPConnection(parts.hostname or "", parts.port, timeout=timeout)
    try:
        conn.request(method, parts.path + (f"?{parts.query}" if parts.query else ""), headers=headers or {})
        response = conn.getresponse()
        names = {name.lower(): value for name, value in response.getheaders()}
        try:
            return Reply(response.status, names, response.read())
        except http.client.IncompleteRead as error:
            return Reply(response.status, names, error.partial, complete=False)
    finally:
        conn.close()


def session(
    sb: WavySandbox, query: str = f"customerId={CUSTOMER}", headers: dict[str, str] | None = None
) -> Reply:
    """Call /v1/session with the right credentials unless told otherwise."""
    return fetch(f"{sb.base_url}/v1/session?{query}", AUTH if headers is None else headers)


def file_url(sb: WavySandbox, query: str = f"customerId={CUSTOMER}") -> str:
    """Return the file URL of a successful session call."""
    reply = session(sb, query)
    assert reply.status == 200, reply
    url = reply.json()["file_url"]
    assert isinstance(url, str)
    return url


@pytest.fixture(scope="module")
def sb_server() -> Iterator[WavySandbox]:
    with WavySandbox(username=USER, token=TOKEN, customer_id=CUSTOMER) as server:
        yield server


@pytest.fixture
def sb(sb_server: WavySandbox) -> WavySandbox:
    """The module's sandbox, back on the happy path with empty records."""
    sb_server.scenario = Scenario()
    sb_server.reset()
    return sb_server


def use(sb: WavySandbox, **knobs: Any) -> WavySandbox:
    """Switch the sandbox to a scenario."""
    sb.scenario = Scenario(**knobs)
    return sb


# -- API origin --------------------------------------------------------------------------------------------


@pytest.mark.parametrize(
    "headers",
    [
        pytest.param(AUTH, id="documented-case"),
        pytest.param({"username": USER, "AUTHENTICATIONTOKEN": TOKEN}, id="other-case"),
        pytest.param(
            {"userName": USER, "AuthenticationToken": TOKEN, "Content-Type": "application/json"},
            id="doc-variant",
        ),
    ],
)
def test_session_answers_a_cdn_file_url(sb: WavySandbox, headers: dict[str, str]) -> None:
    reply = session(sb, headers=headers)
    assert reply.status == 200
    assert reply.headers["content-type"] == "application/json"
    url = reply.json()["file_url"]
    assert url.startswith(f"{sb.cdn_url}/")
    assert FILE_PATH.match(urlsplit(url).path)
    assert sb.api_calls == 1


@pytest.mark.parametrize(
    "headers",
    [
        pytest.param({"UserName": USER, "authenticationToken": "wrong"}, id="wrong-token"),
        pytest.param({"UserName": "someone", "authenticationToken": TOKEN}, id="wrong-user"),
        pytest.param({"UserName": USER}, id="no-token"),
        pytest.param({}, id="no-credentials"),
    ],
)
def test_bad_credentials_get_wavys_401(sb: WavySandbox, headers: dict[str, str]) -> None:
    reply = session(sb, headers=headers)
    assert reply.status == 401
    assert reply.json() == {"errorCode": 401, "errorMessage": AUTH_ERROR_MESSAGE}


@pytest.mark.parametrize("query", [pytest.param("", id="absent"), pytest.param("customerId=", id="empty")])
def test_missing_customer_id_is_a_400(sb: WavySandbox, query: str) -> None:
    reply = session(sb, query)
    assert reply.status == 400
    body = reply.json()
    assert body["errorCode"] == 400
    assert "customerId" in body["errorMessage"]


def test_sub_account_gives_another_file(sb: WavySandbox) -> None:
    plain = fetch(file_url(sb)).body
    sub = fetch(file_url(sb, f"customerId={CUSTOMER}&subAccountId=7")).body
    assert plain == sb.expected_bytes()
    assert sub == sb.expected_bytes(sub_account_id="7")
    assert plain != sub


@pytest.mark.parametrize(
    ("method", "path", "status"),
    [
        pytest.param("GET", "/v1/sessions", 404, id="unknown-path"),
        pytest.param("GET", "/", 404, id="root"),
        pytest.param("POST", "/v1/session?customerId=42", 405, id="post"),
    ],
)
def test_other_requests_get_json_errors(sb: WavySandbox, method: str, path: str, status: int) -> None:
    reply = fetch(f"{sb.base_url}{path}", AUTH, method=method)
    assert reply.status == status
    assert reply.json()["errorCode"] == status


@pytest.mark.parametrize(
    ("style", "pending_body"),
    [
        pytest.param("missing", {}, id="missing"),
        pytest.param("null", {"file_url": None}, id="null"),
        pytest.param("empty", {"file_url": ""}, id="empty"),
        pytest.param("data", {"success": True, "status": 200}, id="data"),
    ],
)
def test_ready_after_answers_nothing_yet_first(
    sb: WavySandbox, style: str, pending_body: dict[str, Any]
) -> None:
    use(sb, ready_after=2, pending_style=style)
    for _ in range(2):
        reply = session(sb)
        assert (reply.status, reply.json()) == (200, pending_body)
    assert "file_url" in session(sb).json()
    assert sb.api_calls == 3


@pytest.mark.parametrize("status", [400, 401, 403, 404, 412, 500, 504])
def test_api_status_is_always_answered(sb: WavySandbox, status: int) -> None:
    use(sb, api_status=status)
    for _ in range(2):
        reply = session(sb)
        assert reply.status == status
        assert reply.json()["errorCode"] == status
        assert reply.json()["errorMessage"]


@pytest.mark.parametrize(
    ("status", "retry_after"),
    [
        pytest.param(429, "1", id="429-seconds"),
        pytest.param(420, "Wed, 21 Oct 2015 07:28:00 GMT", id="420-http-date"),
        pytest.param(429, None, id="429-no-header"),
    ],
)
def test_rate_limited_calls(sb: WavySandbox, status: int, retry_after: str | None) -> None:
    use(sb, rate_limit_status=status, rate_limited_calls=2, retry_after=retry_after)
    for _ in range(2):
        reply = session(sb)
        assert reply.status == status
        assert reply.json()["errorCode"] == status
        assert reply.headers.get("retry-after") == retry_after
    assert session(sb).status == 200


def test_phases_follow_each_other(sb: WavySandbox) -> None:
    use(sb, rate_limited_calls=1, server_errors=2, server_error_status=502, ready_after=1)
    statuses = [session(sb) for _ in range(5)]
    assert [reply.status for reply in statuses] == [429, 502, 502, 200, 200]
    assert statuses[3].json() == {}
    assert "file_url" in statuses[4].json()


def test_phases_count_only_valid_calls(sb: WavySandbox) -> None:
    use(sb, server_errors=1)
    assert session(sb, headers={}).status == 401
    assert session(sb).status == 503
    assert session(sb).status == 200
    assert sb.api_calls == 3


def test_replacing_the_scenario_resets_counters(sb: WavySandbox) -> None:
    use(sb, server_errors=1)
    assert session(sb).status == 503
    assert sb.api_calls == 1
    use(sb, server_errors=1)
    assert sb.api_calls == 0
    assert session(sb).status == 503


def test_a_call_abandoned_before_a_scenario_change_consumes_nothing(sb: WavySandbox) -> None:
    """A slow answer its client gave up on must not eat the next scenario's phases when it finally runs."""
    use(sb, api_delay=0.6)
    with pytest.raises(TimeoutError):
        fetch(f"{sb.base_url}/v1/session?customerId={CUSTOMER}", AUTH, timeout=0.1)
    use(sb, ready_after=1)
    time.sleep(0.8)  # the abandoned call wakes up and answers now, under the new scenario
    assert session(sb).json() == {}, "the first call of the new scenario still gets its 'nothing yet'"
    assert "file_url" in session(sb).json()


def test_api_delay_for_the_first_calls(sb: WavySandbox) -> None:
    use(sb, api_delay=0.5, slow_calls=1)
    started = time.monotonic()
    assert session(sb).status == 200
    assert time.monotonic() - started >= 0.5
    started = time.monotonic()
    assert session(sb).status == 200
    assert time.monotonic() - started < 0.4


def test_api_delay_trips_a_client_timeout(sb: WavySandbox) -> None:
    use(sb, api_delay=0.4)
    with pytest.raises(TimeoutError):
        fetch(f"{sb.base_url}/v1/session?customerId=1", AUTH, timeout=0.1)


def test_keep_alive_connection_is_reused(sb: WavySandbox) -> None:
    conn = http.client.HTTPConnection("127.0.0.1", urlsplit(sb.base_url).port, timeout=5)
    try:
        sockets = []
        for _ in range(3):
            conn.request("GET", f"/v1/session?customerId={CUSTOMER}", headers=AUTH)
            response = conn.getresponse()
            assert response.status == 200
            response.read()
            sockets.append(conn.sock)
        assert sockets[0] is not None
        assert all(sock is sockets[0] for sock in sockets)
    finally:
        conn.close()


def test_many_concurrent_keep_alive_clients(sb: WavySandbox) -> None:
    use(sb, rows=3)
    clients = 200
    barrier = threading.Barrier(clients)
    failures: list[str] = []

    def client() -> None:
        conn = http.client.HTTPConnection("127.0.0.1", urlsplit(sb.base_url).port, timeout=20)
        try:
            conn.connect()
            barrier.wait(timeout=20)
            for _ in range(2):
                conn.request("GET", f"/v1/session?customerId={CUSTOMER}", headers=AUTH)
                response = conn.getresponse()
                body = response.read()
                if response.status != 200 or b"file_url" not in body:
                    failures.append(f"{response.status} {body!r}")
        except Exception as error:  # noqa: BLE001 - collected and asserted below
            failures.append(repr(error))
        finally:
            conn.close()

    threads = [threading.Thread(target=client) for _ in range(clients)]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join(30)
    assert failures == []
    assert sb.api_calls == 2 * clients


def test_requests_are_recorded_with_lower_case_headers(sb: WavySandbox) -> None:
    session(sb, f"customerId={CUSTOMER}&subAccountId=9")
    (request,) = sb.requests
    assert (request.origin, request.method, request.path) == ("api", "GET", "/v1/session")
    assert request.query == {"customerId": CUSTOMER, "subAccountId": "9"}
    assert request.headers["username"] == USER
    assert request.headers["authenticationtoken"] == TOKEN
    sb.reset()
    assert sb.requests == []
    assert sb.api_calls == 0


# -- redirects ---------------------------------------------------------------------------------------------


class _NoRedirect(urllib.request.HTTPRedirectHandler):
    def redirect_request(self, *args: Any, **kwargs: Any) -> None:
        return None


def test_cross_origin_redirect_lets_a_naive_client_leak_the_token(sb: WavySandbox) -> None:
    use(sb, redirect="api-cross-origin")
    reply = session(sb)
    assert reply.status == 302
    assert reply.headers["location"] == f"{sb.cdn_url}/redirected/v1/session?customerId={CUSTOMER}"
    assert not sb.cdn_saw_credentials
    # urllib follows redirects and forwards every header: exactly the leak a careful client avoids.
    request = urllib.request.Request(f"{sb.base_url}/v1/session?customerId={CUSTOMER}", headers=AUTH)
    with urllib.request.urlopen(request, timeout=10) as response:
        body = json.loads(response.read())
        assert response.status == 200
    assert body["file_url"].startswith(sb.cdn_url)
    assert sb.cdn_saw_credentials
    landed = [r for r in sb.cdn_requests if r.path == "/redirected/v1/session"]
    assert landed[-1].headers["authenticationtoken"] == TOKEN


def test_cross_origin_redirect_without_credentials_is_clean(sb: WavySandbox) -> None:
    use(sb, redirect="api-cross-origin")
    location = session(sb).headers["location"]
    reply = fetch(location)
    assert reply.status == 200
    assert fetch(reply.json()["file_url"]).body == sb.expected_bytes()
    assert not sb.cdn_saw_credentials


def test_same_origin_redirect(sb: WavySandbox) -> None:
    use(sb, redirect="api-same-origin", ready_after=1)
    reply = session(sb)
    assert reply.status == 307
    location = reply.headers["location"]
    assert location == f"{sb.base_url}/v2/session?customerId={CUSTOMER}"
    assert fetch(location).status == 401
    assert fetch(location, AUTH).json() == {}
    assert fetch(location, AUTH).json()["file_url"].startswith(sb.cdn_url)
    assert sb.api_calls == 1


def test_file_redirect(sb: WavySandbox) -> None:
    use(sb, redirect="file", rows=4)
    url = file_url(sb)
    assert urlsplit(url).path.startswith("/r/")
    reply = fetch(url)
    assert reply.status == 302
    target = reply.headers["location"]
    assert target.startswith(sb.cdn_url)
    assert FILE_PATH.match(urlsplit(target).path)
    assert fetch(target).body == sb.expected_bytes()
    with urllib.request.urlopen(url, timeout=10) as response:
        assert response.read() == sb.expected_bytes()


# -- CDN origin --------------------------------------------------------------------------------------------


def test_file_is_the_expected_csv(sb: WavySandbox) -> None:
    use(sb, rows=10)
    reply = fetch(file_url(sb))
    assert reply.status == 200
    assert reply.headers["content-type"].startswith("text/csv")
    assert int(reply.headers["content-length"]) == len(reply.body)
    assert reply.body == sb.expected_bytes() == b"".join(iter_csv_chunks(CUSTOMER, None, sb.scenario))
    rows = list(csv.reader(io.StringIO(reply.body.decode()), delimiter=";"))
    assert rows[0] == ["source", "session_created_at"]
    assert len(rows) == 11
    for phone, created in rows[1:]:
        assert re.fullmatch(r"55\d{11}", phone)
        assert re.fullmatch(r"\d{4}-\d{2}-\d{2}T\d{2}:\d{2}:\d{2}Z", created)
    assert sb.cdn_calls == 1


def test_zero_rows_is_the_header_only(sb: WavySandbox) -> None:
    use(sb, rows=0)
    assert fetch(file_url(sb)).body == b"source;session_created_at\n"


def test_file_is_deterministic_across_sandboxes(sb: WavySandbox) -> None:
    use(sb, rows=5000)
    first = fetch(file_url(sb)).body
    with WavySandbox(username=USER, token=TOKEN, scenario=Scenario(rows=5000)) as other:
        url = file_url(other)
        assert url != file_url(sb)
        assert fetch(url).body == first


def test_head_gives_the_headers_only(sb: WavySandbox) -> None:
    use(sb, rows=10)
    reply = fetch(file_url(sb), method="HEAD")
    assert reply.status == 200
    assert int(reply.headers["content-length"]) == len(sb.expected_bytes())
    assert reply.body == b""


@pytest.mark.parametrize(
    "url_path",
    [pytest.param("/2026/01/01/x/y", id="unknown-file"), pytest.param("/r/nope", id="unknown-redirect")],
)
def test_unknown_files_are_cdn_404s(sb: WavySandbox, url_path: str) -> None:
    reply = fetch(f"{sb.cdn_url}{url_path}")
    assert reply.status == 404
    assert b"<Code>NoSuchKey</Code>" in reply.body


@pytest.mark.parametrize(
    ("status", "code"),
    [pytest.param(403, b"AccessDenied", id="403"), pytest.param(404, b"NoSuchKey", id="404")],
)
def test_cdn_not_in_sync_yet(sb: WavySandbox, status: int, code: bytes) -> None:
    use(sb, cdn_not_found_calls=2, cdn_status=status)
    url = file_url(sb)
    for _ in range(2):
        reply = fetch(url)
        assert reply.status == status
        assert code in reply.body
    assert fetch(url).body == sb.expected_bytes()
    assert sb.cdn_calls == 3


def test_cdn_delay_for_the_first_downloads(sb: WavySandbox) -> None:
    use(sb, cdn_delay=0.5, slow_calls=1)
    url = file_url(sb)
    started = time.monotonic()
    assert fetch(url).status == 200
    assert time.monotonic() - started >= 0.5
    started = time.monotonic()
    assert fetch(url).status == 200
    assert time.monotonic() - started < 0.4


@pytest.mark.parametrize(
    "chunked", [pytest.param(False, id="content-length"), pytest.param(True, id="chunked")]
)
def test_truncated_download(sb: WavySandbox, chunked: bool) -> None:
    use(sb, rows=1000, truncate_at=100, chunked=chunked)
    reply = fetch(file_url(sb))
    assert reply.status == 200
    assert not reply.complete
    assert reply.body == sb.expected_bytes()[:100]
    if not chunked:
        assert int(reply.headers["content-length"]) == len(sb.expected_bytes())


def test_truncated_download_can_stall_first(sb: WavySandbox) -> None:
    """With truncate_stall the first bytes arrive at once, then nothing until the connection closes."""
    use(sb, rows=1000, truncate_at=100, truncate_stall=0.6)
    parts = urlsplit(file_url(sb))
    conn = http.client.HTTPConnection(parts.hostname or "", parts.port, timeout=10)
    try:
        conn.request("GET", parts.path)
        response = conn.getresponse()
        started = time.monotonic()
        assert response.read(100) == sb.expected_bytes()[:100]
        assert time.monotonic() - started < 0.5
        with pytest.raises(http.client.IncompleteRead):
            response.read()
        assert time.monotonic() - started >= 0.55
    finally:
        conn.close()


def test_truncation_past_the_end_changes_nothing(sb: WavySandbox) -> None:
    use(sb, rows=3, truncate_at=10_000)
    reply = fetch(file_url(sb))
    assert reply.complete
    assert reply.body == sb.expected_bytes()


@pytest.mark.parametrize(
    ("file_body", "content_type"),
    [
        pytest.param("html", "text/html", id="html"),
        pytest.param("json-error", "application/json", id="json-error"),
        pytest.param("missing-column", "text/csv", id="missing-column"),
        pytest.param("empty", "text/csv", id="empty"),
    ],
)
def test_file_bodies(sb: WavySandbox, file_body: str, content_type: str) -> None:
    use(sb, file_body=file_body, rows=5)
    reply = fetch(file_url(sb))
    assert reply.status == 200
    assert reply.headers["content-type"].startswith(content_type)
    assert reply.body == sb.expected_bytes()
    assert int(reply.headers["content-length"]) == len(reply.body)
    if file_body == "html":
        assert reply.body.startswith(b"<!DOCTYPE html>")
    elif file_body == "json-error":
        assert set(json.loads(reply.body)) == {"errorCode", "errorMessage"}
    elif file_body == "missing-column":
        rows = list(csv.reader(io.StringIO(reply.body.decode()), delimiter=";"))
        assert rows[0] == ["source"]
        assert len(rows) == 6
    else:
        assert reply.body == b""


@pytest.mark.parametrize(
    ("knobs", "header"),
    [
        pytest.param({"delimiter": ","}, ["source", "session_created_at"], id="comma"),
        pytest.param({"bom": True}, ["source", "session_created_at"], id="bom"),
        pytest.param({"crlf": True}, ["source", "session_created_at"], id="crlf"),
        pytest.param({"phone_column": "origin"}, ["origin", "session_created_at"], id="origin"),
        pytest.param({"final_newline": False}, ["source", "session_created_at"], id="no-final-newline"),
        pytest.param({"quote": True}, ["source", "session_created_at"], id="quoted"),
        pytest.param(
            {"extra_columns": ("channel", "status")},
            ["source", "session_created_at", "channel", "status"],
            id="extras",
        ),
        pytest.param(
            {
                "delimiter": ",",
                "bom": True,
                "crlf": True,
                "quote": True,
                "final_newline": False,
                "extra_columns": ("x",),
            },
            ["source", "session_created_at", "x"],
            id="everything",
        ),
    ],
)
def test_csv_format_knobs(sb: WavySandbox, knobs: dict[str, Any], header: list[str]) -> None:
    use(sb, rows=7, **knobs)
    body = fetch(file_url(sb)).body
    assert body == sb.expected_bytes()
    assert body.startswith(b"\xef\xbb\xbf") is bool(knobs.get("bom"))
    eol = b"\r\n" if knobs.get("crlf") else b"\n"
    assert body.endswith(eol) is knobs.get("final_newline", True)
    assert body.count(eol) == 8 - (0 if knobs.get("final_newline", True) else 1)
    assert (b'"' in body) is bool(knobs.get("quote"))
    text = body.decode("utf-8-sig")
    rows = list(csv.reader(io.StringIO(text, newline=""), delimiter=knobs.get("delimiter", ";")))
    assert rows[0] == header
    assert len(rows) == 8
    assert all(len(row) == len(header) for row in rows)


@pytest.mark.parametrize(
    "chunked", [pytest.param(False, id="content-length"), pytest.param(True, id="chunked")]
)
def test_gzip(sb: WavySandbox, chunked: bool) -> None:
    use(sb, rows=20_000, gzip=True, chunked=chunked)
    reply = fetch(file_url(sb))
    assert reply.headers["content-encoding"] == "gzip"
    assert gzip.decompress(reply.body) == sb.expected_bytes()
    if chunked:
        assert reply.headers["transfer-encoding"] == "chunked"
        assert "content-length" not in reply.headers
    else:
        assert int(reply.headers["content-length"]) == len(reply.body)
        assert len(reply.body) < len(sb.expected_bytes()) // 3


def test_chunked(sb: WavySandbox) -> None:
    use(sb, rows=20_000, chunked=True)
    reply = fetch(file_url(sb))
    assert reply.headers["transfer-encoding"] == "chunked"
    assert "content-length" not in reply.headers
    assert reply.complete
    assert reply.body == sb.expected_bytes()


def test_files_keep_the_content_they_were_issued_with(sb: WavySandbox) -> None:
    use(sb, rows=3)
    url = file_url(sb)
    expected = sb.expected_bytes()
    use(sb, rows=9, chunked=True)
    reply = fetch(url)
    assert reply.body == expected
    assert reply.headers["transfer-encoding"] == "chunked"


@pytest.mark.parametrize(
    ("headers", "leaked"),
    [
        pytest.param({}, False, id="clean"),
        pytest.param({"Accept": "text/csv", "Authorization": "Bearer x"}, False, id="other-headers"),
        pytest.param({"UserName": USER}, True, id="username"),
        pytest.param({"AUTHENTICATIONTOKEN": TOKEN}, True, id="token-upper-case"),
    ],
)
def test_cdn_records_credentials(sb: WavySandbox, headers: dict[str, str], leaked: bool) -> None:
    url = file_url(sb)
    assert fetch(url, headers).status == 200
    assert sb.cdn_saw_credentials is leaked
    sb.reset()
    assert not sb.cdn_saw_credentials


def _reset_peak_rss() -> bool:
    """Reset the kernel's peak-RSS mark of this process (Linux >= 4.0); return whether it worked."""
    try:
        Path("/proc/self/clear_refs").write_text("5")
    except OSError:
        return False
    return True


def _peak_rss_kib() -> int:
    """Return this process's peak RSS in KiB."""
    try:
        for line in Path("/proc/self/status").read_text().splitlines():
            if line.startswith("VmHWM:"):
                return int(line.split()[1])
    except OSError:
        pass
    return resource.getrusage(resource.RUSAGE_SELF).ru_maxrss


def test_large_file_streams_in_flat_memory(sb: WavySandbox) -> None:
    rows = 2_000_000
    use(sb, rows=rows)
    size = csv_size(CUSTOMER, None, sb.scenario)
    assert size > 60_000_000
    url = urlsplit(file_url(sb))
    # Warm up the code paths (and their allocations) before measuring.
    fetch(f"{sb.cdn_url}{url.path}", method="HEAD")
    _reset_peak_rss()
    before = _peak_rss_kib()
    conn = http.client.HTTPConnection(url.hostname or "", url.port, timeout=30)
    digest = hashlib.sha256()
    received = 0
    try:
        conn.request("GET", url.path)
        response = conn.getresponse()
        assert int(response.getheader("Content-Length") or 0) == size
        while chunk := response.read(256 * 1024):
            digest.update(chunk)
            received += len(chunk)
    finally:
        conn.close()
    growth_mib = (_peak_rss_kib() - before) / 1024
    assert received == size
    assert growth_mib < 8, f"peak RSS grew by {growth_mib:.1f} MiB while streaming {size / 1e6:.0f} MB"
    expected = hashlib.sha256()
    for chunk in iter_csv_chunks(CUSTOMER, None, sb.scenario):
        expected.update(chunk)
    assert digest.hexdigest() == expected.hexdigest()


# -- connection helpers and lifecycle -----------------------------------------------------------------------


def test_connection_json(sb: WavySandbox) -> None:
    assert json.loads(sb.connection_json()) == {
        "conn_type": "wavy",
        "host": sb.base_url,
        "login": USER,
        "password": TOKEN,
        "extra": {"customer_id": CUSTOMER},
    }


def test_connection_uri_percent_encodes_credentials() -> None:
    with WavySandbox(username="us er", token="t/k@n:1", customer_id="7") as sb:
        port = urlsplit(sb.base_url).port
        assert sb.connection_uri() == f"wavy://http://us%20er:t%2Fk%40n%3A1@127.0.0.1:{port}/?customer_id=7"
        assert sb.base_url == f"http://127.0.0.1:{port}"
        assert "t/k@n" not in repr(sb)


def test_urls_need_a_started_sandbox() -> None:
    sb = WavySandbox()
    with pytest.raises(RuntimeError, match="not started"):
        _ = sb.base_url


def test_stop_is_quick_with_open_connections() -> None:
    baseline = threading.active_count()
    sb = WavySandbox(username=USER, token=TOKEN, scenario=Scenario(api_delay=30, slow_calls=None)).start()
    idle = http.client.HTTPConnection("127.0.0.1", urlsplit(sb.cdn_url).port, timeout=5)
    idle.connect()
    sleeper_errors: list[BaseException] = []

    def sleeper() -> None:
        try:
            session(sb)
        except (OSError, http.client.HTTPException) as error:
            sleeper_errors.append(error)

    caller = threading.Thread(target=sleeper)
    caller.start()
    while sb.api_calls == 0:
        time.sleep(0.01)
    started = time.monotonic()
    sb.stop()
    assert time.monotonic() - started < 2
    caller.join(5)
    idle.close()
    deadline = time.monotonic() + 2
    while threading.active_count() > baseline and time.monotonic() < deadline:
        time.sleep(0.01)
    assert threading.active_count() == baseline
    sb.stop()  # idempotent


def test_restart_on_fixed_ports() -> None:
    with WavySandbox() as first:
        api_port, cdn_port = first.port, first.cdn_port
    with WavySandbox(port=api_port, cdn_port=cdn_port) as second:
        assert (second.port, second.cdn_port) == (api_port, cdn_port)
        assert fetch(f"{second.base_url}/nothing").status == 404


# -- CLI ---------------------------------------------------------------------------------------------------


def _read_env_file(path: Path, process: subprocess.Popen[str], timeout: float = 20) -> dict[str, str]:
    deadline = time.monotonic() + timeout
    while not path.exists():
        assert process.poll() is None, process.communicate()
        assert time.monotonic() < deadline, "the sandbox never wrote its env file"
        time.sleep(0.05)
    env = {}
    for line in path.read_text().splitlines():
        name, _, value = shlex.split(line)[0].partition("=")
        env[name] = value
    return env


@pytest.mark.parametrize(
    "sig", [pytest.param(signal.SIGTERM, id="sigterm"), pytest.param(signal.SIGINT, id="sigint")]
)
def test_cli(tmp_path: Path, sig: signal.Signals) -> None:
    env_file = tmp_path / "sandbox.env"
    command = [
        sys.executable,
        "-m",
        "airflow_provider_wavy.sandbox",
        "--port",
        "0",
        "--cdn-port",
        "0",
        "--rows",
        "3",
        "--delimiter",
        ",",
        "--scenario-json",
        '{"ready_after": 1, "pending_style": "null"}',
        "--print-env-file",
        str(env_file),
    ]
    process = subprocess.Popen(
        command, cwd=REPO_ROOT, stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True
    )
    try:
        env = _read_env_file(env_file, process)
        connection = json.loads(env["AIRFLOW_CONN_WAVY_DEFAULT"])
        assert connection["host"] == env["WAVY_SANDBOX_BASE_URL"]
        assert (connection["login"], connection["password"]) == ("sandbox-user", "sandbox-token")
        assert connection["extra"] == {"customer_id": "1001"}
        url = f"{connection['host']}/v1/session?customerId=1001"
        headers = {"UserName": connection["login"], "authenticationToken": connection["password"]}
        assert fetch(url, headers).json() == {"file_url": None}
        body = fetch(fetch(url, headers).json()["file_url"]).body
        assert body.startswith(b"source,session_created_at\n")
        assert body.count(b"\n") == 4
    finally:
        process.send_signal(sig)
        stdout, stderr = process.communicate(timeout=10)
    assert process.returncode == 0, stderr
    assert "Traceback" not in stderr
    assert env["WAVY_SANDBOX_BASE_URL"] in stdout
    assert "export AIRFLOW_CONN_WAVY_DEFAULT='" in stdout
    # The same connection as the UI form takes it, field by field.
    form = dict(
        " ".join(line.split()).split(": ", 1)
        for line in stdout.splitlines()
        if line.startswith("  ") and ": " in line
    )
    assert form["Connection Type"] == "Wavy (Sinch) Messaging"
    assert form["API base URL (Host)"] == connection["host"]
    assert (form["UserName (Login)"], form["Authentication token (Password)"]) == (
        "sandbox-user",
        "sandbox-token",
    )
    assert form["Customer ID"] == "1001"
    assert not env_file.exists()


@pytest.mark.parametrize(
    "args",
    [
        pytest.param(["--scenario-json", "{not json"], id="bad-json"),
        pytest.param(["--scenario-json", '{"rowz": 3}'], id="unknown-knob"),
        pytest.param(["--rows", "-1"], id="negative-rows"),
    ],
)
def test_cli_rejects_bad_scenarios(args: list[str]) -> None:
    result = subprocess.run(
        [sys.executable, "-m", "airflow_provider_wavy.sandbox", "--port", "0", *args],
        cwd=REPO_ROOT,
        capture_output=True,
        text=True,
        timeout=20,
        check=False,
    )
    assert result.returncode == 2
    assert "Traceback" not in result.stderr
