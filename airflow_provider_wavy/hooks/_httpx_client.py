"""
The httpx client the Wavy triggers of one event loop share: TLS context, request slots, start gate, logs.

A triggerer holds many deferred sensors in one loop: one client with a small keep-alive pool polls for all
of them (a new connection costs about twice the CPU of a reused one), and between polls a trigger holds no
socket of its own. Headers, hence credentials, are per request; cookies are refused.
"""

from __future__ import annotations

import asyncio
import http.cookiejar
import logging
import threading
import weakref
from contextlib import asynccontextmanager
from dataclasses import dataclass, field
from typing import TYPE_CHECKING

import httpx

from airflow_provider_wavy.urls import describe_url

if TYPE_CHECKING:
    import ssl
    from collections.abc import AsyncIterator

#: How many triggers of one event loop may read their connection at the same time.
START_CONCURRENCY = 8
#: Connections of the client the triggers of one event loop share (requests beyond wait for one).
POOL_CONNECTIONS = 32
#: Seconds an idle connection is kept for the next poll (servers often close them after 60-75 s).
KEEPALIVE_EXPIRY = 30.0

_ssl_context: ssl.SSLContext | None = None
_ssl_lock = threading.Lock()
_start_gates: weakref.WeakKeyDictionary[asyncio.AbstractEventLoop, asyncio.Semaphore] = (
    weakref.WeakKeyDictionary()
)


class _OwnUrlsWithoutQuery(logging.Filter):
    """
    Show httpx's "HTTP Request: GET <url>" lines of the provider's own requests without the query string.

    A signed file URL's signature sits in its query string. Airflow 3 keeps the ``httpx`` logger at WARNING;
    Airflow 2.11 leaves it at INFO, where a triggerer would log each signed URL whole. Only records whose
    URL is one of the provider's requests in flight are changed: other httpx users' lines stay as they are.
    """

    def __init__(self) -> None:
        super().__init__()
        self.in_flight: set[int] = set()

    def filter(self, record: logging.LogRecord) -> bool:
        if isinstance(record.args, tuple) and any(id(arg) in self.in_flight for arg in record.args):
            record.args = tuple(
                describe_url(str(arg)) if id(arg) in self.in_flight else arg for arg in record.args
            )
        return True


_log_filter = _OwnUrlsWithoutQuery()

#: Where the response hook keeps a redirect's ``Location``, out of httpx's reach.
LOCATION_KEY = "wavy_location"


async def _take_location(response: httpx.Response) -> None:
    """
    Move a redirect's ``Location`` out of the headers before httpx parses it.

    httpx builds the next request of every redirect, followed or not, with its own URL parser: a Location
    that parser refuses would fail the exchange as a protocol error (retried as transient), and one it
    reads differently from the provider's must never be acted on. The protocol decides alone.
    """
    if "location" in response.headers:
        response.extensions[LOCATION_KEY] = response.headers["location"]
        del response.headers["location"]


@dataclass
class SharedClient:
    """The HTTP client the Wavy triggers of one event loop share, with its request slots and users."""

    client: httpx.AsyncClient
    slots: asyncio.Semaphore = field(default_factory=lambda: asyncio.Semaphore(POOL_CONNECTIONS))
    users: int = 0

    @asynccontextmanager
    async def send(self, request: httpx.Request, timeout: float) -> AsyncIterator[httpx.Response]:
        """Send a request once a connection slot is free, and stream its answer."""
        # Queue here rather than in httpx's pool: each step of that pool scans every waiting request
        # against every connection, which a thousand triggers polling together turn into seconds of CPU.
        # Waiting for a pooled connection is not the server's fault: the caller's deadline bounds it.
        request.extensions["timeout"] = httpx.Timeout(timeout, pool=None).as_dict()
        key = id(request.url)
        _log_filter.in_flight.add(key)
        try:
            async with self.slots:
                response = await self.client.send(request, stream=True)
                try:
                    yield response
                finally:
                    await response.aclose()
        finally:
            _log_filter.in_flight.discard(key)


_clients: weakref.WeakKeyDictionary[asyncio.AbstractEventLoop, SharedClient] = weakref.WeakKeyDictionary()


def _no_cookies() -> http.cookiejar.CookieJar:
    # Triggers of different connections share the client: a cookie set for one must never reach another.
    return http.cookiejar.CookieJar(policy=http.cookiejar.DefaultCookiePolicy(allowed_domains=[]))


def _new_client(ssl_context: ssl.SSLContext) -> SharedClient:
    logger = logging.getLogger("httpx")
    if _log_filter not in logger.filters:
        logger.addFilter(_log_filter)
    return SharedClient(
        httpx.AsyncClient(
            verify=ssl_context,
            cookies=_no_cookies(),
            limits=httpx.Limits(
                max_connections=POOL_CONNECTIONS,
                max_keepalive_connections=POOL_CONNECTIONS,
                keepalive_expiry=KEEPALIVE_EXPIRY,
            ),
            follow_redirects=False,
            event_hooks={"response": [_take_location]},
        )
    )


@asynccontextmanager
async def loop_client() -> AsyncIterator[SharedClient]:
    """Lend the running loop's HTTP client, closing it when its last user ends."""
    loop = asyncio.get_running_loop()
    shared = _clients.get(loop)
    if shared is None:
        ssl_context = await shared_ssl_context()
        shared = _clients.get(loop)  # another trigger may have built it meanwhile
        if shared is None:
            shared = _clients[loop] = _new_client(ssl_context)
    shared.users += 1
    try:
        yield shared
    finally:
        shared.users -= 1
        if shared.users == 0 and _clients.get(loop) is shared:
            del _clients[loop]
            await shared.client.aclose()
            if not _clients:
                logging.getLogger("httpx").removeFilter(_log_filter)


def start_gate() -> asyncio.Semaphore:
    """Return the running loop's gate (a semaphore belongs to one loop; tests run many loops)."""
    loop = asyncio.get_running_loop()
    gate = _start_gates.get(loop)
    if gate is None:
        gate = _start_gates[loop] = asyncio.Semaphore(START_CONCURRENCY)
    return gate


def _build_ssl_context() -> ssl.SSLContext:
    global _ssl_context  # noqa: PLW0603 - one context per process is the point
    with _ssl_lock:
        if _ssl_context is None:
            _ssl_context = httpx.create_ssl_context(verify=True, trust_env=True)
        return _ssl_context


async def shared_ssl_context() -> ssl.SSLContext:
    """
    Return the process-wide TLS context, loading the CA bundle in a worker thread the first time.

    Loading CA certificates takes tens of milliseconds and a few hundred KiB: done per trigger, it would
    stall the triggerer's event loop and multiply its memory by the number of deferred sensors.
    """
    if _ssl_context is not None:
        return _ssl_context
    return await asyncio.to_thread(_build_ssl_context)


__all__ = ["LOCATION_KEY", "SharedClient", "loop_client", "shared_ssl_context", "start_gate"]
