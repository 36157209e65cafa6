"""
The Wavy sandbox: an emulated sessions API origin and CDN origin on loopback, in one process.

The API origin answers ``GET /v1/session`` like Wavy does (credentials in the ``UserName`` and
``authenticationToken`` headers, a JSON body holding ``file_url``); the CDN origin serves the files those
URLs name, without credentials, and records whether a credential ever reached it.
"""

from __future__ import annotations

import contextlib
import datetime as dt
import hmac
import http.server
import json
import logging
import socket
import socketserver
import threading
import time
import uuid
from dataclasses import dataclass
from http import HTTPStatus
from typing import TYPE_CHECKING, Any
from urllib.parse import parse_qsl, quote, urlencode, urlsplit

from airflow_provider_wavy.sandbox.data import (
    content_type,
    csv_size,
    gzip_size,
    iter_csv_chunks,
    iter_gzip_chunks,
)
from airflow_provider_wavy.sandbox.scenario import Scenario

if TYPE_CHECKING:
    from collections.abc import Iterable, Iterator
    from types import TracebackType

logger = logging.getLogger(__name__)

DEFAULT_USERNAME = "sandbox-user"
DEFAULT_TOKEN = "sandbox-token"  # noqa: S105 - the sandbox's well-known fake credential
DEFAULT_CUSTOMER_ID = "1001"

AUTH_ERROR_MESSAGE = (
    "Authentication Error: No user was found with this combination of username and Authentication token."
)
CREDENTIAL_HEADERS = frozenset({"username", "authenticationtoken"})

_ERROR_MESSAGES = {
    400: "Bad Request: the request is invalid.",
    401: AUTH_ERROR_MESSAGE,
    403: "Forbidden: this user may not access this resource.",
    404: "Not Found.",
    405: "Method Not Allowed.",
    412: "Precondition Failed.",
    420: "Message is Rate Limited.",
    429: "Too Many Requests.",
    500: "Internal Server Error.",
    502: "Bad Gateway.",
    503: "Service Unavailable.",
    504: "Gateway Timeout.",
}
# http.server only knows IANA reason phrases; Wavy's 420 needs its own.
_REASONS = {420: "Rate Limited"}
_PENDING_BODIES: dict[str, dict[str, Any]] = {
    "missing": {},
    "null": {"file_url": None},
    "empty": {"file_url": ""},
    "data": {"success": True, "status": 200},
}
_CDN_ERRORS = {
    403: ("AccessDenied", "Access Denied"),
    404: ("NoSuchKey", "The specified key does not exist."),
}
_MAX_DRAINED_BODY = 1024 * 1024
_IDLE_KEEP_ALIVE = 120.0
_STOP_GRACE = 5.0


@dataclass(frozen=True)
class RecordedRequest:
    """
    One request the sandbox received.

    :param origin: ``"api"`` or ``"cdn"``.
    :param method: HTTP method.
    :param path: URL path, without the query.
    :param query: Query parameters (the last value wins for repeated names).
    :param headers: Request headers, names in lower case (repeated headers joined with ``", "``).
    """

    origin: str
    method: str
    path: str
    query: dict[str, str]
    headers: dict[str, str]


@dataclass(frozen=True)
class _IssuedFile:
    """A file URL handed out by the API: the parameters that regenerate its content."""

    file_id: str
    path: str
    customer_id: str
    sub_account_id: str | None
    scenario: Scenario


