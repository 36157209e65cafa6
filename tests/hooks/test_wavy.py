"""
WavyHook's own surface against the sandbox over real loopback sockets: no Airflow database, no mocked HTTP.

What both hooks must do alike (answers, faults, redirects, ids) is the contract table in test_contract.py.
"""

from __future__ import annotations

import http.server
import json
import subprocess
import sys
import threading
import time
from typing import Any, ClassVar

import pytest

from airflow_provider_wavy.exceptions import (
    WavyConfigurationError,
    WavyDownloadError,
)
from airflow_provider_wavy.hooks.wavy import WavyHook
from airflow_provider_wavy.sandbox import Scenario, WavySandbox
from tests.conftest import REPO_ROOT, SANDBOX_TOKEN, set_conn


def test_download_reports_sizes(sandbox: WavySandbox) -> None:
    sandbox.scenario = Scenario(rows=1000)
    hook = WavyHook()
    url = hook.get_open_sessions_file_url()
    assert url is not None
    with hook.open_file(url) as download:
        size = len(b"".join(download.iter_chunks(1000)))
        assert download.content_length == download.expected_size == size == download.wire_bytes


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
    # The port stays visible: Airflow 3.3's Test action needs a stored one (docs/troubleshooting-ui.md).
    assert set(behaviour["hidden_fields"]) == {"schema", "extra"}
    assert behaviour["relabeling"]["password"] == "Authentication token"
    assert behaviour["relabeling"]["port"] == "Port"


CONNECTION_FORMS = [
    pytest.param("uri", id="env-uri"),
    pytest.param("json", id="env-json"),
    pytest.param("secrets-backend", id="local-filesystem-secrets-backend"),
]


@pytest.mark.slow
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
