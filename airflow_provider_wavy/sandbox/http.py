"""
The sandbox's HTTP plumbing: a threading server that can be stopped quickly and a handler that records
each request and hands it to its origin (the API or the CDN), plus the response helpers both use.
"""

from __future__ import annotations

import contextlib
import http.server
import json
import logging
import socket
import socketserver
import threading
import time
from http import HTTPStatus
from typing import TYPE_CHECKING, Any, Protocol
from urllib.parse import parse_qsl, urlsplit

from airflow_provider_wavy.sandbox.state import RecordedRequest

if TYPE_CHECKING:
    from collections.abc import Iterable, Iterator

logger = logging.getLogger(__name__)

AUTH_ERROR_MESSAGE = (
    "Authentication Error: No user was found with this combination of username and Authentication token."
)
ERROR_MESSAGES = {
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
_MAX_DRAINED_BODY = 1024 * 1024
_IDLE_KEEP_ALIVE = 120.0


class Origin(Protocol):
    """What a server hands each request to: the API origin or the CDN origin."""

    name: str

    def handle(self, handler: SandboxHandler, request: RecordedRequest, raw_query: str) -> None:
        """
        Record and answer one request.

        :param handler: The connection's handler (sends the answer).
        :param request: The request as recorded.
        :param raw_query: The query string as received.
        """


def phrase(status: int) -> str:
    """
    Return the reason phrase of a status, also for non-IANA ones.

    :param status: HTTP status.
    """
    try:
        return HTTPStatus(status).phrase
    except ValueError:
        return _REASONS.get(status, "Error")


class SandboxServer(http.server.ThreadingHTTPServer):
    """A threading HTTP server that tracks its connections so that stopping it is quick and complete."""

    daemon_threads = True
    block_on_close = False
    allow_reuse_address = True
    # A benchmark opens ~1000 connections at once; the kernel caps this at net.core.somaxconn.
    request_queue_size = 4096

    def __init__(self, address: tuple[str, int], name: str, stopping: threading.Event) -> None:
        """
        Bind the server; set ``origin`` before serving.

        :param address: (host, port); port 0 picks a free port.
        :param name: ``"api"`` or ``"cdn"`` (for logs).
        :param stopping: Set when the sandbox stops: wakes handlers sleeping on a delay knob.
        """
        self.name = name
        self.stopping = stopping
        self.origin: Origin | None = None
        self._connections: dict[socket.socket, threading.Thread] = {}
        self._connections_lock = threading.Lock()
        self._closing = False
        if ":" in address[0]:
            self.address_family = socket.AF_INET6
        super().__init__(address, SandboxHandler)

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
        logger.debug("Sandbox %s: error while serving %s", self.name, client_address, exc_info=True)

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


class SandboxHandler(http.server.BaseHTTPRequestHandler):
    """Serve one connection of either origin; the answers come from the server's origin."""

    protocol_version = "HTTP/1.1"
    server_version = "WavySandbox/1.0"
    sys_version = ""
    # Idle keep-alive connections are closed after this long; it also bounds a stuck write.
    timeout = _IDLE_KEEP_ALIVE
    # Headers and body go out in separate writes: with Nagle on, keep-alive clients wait for delayed ACKs.
    disable_nagle_algorithm = True
    server: SandboxServer

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
        logger.debug("Sandbox %s %s: %s", self.server.name, self.address_string(), format % args)

    def _dispatch(self) -> None:
        """Parse the request and hand it to the server's origin."""
        self._drain_body()
        parts = urlsplit(self.path)
        query = dict(parse_qsl(parts.query, keep_blank_values=True))
        headers: dict[str, str] = {}
        for name, value in self.headers.items():
            key = name.lower()
            headers[key] = f"{headers[key]}, {value}" if key in headers else value
        request = RecordedRequest(self.server.name, self.command, parts.path, query, headers)
        origin = self.server.origin
        if origin is None:
            raise RuntimeError("SandboxServer.origin must be set before serving")
        try:
            origin.handle(self, request, parts.query)
        except (ConnectionError, TimeoutError) as error:
            logger.debug("Sandbox %s: client went away: %s", self.server.name, error)
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
            message = ERROR_MESSAGES.get(status) or phrase(status)
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
            self.server.stopping.wait(seconds)