class _Server(http.server.ThreadingHTTPServer):
    """A threading HTTP server that tracks its connections so that stopping it is quick and complete."""

    daemon_threads = True
    block_on_close = False
    allow_reuse_address = True
    # A benchmark opens ~1000 connections at once; the kernel caps this at net.core.somaxconn.
    request_queue_size = 4096

    def __init__(self, address: tuple[str, int], sandbox: WavySandbox, origin: str) -> None:
        """
        Bind the server.

        :param address: (host, port); port 0 picks a free port.
        :param sandbox: The sandbox holding the state.
        :param origin: ``"api"`` or ``"cdn"``.
        """
        self.sandbox = sandbox
        self.origin = origin
        self._connections: dict[socket.socket, threading.Thread] = {}
        self._connections_lock = threading.Lock()
        self._closing = False
        if ":" in address[0]:
            self.address_family = socket.AF_INET6
        super().__init__(address, _Handler)

    def server_bind(self) -> None:
        """Bind without ``HTTPServer``'s reverse DNS lookup, which can stall for seconds."""
        socketserver.TCPServer.server_bind(self)
        host, port = self.server_address[:2]
        self.server_name = str(host)
        self.server_port = int(port)

    def handle_error(self, request: Any, client_address: Any) -> None:
        """
        Log a failed request at DEBUG instead of printing a traceback (clients hang up all the time).

        :param request: The client socket.
        :param client_address: The client address.
        """
        logger.debug("Sandbox %s: error while serving %s", self.origin, client_address, exc_info=True)

    def track(self, connection: socket.socket) -> bool:
        """
        Register an open connection; return False when the server is already closing.

        :param connection: The client socket.
        """
        with self._connections_lock:
            self._connections[connection] = threading.current_thread()
            return not self._closing

    def untrack(self, connection: socket.socket) -> None:
        """
        Forget a closed connection.

        :param connection: The client socket.
        """
        with self._connections_lock:
            self._connections.pop(connection, None)

    def close_connections(self, deadline: float) -> None:
        """
        Cut every open connection (idle keep-alives included) and wait for their threads until deadline.

        :param deadline: ``time.monotonic()`` value after which threads are left to die as daemons.
        """
        with self._connections_lock:
            self._closing = True
            connections = list(self._connections.items())
        for connection, _thread in connections:
            # OSError: the client closed it already.
            with contextlib.suppress(OSError):
                connection.shutdown(socket.SHUT_RDWR)
        for _connection, thread in connections:
            if thread is not threading.current_thread():
                thread.join(max(0.0, deadline - time.monotonic()))


