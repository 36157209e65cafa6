"""
A total deadline for ``requests`` calls, which only know per-read timeouts.

A server that sends one byte just inside the read timeout keeps a ``requests`` call alive for as long as it
likes. The watchdog tracks the sockets its call opens (through the connection classes of the session's
pools) and shuts them down when the call's time is up, so the blocked read returns at once with an error
the hook turns into "time limit reached".
"""

from __future__ import annotations

import contextlib
import socket
import threading
from typing import TYPE_CHECKING, Any

from requests.adapters import HTTPAdapter
from urllib3.connection import HTTPConnection, HTTPSConnection
from urllib3.connectionpool import HTTPConnectionPool, HTTPSConnectionPool

if TYPE_CHECKING:
    from urllib3.poolmanager import PoolManager

    from airflow_provider_wavy.protocol import Deadline

_current = threading.local()


class CallWatch:
    """
    Shut down every socket a call uses once its deadline passes.

    Use as a context manager around the whole call, in the thread that makes it.

    :param deadline: the call's time limit.
    """

    def __init__(self, deadline: Deadline) -> None:
        self.deadline = deadline
        self._lock = threading.Lock()
        self._connections: list[HTTPConnection] = []
        self._expired = False
        self._timer: threading.Timer | None = None
        self._outer: CallWatch | None = None

    @property
    def expired(self) -> bool:
        """Tell whether the deadline passed (and the call's sockets were shut down)."""
        return self._expired

    def __enter__(self) -> CallWatch:
        self._outer = getattr(_current, "watch", None)
        _current.watch = self
        remaining = self.deadline.remaining()
        if remaining != float("inf"):
            self._timer = threading.Timer(remaining, self._expire)
            self._timer.daemon = True
            self._timer.start()
        return self

    def __exit__(self, *exc_info: object) -> None:
        if self._timer is not None:
            self._timer.cancel()
        with self._lock:
            # A connection that goes back to the pool must not be shut down by a late timer.
            self._connections.clear()
        _current.watch = self._outer

    def track(self, connection: HTTPConnection) -> None:
        """Watch a connection the call is about to use."""
        with self._lock:
            if self._expired:
                _shut(connection)
            else:
                self._connections.append(connection)

    def _expire(self) -> None:
        with self._lock:
            self._expired = True
            for connection in self._connections:
                _shut(connection)


def _shut(connection: HTTPConnection) -> None:
    sock = getattr(connection, "sock", None)
    if sock is not None:
        # shutdown(), not close(): it wakes a read blocked in another thread; the pool closes the socket.
        with contextlib.suppress(OSError):
            sock.shutdown(socket.SHUT_RDWR)


def _track(connection: HTTPConnection) -> None:
    watch: CallWatch | None = getattr(_current, "watch", None)
    if watch is not None:
        watch.track(connection)


class _WatchedHTTPConnection(HTTPConnection):
    def request(self, *args: Any, **kwargs: Any) -> None:  # type: ignore[override]
        _track(self)
        super().request(*args, **kwargs)


class _WatchedHTTPSConnection(HTTPSConnection):
    def request(self, *args: Any, **kwargs: Any) -> None:  # type: ignore[override]
        _track(self)
        super().request(*args, **kwargs)


class _WatchedHTTPPool(HTTPConnectionPool):
    ConnectionCls = _WatchedHTTPConnection


class _WatchedHTTPSPool(HTTPSConnectionPool):
    ConnectionCls = _WatchedHTTPSConnection


def _watch_pools(manager: PoolManager) -> PoolManager:
    manager.pool_classes_by_scheme = {"http": _WatchedHTTPPool, "https": _WatchedHTTPSPool}
    return manager


class WatchedAdapter(HTTPAdapter):
    """An ``HTTPAdapter`` whose connections a :class:`CallWatch` can shut down (proxied ones too)."""

    def init_poolmanager(self, *args: Any, **kwargs: Any) -> None:
        super().init_poolmanager(*args, **kwargs)
        _watch_pools(self.poolmanager)

    def proxy_manager_for(self, *args: Any, **kwargs: Any) -> Any:
        return _watch_pools(super().proxy_manager_for(*args, **kwargs))


__all__ = ["CallWatch", "WatchedAdapter"]
