"""
Hand-written hostile HTTP servers on loopback: each answer is raw bytes a test scripts, byte by byte.

The sandbox is a well-behaved Wavy; these servers are what an attacker (or a broken proxy) would run. A
test gives a function that receives the parsed request and yields what to do: ``bytes`` to send, a
``float`` to sleep that many seconds. The connection is closed when the function returns. Every request
is recorded, so that a test can assert that a token never reached a server.
"""

from __future__ import annotations

import contextlib
import socket
import threading
import time
from dataclasses import dataclass, field
from typing import TYPE_CHECKING

if TYPE_CHECKING:
    from collections.abc import Callable, Iterable, Iterator

#: Every hostile answer stops after this long, whatever it scripted: a test never hangs on its server.
MAX_ANSWER_SECONDS = 30.0


@dataclass(frozen=True)
class RawRequest:
    """
    A request as received.

    :param method: the request method.
    :param target: the request target (path and query).
    :param headers: the header lines, names lower-cased.
    :param head: the raw bytes of the request line and headers.
    """

    method: str
    target: str
    headers: dict[str, str]
    head: bytes


def answer(
    status: int = 200,
    body: bytes = b"",
    headers: Iterable[tuple[str, str]] = (),
    *,
    length: bool = True,
) -> bytes:
    """
    Build a raw HTTP/1.1 answer.

    :param status: the status code.
    :param body: the body.
    :param headers: extra header lines, sent as given (no validation: that is the point).
    :param length: add a ``Content-Length`` matching ``body``.
    """
    lines = [f"HTTP/1.1 {status} X".encode()]
    lines += [f"{name}: {value}".encode("latin-1", errors="replace") for name, value in headers]
    if length:
        lines.append(f"Content-Length: {len(body)}".encode())
    lines.append(b"Connection: close")
    return b"\r\n".join(lines) + b"\r\n\r\n" + body


def raw_answer(status_line: str, header_lines: Iterable[bytes], body: bytes = b"") -> bytes:
    """Build an answer from raw header lines (bytes as they go on the wire), closing the connection."""
    return b"\r\n".join([status_line.encode(), *header_lines, b"Connection: close"]) + b"\r\n\r\n" + body


@dataclass
class HostileServer:
    """
    A threaded TCP server on a loopback address answering with a scripted function.

    :param script: called per request; yields bytes to send and floats to sleep.
    :param host: the loopback address to listen on (127.0.0.2 makes a second origin on the same port range).
    """

    script: Callable[[RawRequest], Iterable[bytes | float]]
    host: str = "127.0.0.1"
    requests: list[RawRequest] = field(default_factory=list)
    _sock: socket.socket | None = None
    _port: int = 0
    _stop: threading.Event = field(default_factory=threading.Event)
    _threads: list[threading.Thread] = field(default_factory=list)

    @property
    def port(self) -> int:
        return self._port

    @property
    def url(self) -> str:
        """Return the origin, ``http://host:port``."""
        return f"http://{self.host}:{self.port}"

    def saw(self, text: str) -> bool:
        """Tell whether any request that reached this server carried ``text`` (a token, say)."""
        return any(text.encode() in request.head for request in self.requests)

    def __enter__(self) -> HostileServer:
        sock = socket.socket(socket.AF_INET, socket.SOCK_STREAM)
        sock.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
        sock.bind((self.host, 0))
        sock.listen(64)
        self._port = int(sock.getsockname()[1])
        sock.settimeout(0.2)
        self._sock = sock
        thread = threading.Thread(target=self._accept, name="hostile-accept", daemon=True)
        thread.start()
        self._threads.append(thread)
        return self

    def __exit__(self, *exc_info: object) -> None:
        self._stop.set()
        for thread in list(self._threads):
            thread.join(timeout=5)
        if self._sock is not None:
            self._sock.close()

    def _accept(self) -> None:
        assert self._sock is not None
        while not self._stop.is_set():
            try:
                conn, _ = self._sock.accept()
            except TimeoutError:
                continue
            except OSError:
                return
            thread = threading.Thread(target=self._serve, args=(conn,), name="hostile-conn", daemon=True)
            thread.start()
            self._threads.append(thread)

    def _serve(self, conn: socket.socket) -> None:
        with conn:
            conn.settimeout(5)
            request = _read_request(conn)
            if request is None:
                return
            self.requests.append(request)
            started = time.monotonic()
            with contextlib.suppress(OSError):
                for step in self.script(request):
                    if self._stop.is_set() or time.monotonic() - started > MAX_ANSWER_SECONDS:
                        return
                    if isinstance(step, bytes):
                        conn.sendall(step)
                    else:
                        self._stop.wait(step)
                conn.shutdown(socket.SHUT_WR)
                # Let the client read everything before the close turns into a reset.
                conn.settimeout(1)
                with contextlib.suppress(OSError):
                    while conn.recv(65536):
                        pass


def _read_request(conn: socket.socket) -> RawRequest | None:
    data = b""
    with contextlib.suppress(OSError):
        while b"\r\n\r\n" not in data and len(data) < 65536:
            chunk = conn.recv(65536)
            if not chunk:
                break
            data += chunk
    head, _, _ = data.partition(b"\r\n\r\n")
    if not head:
        return None
    lines = head.decode("latin-1").split("\r\n")
    method, target, *_ = [*lines[0].split(" "), "", ""]
    headers = {}
    for line in lines[1:]:
        name, _, value = line.partition(":")
        headers[name.strip().lower()] = value.strip()
    return RawRequest(method=method, target=target, headers=headers, head=head)


@contextlib.contextmanager
def serve(
    script: Callable[[RawRequest], Iterable[bytes | float]], host: str = "127.0.0.1"
) -> Iterator[HostileServer]:
    """Run a :class:`HostileServer` for the length of a ``with`` block."""
    with HostileServer(script, host=host) as server:
        yield server


def always(data: bytes) -> Callable[[RawRequest], Iterable[bytes | float]]:
    """Return a script that answers every request with the same raw bytes."""

    def script(_request: RawRequest) -> Iterable[bytes | float]:
        yield data

    return script