class _Handler(http.server.BaseHTTPRequestHandler):
    """Serve one connection of either origin; the state lives in the sandbox."""

    protocol_version = "HTTP/1.1"
    server_version = "WavySandbox/1.0"
    sys_version = ""
    # Idle keep-alive connections are closed after this long; it also bounds a stuck write.
    timeout = _IDLE_KEEP_ALIVE
    # Headers and body go out in separate writes: with Nagle on, keep-alive clients wait for delayed ACKs.
    disable_nagle_algorithm = True
    server: _Server

    def version_string(self) -> str:
        """Return the ``Server`` header value (without the Python version)."""
        return self.server_version

    def setup(self) -> None:
        """Register the connection, or cut it at once when the server is stopping."""
        super().setup()
        if not self.server.track(self.connection):
            with contextlib.suppress(OSError):
                self.connection.shutdown(socket.SHUT_RDWR)

    def finish(self) -> None:
        """Unregister the connection."""
        try:
            super().finish()
        finally:
            self.server.untrack(self.connection)

    def log_message(self, format: str, *args: Any) -> None:
        """
        Log at DEBUG instead of printing every request on stderr (request lines carry no token).

        :param format: %-format string.
        :param args: Its arguments.
        """
        logger.debug("Sandbox %s %s: %s", self.server.origin, self.address_string(), format % args)

    def _dispatch(self) -> None:
        """Record the request and route it to its origin's logic."""
        self._drain_body()
        parts = urlsplit(self.path)
        query = dict(parse_qsl(parts.query, keep_blank_values=True))
        headers: dict[str, str] = {}
        for name, value in self.headers.items():
            key = name.lower()
            headers[key] = f"{headers[key]}, {value}" if key in headers else value
        sandbox = self.server.sandbox
        sandbox._record(RecordedRequest(self.server.origin, self.command, parts.path, query, headers))
        try:
            if self.server.origin == "api":
                _ApiLogic(self, sandbox, parts.path, parts.query, query).answer()
            else:
                _CdnLogic(self, sandbox, parts.path, query).answer()
        except (ConnectionError, TimeoutError) as error:
            logger.debug("Sandbox %s: client went away: %s", self.server.origin, error)
            self.close_connection = True

    # http.server looks up do_<METHOD>: every method goes through the same recording and routing.
    do_GET = do_HEAD = do_POST = do_PUT = do_DELETE = do_PATCH = _dispatch

    def _drain_body(self) -> None:
        """Read and drop a request body so that the next request on a kept-alive connection parses."""
        if "chunked" in self.headers.get("Transfer-Encoding", "").lower():
            self.close_connection = True
            return
        try:
            length = int(self.headers.get("Content-Length") or 0)
        except ValueError:
            length = -1
        if 0 < length <= _MAX_DRAINED_BODY:
            self.rfile.read(length)
        elif length:
            self.close_connection = True

    def send(
        self,
        status: int,
        body: bytes = b"",
        ctype: str | None = None,
        headers: Iterable[tuple[str, str]] = (),
    ) -> None:
        """
        Send a complete response with a Content-Length.

        :param status: HTTP status.
        :param body: Body (not sent for HEAD).
        :param ctype: Content-Type, if any.
        :param headers: Extra headers.
        """
        self.send_response(status, _REASONS.get(status))
        if ctype:
            self.send_header("Content-Type", ctype)
        for name, value in headers:
            self.send_header(name, value)
        self.send_header("Content-Length", str(len(body)))
        self.end_headers()
        if body and self.command != "HEAD":
            self.wfile.write(body)

    def send_json(self, status: int, payload: object, headers: Iterable[tuple[str, str]] = ()) -> None:
        """
        Send a JSON response.

        :param status: HTTP status.
        :param payload: JSON-serialisable body.
        :param headers: Extra headers.
        """
        self.send(status, json.dumps(payload).encode(), "application/json", headers)

    def send_api_error(
        self, status: int, message: str | None = None, headers: Iterable[tuple[str, str]] = ()
    ) -> None:
        """
        Send a Wavy-style JSON error ``{"errorCode": N, "errorMessage": "..."}``.

        :param status: HTTP status, also the error code.
        :param message: Error message (default: a stock message for the status).
        :param headers: Extra headers.
        """
        if message is None:
            message = _ERROR_MESSAGES.get(status) or _phrase(status)
        self.send_json(status, {"errorCode": status, "errorMessage": message}, headers)

    def stream(
        self, chunks: Iterator[bytes], *, chunked: bool, limit: int | None, stall: float = 0.0
    ) -> None:
        """
        Write a body chunk by chunk, optionally framed as chunked and cut after ``limit`` bytes.

        :param chunks: Body chunks.
        :param chunked: Frame with ``Transfer-Encoding: chunked``.
        :param limit: Close the connection after this many body bytes (None = send everything).
        :param stall: Seconds to stay silent at ``limit`` before closing.
        """
        write = self.wfile.write
        sent = 0
        for chunk in chunks:
            if not chunk:
                continue  # an empty chunk would end a chunked body early
            piece = chunk
            if limit is not None and sent + len(chunk) > limit:
                piece = chunk[: limit - sent]
            if piece:
                write(b"".join((b"%x\r\n" % len(piece), piece, b"\r\n")) if chunked else piece)
                sent += len(piece)
            if piece is not chunk:
                # The promised length (or the last chunk) never comes: the client must notice.
                self.pause(stall, 0, None)
                self.close_connection = True
                return
        if chunked:
            write(b"0\r\n\r\n")

    def pause(self, seconds: float, call_index: int, slow_calls: int | None) -> None:
        """
        Sleep before answering, unless this call is past the slow ones or the sandbox is stopping.

        :param seconds: Delay.
        :param call_index: 0-based index of this call.
        :param slow_calls: Only the first N calls are slow (None = all).
        """
        if seconds > 0 and (slow_calls is None or call_index < slow_calls):
            self.server.sandbox._stopping.wait(seconds)


class _ApiLogic:
    """The API origin's answer to one request."""

    def __init__(
        self, handler: _Handler, sandbox: WavySandbox, path: str, raw_query: str, query: dict[str, str]
    ) -> None:
        """
        Hold the request.

        :param handler: The connection's handler (sends the answer).
        :param sandbox: The sandbox state.
        :param path: URL path.
        :param raw_query: Query string as received (forwarded by redirects).
        :param query: Parsed query.
        """
        self.handler = handler
        self.sandbox = sandbox
        self.path = path
        self.raw_query = raw_query
        self.query = query

    def answer(self) -> None:
        """Answer the session endpoints; anything else is a JSON 404/405."""
        handler = self.handler
        if self.path not in ("/v1/session", "/v2/session"):
            handler.send_api_error(404, f"Not Found: no resource at {self.path}")
            return
        if handler.command != "GET":
            handler.send_api_error(405, headers=[("Allow", "GET")])
            return
        generation: int | None = None
        if self.path == "/v1/session":
            scenario, call_index, generation = self.sandbox._count_api_call()
            handler.pause(scenario.api_delay, call_index, scenario.slow_calls)
            if self._redirected(scenario):
                return
        else:
            scenario = self.sandbox.scenario
            if scenario.api_status is not None:
                handler.send_api_error(scenario.api_status)
                return
        self._session(scenario, generation)

    def _redirected(self, scenario: Scenario) -> bool:
        """Answer the fixed status or a redirect when the scenario asks for one; return whether it did."""
        handler = self.handler
        suffix = f"?{self.raw_query}" if self.raw_query else ""
        if scenario.api_status is not None:
            handler.send_api_error(scenario.api_status)
        elif scenario.redirect == "api-same-origin":
            handler.send(307, headers=[("Location", f"{self.sandbox.base_url}/v2/session{suffix}")])
        elif scenario.redirect == "api-cross-origin":
            handler.send(302, headers=[("Location", f"{self.sandbox.cdn_url}/redirected/v1/session{suffix}")])
        else:
            return False
        return True

    def _session(self, scenario: Scenario, generation: int | None = None) -> None:
        """
        Check credentials and parameters, then answer the current phase.

        :param scenario: The scenario the call started under.
        :param generation: The sandbox generation the call started under (None: not tracked).
        """
        handler = self.handler
        if not self.sandbox._authenticated(
            handler.headers.get("UserName"), handler.headers.get("authenticationToken")
        ):
            handler.send_api_error(401)
            return
        customer_id = self.query.get("customerId", "").strip()
        if not customer_id:
            handler.send_api_error(400, "Bad Request: the customerId parameter is required.")
            return
        sub_account_id = self.query.get("subAccountId", "").strip() or None
        phase = self.sandbox._next_phase(scenario, generation)
        if phase == "stale":
            handler.send_api_error(
                503, "Service Unavailable: the sandbox's scenario changed during this call."
            )
        elif phase == "rate-limited":
            retry = [] if scenario.retry_after is None else [("Retry-After", scenario.retry_after)]
            handler.send_api_error(scenario.rate_limit_status, headers=retry)
        elif phase == "server-error":
            handler.send_api_error(scenario.server_error_status)
        elif phase == "pending":
            handler.send_json(200, _PENDING_BODIES[scenario.pending_style])
        else:
            handler.send_json(200, {"file_url": self.sandbox._issue(customer_id, sub_account_id, scenario)})


class _CdnLogic:
    """The CDN origin's answer to one request."""

    def __init__(self, handler: _Handler, sandbox: WavySandbox, path: str, query: dict[str, str]) -> None:
        """
        Hold the request.

        :param handler: The connection's handler (sends the answer).
        :param sandbox: The sandbox state.
        :param path: URL path.
        :param query: Parsed query.
        """
        self.handler = handler
        self.sandbox = sandbox
        self.path = path
        self.query = query

    def answer(self) -> None:
        """Answer a redirected API call, a redirect to a file, a file, or a CDN-style 404."""
        handler = self.handler
        if self.path == "/redirected/v1/session":
            # Where a cross-origin redirect lands: it answers like the API, minus the checks.
            scenario = self.sandbox.scenario
            customer_id = self.query.get("customerId", "").strip() or self.sandbox.customer_id
            sub_account_id = self.query.get("subAccountId", "").strip() or None
            handler.send_json(200, {"file_url": self.sandbox._issue(customer_id, sub_account_id, scenario)})
            return
        if self.path.startswith("/r/"):
            entry = self.sandbox._file_by_id(self.path[3:])
            if entry is None:
                self._error(404)
            else:
                handler.send(302, headers=[("Location", f"{self.sandbox.cdn_url}{entry.path}")])
            return
        entry = self.sandbox._file_by_path(self.path)
        if entry is None:
            self._error(404)
            return
        if handler.command not in ("GET", "HEAD"):
            self._error(405)
            return
        scenario, call_index = self.sandbox._count_cdn_call()
        handler.pause(scenario.cdn_delay, call_index, scenario.slow_calls)
        if call_index < scenario.cdn_not_found_calls:
            self._error(scenario.cdn_status)
            return
        self._serve(entry, scenario)

    def _error(self, status: int) -> None:
        """Send an S3/CloudFront-style XML error."""
        code, message = _CDN_ERRORS.get(status, (_phrase(status).replace(" ", ""), _phrase(status)))
        body = (
            f'<?xml version="1.0" encoding="UTF-8"?>\n<Error><Code>{code}</Code>'
            f"<Message>{message}</Message></Error>\n"
        ).encode()
        self.handler.send(status, body, "application/xml")

    def _serve(self, entry: _IssuedFile, scenario: Scenario) -> None:
        """Send the file: content from the scenario it was issued under, transport from the current one."""
        handler = self.handler
        content = entry.scenario
        chunks = iter_csv_chunks(entry.customer_id, entry.sub_account_id, content)
        length: int | None
        if scenario.gzip:
            chunks = iter_gzip_chunks(chunks)
            length = None if scenario.chunked else self.sandbox._gzip_length(entry)
        else:
            length = None if scenario.chunked else csv_size(entry.customer_id, entry.sub_account_id, content)
        handler.send_response(200)
        handler.send_header("Content-Type", content_type(content))
        if scenario.gzip:
            handler.send_header("Content-Encoding", "gzip")
        if length is None:
            handler.send_header("Transfer-Encoding", "chunked")
        else:
            handler.send_header("Content-Length", str(length))
        handler.end_headers()
        if handler.command == "HEAD":
            return
        handler.stream(
            chunks, chunked=length is None, limit=scenario.truncate_at, stall=scenario.truncate_stall
        )


def _phrase(status: int) -> str:
    """Return the reason phrase of a status, also for non-IANA ones."""
    try:
        return HTTPStatus(status).phrase
    except ValueError:
        return _REASONS.get(status, "Error")


class WavySandbox:
    """
    Run an emulated Wavy sessions API and its CDN on loopback, for tests and offline DAG runs.

    Use it as a context manager (or call ``start()``/``stop()``)::

        with WavySandbox(scenario=Scenario(rows=10)) as sb:
            os.environ["AIRFLOW_CONN_WAVY_DEFAULT"] = sb.connection_json()
    """

    def __init__(
        self,
        username: str = DEFAULT_USERNAME,
        token: str = DEFAULT_TOKEN,
        *,
        scenario: Scenario | None = None,
        customer_id: str = DEFAULT_CUSTOMER_ID,
        host: str = "127.0.0.1",
        port: int = 0,
        cdn_port: int = 0,
        max_recorded: int = 100_000,
    ) -> None:
        """
        Configure the sandbox (nothing listens before ``start()``).

        :param username: The only accepted ``UserName``.
        :param token: The only accepted ``authenticationToken``.
        :param scenario: How to answer (default: ``Scenario()``, the happy path).
        :param customer_id: Customer id put in ``connection_json()``; the API accepts any customerId.
        :param host: Interface to listen on, for both origins.
        :param port: API port (0 = a free port).
        :param cdn_port: CDN port (0 = a free port).
        :param max_recorded: Keep at most this many recorded requests (the oldest are dropped).
        """
        if max_recorded < 0:
            raise ValueError(f"max_recorded must be >= 0, got {max_recorded}")
        self.username = username
        self.token = token
        self.customer_id = str(customer_id)
        self.host = host
        self._ports = (port, cdn_port)
        self._max_recorded = max_recorded
        self._lock = threading.Lock()
        self._scenario = scenario or Scenario()
        self._api_calls = 0
        self._answers = 0
        self._cdn_calls = 0
        # Bumped by every scenario change and reset: a call that started before it (and slept through
        # it, e.g. a slow answer its client gave up on) must not consume the new scenario's phases.
        self._generation = 0
        self._requests: list[RecordedRequest] = []
        self._cdn_saw_credentials = False
        self._files_by_id: dict[str, _IssuedFile] = {}
        self._files_by_path: dict[str, _IssuedFile] = {}
        self._files_by_key: dict[tuple[str, str | None, Scenario], _IssuedFile] = {}
        self._gzip_lengths: dict[str, int] = {}
        self._stopping = threading.Event()
        self._servers: list[_Server] = []
        self._threads: list[threading.Thread] = []
        self._urls: tuple[str, str] | None = None

    def __repr__(self) -> str:
        """Describe the sandbox without its token."""
        where = f"{self._urls[0]}, cdn {self._urls[1]}" if self._urls else "not started"
        return f"WavySandbox({where}, username={self.username!r})"

    # -- lifecycle ---------------------------------------------------------------------------------------

    def start(self) -> WavySandbox:
        """Bind both origins and serve them from daemon threads; return self."""
        if self._servers:
            raise RuntimeError("The sandbox is already running")
        self._stopping.clear()
        servers: list[_Server] = []
        try:
            for origin, port in zip(("api", "cdn"), self._ports, strict=True):
                servers.append(_Server((self.host, port), self, origin))
        except OSError:
            for server in servers:
                server.server_close()
            raise
        self._servers = servers
        self._urls = (_url(self.host, servers[0].server_port), _url(self.host, servers[1].server_port))
        for server in servers:
            # A short poll interval makes stop() return within ~50 ms.
            thread = threading.Thread(
                target=server.serve_forever,
                kwargs={"poll_interval": 0.05},
                name=f"wavy-sandbox-{server.origin}",
                daemon=True,
            )
            thread.start()
            self._threads.append(thread)
        logger.debug("Wavy sandbox listening: API %s, CDN %s", *self._urls)
        return self

    def stop(self) -> None:
        """Stop both origins, cut open connections and wait (briefly) for their threads; idempotent."""
        if not self._servers:
            return
        self._stopping.set()  # wakes handlers sleeping on a delay knob
        for server in self._servers:
            server.shutdown()
        deadline = time.monotonic() + _STOP_GRACE
        for server in self._servers:
            server.server_close()
            server.close_connections(deadline)
        for thread in self._threads:
            thread.join(max(0.0, deadline - time.monotonic()))
        self._servers = []
        self._threads = []

    def __enter__(self) -> WavySandbox:
        """Start the sandbox."""
        return self.start()

    def __exit__(
        self,
        exc_type: type[BaseException] | None,
        exc: BaseException | None,
        traceback: TracebackType | None,
    ) -> None:
        """Stop the sandbox."""
        self.stop()

    # -- public state --------------------------------------------------------------------------------------

    @property
    def base_url(self) -> str:
        """The API origin, for example ``http://127.0.0.1:41234`` (the connection's host)."""
        return self._started_urls()[0]

    @property
    def cdn_url(self) -> str:
        """The CDN origin the file URLs point at."""
        return self._started_urls()[1]

    @property
    def port(self) -> int:
        """The API port."""
        return int(urlsplit(self.base_url).port or 0)

    @property
    def cdn_port(self) -> int:
        """The CDN port."""
        return int(urlsplit(self.cdn_url).port or 0)

    @property
    def scenario(self) -> Scenario:
        """The current scenario."""
        with self._lock:
            return self._scenario

    @scenario.setter
    def scenario(self, scenario: Scenario) -> None:
        """
        Replace the scenario and reset the call counters (file URLs already handed out stay valid).

        :param scenario: The new scenario.
        """
        if not isinstance(scenario, Scenario):
            raise TypeError(f"Expected a Scenario, got {type(scenario).__name__}")
        with self._lock:
            self._scenario = scenario
            self._api_calls = self._answers = self._cdn_calls = 0
            self._generation += 1

    @property
    def api_calls(self) -> int:
        """Number of ``/v1/session`` requests since the last reset or scenario change."""
        with self._lock:
            return self._api_calls

    @property
    def cdn_calls(self) -> int:
        """Number of requests for issued files since the last reset or scenario change."""
        with self._lock:
            return self._cdn_calls

    @property
    def requests(self) -> list[RecordedRequest]:
        """A copy of the recorded requests of both origins, oldest first."""
        with self._lock:
            return list(self._requests)

    @property
    def cdn_requests(self) -> list[RecordedRequest]:
        """A copy of the recorded requests of the CDN origin."""
        return [request for request in self.requests if request.origin == "cdn"]

    @property
    def cdn_saw_credentials(self) -> bool:
        """Whether any CDN request carried a ``UserName`` or ``authenticationToken`` header (any case)."""
        with self._lock:
            return self._cdn_saw_credentials

    def reset(self) -> None:
        """Reset the counters, the recorded requests and the credential recorder."""
        with self._lock:
            self._api_calls = self._answers = self._cdn_calls = 0
            self._generation += 1
            self._requests.clear()
            self._cdn_saw_credentials = False

    def expected_bytes(self, customer_id: str | None = None, sub_account_id: str | None = None) -> bytes:
        """
        Return the uncompressed file body the current scenario serves (small files only: it is held whole).

        :param customer_id: Customer id (default: the sandbox's ``customer_id``).
        :param sub_account_id: Sub-account id, or None.
        """
        customer = self.customer_id if customer_id is None else customer_id
        return b"".join(iter_csv_chunks(customer, sub_account_id, self.scenario))

    def connection_json(self) -> str:
        """Return the JSON form of an Airflow ``wavy`` connection to this sandbox."""
        return json.dumps(
            {
                "conn_type": "wavy",
                "host": self.base_url,
                "login": self.username,
                "password": self.token,
                "extra": {"customer_id": self.customer_id},
            }
        )

    def connection_uri(self) -> str:
        """Return the URI form (host with protocol) of an Airflow ``wavy`` connection to this sandbox."""
        parts = urlsplit(self.base_url)
        login = quote(self.username, safe="")
        password = quote(self.token, safe="")
        query = urlencode({"customer_id": self.customer_id})
        return f"wavy://{parts.scheme}://{login}:{password}@{parts.netloc}/?{query}"

    def env(self) -> dict[str, str]:
        """Return environment variables pointing Airflow and scripts at this sandbox."""
        return {
            "WAVY_SANDBOX_BASE_URL": self.base_url,
            "WAVY_SANDBOX_CDN_URL": self.cdn_url,
            "AIRFLOW_CONN_WAVY_DEFAULT": self.connection_json(),
        }

    # -- used by the handlers ------------------------------------------------------------------------------

    def _started_urls(self) -> tuple[str, str]:
        """Return (API URL, CDN URL) or fail when the sandbox never started."""
        if self._urls is None:
            raise RuntimeError("The sandbox is not started: use it as a context manager or call start()")
        return self._urls

    def _record(self, request: RecordedRequest) -> None:
        """Keep a request (bounded) and note credentials reaching the CDN."""
        leaked = request.origin == "cdn" and not CREDENTIAL_HEADERS.isdisjoint(request.headers)
        with self._lock:
            if self._max_recorded:
                self._requests.append(request)
                if len(self._requests) > self._max_recorded:
                    # Drop a slice at once so that a long benchmark does not pay O(n) per request.
                    del self._requests[: max(1, self._max_recorded // 10)]
            if leaked:
                self._cdn_saw_credentials = True
        if leaked:
            logger.debug("Sandbox CDN received a credential header on %s", request.path)

    def _authenticated(self, username: str | None, token: str | None) -> bool:
        """Compare credentials in constant time."""
        if username is None or token is None:
            return False
        user_ok = hmac.compare_digest(username.encode(), self.username.encode())
        token_ok = hmac.compare_digest(token.encode(), self.token.encode())
        return user_ok and token_ok

    def _count_api_call(self) -> tuple[Scenario, int, int]:
        """Count a ``/v1/session`` call; return the scenario, its 0-based index and the generation."""
        with self._lock:
            index = self._api_calls
            self._api_calls += 1
            return self._scenario, index, self._generation

    def _count_cdn_call(self) -> tuple[Scenario, int]:
        """Count a file request; return the scenario and its 0-based index."""
        with self._lock:
            index = self._cdn_calls
            self._cdn_calls += 1
            return self._scenario, index

    def _next_phase(self, scenario: Scenario, generation: int | None = None) -> str:
        """
        Return the phase of the next authenticated, valid session call.

        :param scenario: The scenario the call started under.
        :param generation: The generation the call started under; "stale" when it changed since.
        """
        with self._lock:
            if generation is not None and generation != self._generation:
                return "stale"
            index = self._answers
            self._answers += 1
        for phase, count in (
            ("rate-limited", scenario.rate_limited_calls),
            ("server-error", scenario.server_errors),
            ("pending", scenario.ready_after),
        ):
            if index < count:
                return phase
            index -= count
        return "ready"

    def _issue(self, customer_id: str, sub_account_id: str | None, scenario: Scenario) -> str:
        """Return the file URL for these parameters, registering it the first time."""
        key = (customer_id, sub_account_id, scenario)
        with self._lock:
            entry = self._files_by_key.get(key)
            if entry is None:
                folder = uuid.uuid5(uuid.NAMESPACE_URL, f"wavy-sandbox:{customer_id}:{sub_account_id or ''}")
                file_id = str(uuid.uuid4())
                path = f"/{dt.datetime.now(dt.UTC):%Y/%m/%d}/{folder}/{file_id}"
                entry = _IssuedFile(file_id, path, customer_id, sub_account_id, scenario)
                self._files_by_key[key] = self._files_by_id[file_id] = self._files_by_path[path] = entry
        if scenario.redirect == "file":
            return f"{self.cdn_url}/r/{entry.file_id}"
        return f"{self.cdn_url}{entry.path}"

    def _file_by_id(self, file_id: str) -> _IssuedFile | None:
        """Look an issued file up by id."""
        with self._lock:
            return self._files_by_id.get(file_id)

    def _file_by_path(self, path: str) -> _IssuedFile | None:
        """Look an issued file up by URL path."""
        with self._lock:
            return self._files_by_path.get(path)

    def _gzip_length(self, entry: _IssuedFile) -> int:
        """Return (and cache) the compressed size of a file, computed by a streaming pre-pass."""
        with self._lock:
            cached = self._gzip_lengths.get(entry.file_id)
        if cached is None:
            cached = gzip_size(entry.customer_id, entry.sub_account_id, entry.scenario)
            with self._lock:
                self._gzip_lengths[entry.file_id] = cached
        return cached


def _url(host: str, port: int) -> str:
    """Return an http URL for a host and port (IPv6 literals bracketed)."""
    return f"http://[{host}]:{port}" if ":" in host else f"http://{host}:{port}"
