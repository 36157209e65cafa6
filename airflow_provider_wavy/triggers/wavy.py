"""Trigger waiting for the Wavy open-sessions file: the asynchronous transport (httpx) over ``protocol``."""

from __future__ import annotations

import asyncio
import http.cookiejar
import logging
import math
import threading
import time
import weakref
from contextlib import asynccontextmanager
from dataclasses import dataclass, field
from datetime import UTC, datetime
from typing import TYPE_CHECKING, Any

import httpx
from airflow.triggers.base import BaseTrigger, TriggerEvent

from airflow_provider_wavy._compat import get_async_connection, get_async_extra_dejson
from airflow_provider_wavy.exceptions import (
    WavyConfigurationError,
    WavyDownloadError,
    WavyError,
    WavyTransientError,
)
from airflow_provider_wavy.protocol import (
    BACKOFF_BASE,
    Done,
    FileCall,
    FirstRowCheck,
    FollowRedirect,
    HttpRequest,
    Retry,
    RetryPolicy,
    SessionCall,
    WavySettings,
    check_received_length,
    content_length,
    describe_network_error,
    describe_url,
    tls_error,
    tls_failure_reason,
)

if TYPE_CHECKING:
    import ssl
    from collections.abc import AsyncIterator

#: An API answer larger than this is not Wavy's small JSON: read no further than needed to say so.
MAX_API_BODY = 1024 * 1024
#: Enough of an error answer to quote its reason.
MAX_ERROR_BODY = 4096
#: The shortest pause between two polls, whatever ``poke_interval`` says: a trigger never spins.
MIN_POLL_INTERVAL = 0.1

#: How many triggers of one event loop may read their connection at the same time.
START_CONCURRENCY = 8
#: Connections of the client the triggers of one event loop share (requests beyond wait for one).
POOL_CONNECTIONS = 32
#: Seconds an idle connection is kept for the next poll (servers often close them after 60-75 s).
KEEPALIVE_EXPIRY = 30.0

_ssl_context: ssl.SSLContext | None = None
_ssl_lock = threading.Lock()


class _HttpxUrlsWithoutQuery(logging.Filter):
    """
    Show httpx's "HTTP Request: GET <url>" lines without the URL's query string.

    A signed file URL's signature sits in its query string. Airflow 3 already keeps the ``httpx`` logger at
    WARNING; Airflow 2.11 leaves it at INFO, where a triggerer would log each signed URL whole.
    """

    def filter(self, record: logging.LogRecord) -> bool:
        if isinstance(record.args, tuple) and any(isinstance(arg, httpx.URL) for arg in record.args):
            record.args = tuple(
                describe_url(str(arg)) if isinstance(arg, httpx.URL) else arg for arg in record.args
            )
        return True


def _install_httpx_log_filter() -> None:
    logger = logging.getLogger("httpx")
    if not any(isinstance(existing, _HttpxUrlsWithoutQuery) for existing in logger.filters):
        logger.addFilter(_HttpxUrlsWithoutQuery())


_install_httpx_log_filter()
_start_gates: weakref.WeakKeyDictionary[asyncio.AbstractEventLoop, asyncio.Semaphore] = (
    weakref.WeakKeyDictionary()
)


@dataclass
class _SharedClient:
    """The HTTP client the Wavy triggers of one event loop share, with its request slots and users."""

    client: httpx.AsyncClient
    slots: asyncio.Semaphore = field(default_factory=lambda: asyncio.Semaphore(POOL_CONNECTIONS))
    users: int = 0

    @asynccontextmanager
    async def stream(self, method: str, url: str, **kwargs: Any) -> AsyncIterator[httpx.Response]:
        """Send a request once a connection slot is free, and stream its answer."""
        # Queue here rather than in httpx's pool: each step of that pool scans every waiting request
        # against every connection, which a thousand triggers polling together turn into seconds of CPU.
        async with self.slots, self.client.stream(method, url, **kwargs) as response:
            yield response


_clients: weakref.WeakKeyDictionary[asyncio.AbstractEventLoop, _SharedClient] = weakref.WeakKeyDictionary()


def _no_cookies() -> http.cookiejar.CookieJar:
    # Triggers of different connections share the client: a cookie set for one must never reach another.
    return http.cookiejar.CookieJar(policy=http.cookiejar.DefaultCookiePolicy(allowed_domains=[]))


@asynccontextmanager
async def _loop_client() -> AsyncIterator[_SharedClient]:
    """
    Lend the running loop's HTTP client, closing it when its last trigger ends.

    A triggerer holds many deferred sensors in one loop: one client with a small keep-alive pool polls for
    all of them (a new connection costs about twice the CPU of a reused one), and between polls a trigger
    holds no socket of its own. Headers, hence credentials, are per request; cookies are refused.
    """
    loop = asyncio.get_running_loop()
    shared = _clients.get(loop)
    if shared is None:
        ssl_context = await shared_ssl_context()
        shared = _clients.get(loop)  # another trigger may have built it meanwhile
        if shared is None:
            shared = _clients[loop] = _SharedClient(
                httpx.AsyncClient(
                    verify=ssl_context,
                    cookies=_no_cookies(),
                    limits=httpx.Limits(
                        max_connections=POOL_CONNECTIONS,
                        max_keepalive_connections=POOL_CONNECTIONS,
                        keepalive_expiry=KEEPALIVE_EXPIRY,
                    ),
                    follow_redirects=False,
                )
            )
    shared.users += 1
    try:
        yield shared
    finally:
        shared.users -= 1
        if shared.users == 0 and _clients.get(loop) is shared:
            del _clients[loop]
            await shared.client.aclose()


def _start_gate() -> asyncio.Semaphore:
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


def describe_transport_error(error: BaseException, url: str, timeout: float) -> str:
    """
    Say in one line why an httpx call got no answer.

    :param error: the exception httpx raised.
    :param url: the origin or URL that was being reached (no secret in it).
    :param timeout: the timeout in force, for the message.
    """
    return describe_network_error(error, url, timeout, timed_out=isinstance(error, httpx.TimeoutException))


def _timeout(seconds: float) -> httpx.Timeout:
    # Waiting for a pooled connection is not the server's fault: the trigger's deadline bounds it.
    return httpx.Timeout(seconds, pool=None)


async def _read_limited(response: httpx.Response, limit: int) -> bytes:
    """Read at most ``limit`` bytes of a streamed answer: a trigger never holds a large body."""
    parts: list[bytes] = []
    size = 0
    async for chunk in response.aiter_bytes():
        parts.append(chunk)
        size += len(chunk)
        if size >= limit:
            break
    return b"".join(parts)[:limit]


class _DeadlineReachedError(Exception):
    """The trigger's own deadline passed."""


class WavyOpenSessionsTrigger(BaseTrigger):
    """
    Wait on the triggerer until the Wavy API returns an open-sessions file URL (and, optionally, rows in it).

    Yields exactly one event, a dict with ``status``:

    - ``"success"`` with ``file_url``;
    - ``"error"`` with ``error_class`` (a class name from ``airflow_provider_wavy.exceptions``) and
      ``message``: authentication errors, a missing customer id, a malformed answer;
    - ``"timeout"`` with ``message``, once ``deadline`` has passed.

    Transient failures (connection errors, timeouts, 420, 429, 5xx, a file not yet on the CDN) are retried
    with backoff inside the trigger until the deadline.

    :param wavy_conn_id: the ``wavy`` connection to use.
    :param customer_id: the customer id; None for the connection's ``customer_id`` extra.
    :param sub_account_id: the sub-account id; None for the connection's ``sub_account_id`` extra.
    :param require_rows: also wait until the file holds at least one data row.
    :param poke_interval: seconds between two polls.
    :param exponential_backoff: double the pause after each poll that found nothing.
    :param max_wait: the longest pause between polls with ``exponential_backoff``, in seconds.
    :param deadline: the absolute time (epoch seconds) after which a ``timeout`` event is yielded.
    :param backoff_base: the first pause between retries of a transient failure, in seconds.
    """

    def __init__(
        self,
        *,
        wavy_conn_id: str = "wavy_default",
        customer_id: str | None = None,
        sub_account_id: str | None = None,
        require_rows: bool = False,
        poke_interval: float = 60.0,
        exponential_backoff: bool = False,
        max_wait: float | None = None,
        deadline: float | None = None,
        backoff_base: float = BACKOFF_BASE,
    ) -> None:
        super().__init__()  # type: ignore[no-untyped-call]
        if deadline is not None and not math.isfinite(deadline):
            raise ValueError(f"deadline must be a finite epoch time in seconds, got {deadline!r}")
        self.wavy_conn_id = wavy_conn_id
        self.customer_id = customer_id
        self.sub_account_id = sub_account_id
        self.require_rows = require_rows
        self.poke_interval = float(poke_interval)
        self.exponential_backoff = exponential_backoff
        self.max_wait = None if max_wait is None else float(max_wait)
        self.deadline = None if deadline is None else float(deadline)
        self.backoff_base = float(backoff_base)

    def serialize(self) -> tuple[str, dict[str, Any]]:
        """Return the class path and JSON-safe kwargs: ids and timings, never the token (read at run time)."""
        return (
            f"{type(self).__module__}.{type(self).__qualname__}",
            {
                "wavy_conn_id": self.wavy_conn_id,
                "customer_id": self.customer_id,
                "sub_account_id": self.sub_account_id,
                "require_rows": self.require_rows,
                "poke_interval": self.poke_interval,
                "exponential_backoff": self.exponential_backoff,
                "max_wait": self.max_wait,
                "deadline": self.deadline,
                "backoff_base": self.backoff_base,
            },
        )

    # -- the wait -------------------------------------------------------------------------------------------

    async def run(self) -> AsyncIterator[TriggerEvent]:
        """Poll until the file is there, a fatal error happens or the deadline passes; yield one event."""
        try:
            event = await self._wait()
        except (WavyError, ValueError) as error:
            event = self._error_event(error)
        except Exception as error:  # noqa: BLE001 - the task must fail with a message, not hang deferred
            event = {
                "status": "error",
                "error_class": "WavyError",
                "message": f"Unexpected {type(error).__name__} while waiting for the Wavy sessions file: "
                f"{error}",
            }
        yield TriggerEvent(event)  # type: ignore[no-untyped-call]

    def _error_event(self, error: Exception) -> dict[str, Any]:
        # A missing customer id (ValueError from the protocol) is a configuration error: fail at once.
        name = type(error).__name__ if isinstance(error, WavyError) else WavyConfigurationError.__name__
        return {"status": "error", "error_class": name, "message": str(error)}

    def _timeout_event(self) -> dict[str, Any]:
        what = "with data rows " if self.require_rows else ""
        when = datetime.fromtimestamp(self.deadline or 0, UTC).isoformat(timespec="seconds")
        return {
            "status": "timeout",
            "message": f"Sensor has timed out: no Wavy open-sessions file {what}by the deadline {when}.",
        }

    def _remaining(self) -> float:
        return math.inf if self.deadline is None else self.deadline - time.time()

    def _interval(self, polls: int) -> float:
        interval = self.poke_interval
        if self.exponential_backoff:
            interval = self.poke_interval * 2 ** min(polls - 1, 30)
            if self.max_wait is not None:
                interval = min(interval, self.max_wait)
        return max(interval, MIN_POLL_INTERVAL)

    async def _settings(self) -> WavySettings:
        conn = await get_async_connection(self.wavy_conn_id)
        extra = await get_async_extra_dejson(conn)
        return WavySettings.from_airflow_connection(conn, conn_id=self.wavy_conn_id, extra=extra)

    async def _wait(self) -> dict[str, Any]:
        if self._remaining() <= 0:
            return self._timeout_event()
        # Reading the connection and building requests is CPU work: when a triggerer starts a thousand of
        # these at once, the gate lets a few through at a time instead of freezing the loop for seconds.
        async with _start_gate():
            settings = await self._settings()
            # Fail at once on a missing customer id, before any request.
            settings.resolve_ids(self.customer_id, self.sub_account_id)
        if settings.sends_token_in_clear:
            self.log.warning(
                "Connection %r uses plain http:// to %s: the authentication token travels unencrypted.",
                self.wavy_conn_id,
                settings.base_url,
            )
        policy = settings.retry_policy(backoff_base=self.backoff_base)
        async with _loop_client() as client:
            return await self._poll_until_done(client, settings, policy)

    async def _poll_until_done(
        self, client: _SharedClient, settings: WavySettings, policy: RetryPolicy
    ) -> dict[str, Any]:
        polls = 0
        last_look = False
        while True:
            polls += 1
            # The last look, at the deadline, gets one request's time, as a sync sensor's last poke does.
            budget = settings.timeout if last_look else self._remaining()
            if budget <= 0:
                return self._timeout_event()
            try:
                async with asyncio.timeout(budget):
                    file_url = await self._poll(client, settings, policy, polls)
            except TimeoutError:
                return self._timeout_event()
            if file_url is not None:
                self.log.info("Wavy open-sessions file is ready: %s", describe_url(file_url))
                return {"status": "success", "file_url": file_url}
            if last_look:
                return self._timeout_event()
            interval = self._interval(polls)
            remaining = self._remaining()
            if remaining <= interval:
                # The next poll would come after the deadline: look once more at the deadline itself.
                await asyncio.sleep(max(0.0, remaining))
                last_look = True
                continue
            await asyncio.sleep(interval)

    async def _poll(
        self, client: _SharedClient, settings: WavySettings, policy: RetryPolicy, polls: int = 1
    ) -> str | None:
        """Return the file URL when the condition holds, None to keep waiting; raise on fatal errors."""
        call = SessionCall(settings, self.customer_id, self.sub_account_id, policy=policy)
        try:
            file_url = await self._ask_api(client, call)
        except WavyTransientError as error:
            self.log.warning("Wavy: %s Still waiting.", error)
            return None
        if file_url is None:
            # Once at INFO, then DEBUG: a triggerer holding thousands of sensors should not log each poll.
            self.log.log(
                logging.INFO if polls == 1 else logging.DEBUG,
                "No Wavy open-sessions file yet for customer %s; checking every %gs.",
                call.customer_id,
                self._interval(polls),
            )
            return None
        if not self.require_rows:
            return file_url
        try:
            rows = await self._file_has_rows(client, file_url, policy, settings.timeout)
        except (WavyDownloadError, WavyTransientError) as error:
            # The CDN may lag behind the API (403/404 for a while): that is "not ready yet".
            self.log.warning("Wavy: %s Still waiting.", error)
            return None
        if not rows:
            self.log.info("The Wavy sessions file has no data row yet (header only); still waiting.")
            return None
        return file_url

    async def _pause(self, retry: Retry, policy: RetryPolicy) -> None:
        self.log.warning(
            "Wavy: %s; retry %d of %d in %.1fs.", retry.reason, retry.number, policy.max_retries, retry.delay
        )
        await asyncio.sleep(retry.delay)

    async def _ask_api(self, client: _SharedClient, call: SessionCall) -> str | None:
        settings = call.settings
        request: HttpRequest = call.request
        while True:
            outcome: Done | Retry | FollowRedirect
            try:
                async with client.stream(
                    "GET",
                    request.url,
                    params=dict(request.params),
                    headers=dict(request.headers),
                    timeout=_timeout(settings.timeout),
                ) as response:
                    body = await _read_limited(response, MAX_API_BODY)
            except httpx.RequestError as error:
                if (tls_reason := tls_failure_reason(error)) is not None:
                    raise tls_error(settings.base_url, tls_reason) from None
                outcome = call.on_transport_error(
                    describe_transport_error(error, settings.base_url, settings.timeout)
                )
            else:
                outcome = call.on_response(response.status_code, response.headers, body)
            if isinstance(outcome, Done):
                return outcome.file_url
            if isinstance(outcome, FollowRedirect):
                request = outcome.request
                continue
            await self._pause(outcome, call.policy)

    async def _file_has_rows(
        self, client: _SharedClient, file_url: str, policy: RetryPolicy, timeout: float
    ) -> bool:
        call = FileCall(file_url, policy=policy)
        while True:
            outcome: Done | Retry
            try:
                async with client.stream(
                    "GET",
                    call.request.url,
                    headers=dict(call.request.headers),
                    follow_redirects=True,
                    timeout=_timeout(timeout),
                ) as response:
                    if 200 <= response.status_code <= 299:
                        return await self._has_rows(response, call.shown_url, timeout)
                    snippet = await _read_limited(response, MAX_ERROR_BODY)
            except httpx.RequestError as error:
                if (tls_reason := tls_failure_reason(error)) is not None:
                    raise tls_error(call.shown_url, tls_reason) from None
                outcome = call.on_transport_error(describe_transport_error(error, call.shown_url, timeout))
            else:
                outcome = call.on_response(response.status_code, response.headers, snippet)
            if isinstance(outcome, Done):  # pragma: no cover - 2xx returned above
                return False
            await self._pause(outcome, policy)

    async def _has_rows(self, response: httpx.Response, shown_url: str, timeout: float) -> bool:
        """Read the file only until its first data row: the sensor needs to know, not to download."""
        check = FirstRowCheck(shown_url)
        try:
            async for chunk in response.aiter_bytes():
                if check.feed(chunk):
                    return True
            check_received_length(response.num_bytes_downloaded, content_length(response.headers), shown_url)
            return check.finish()
        except httpx.RequestError as error:
            raise WavyDownloadError(
                f"The download of {shown_url} failed: {describe_transport_error(error, shown_url, timeout)}."
            ) from None


__all__ = ["WavyOpenSessionsTrigger", "describe_transport_error", "shared_ssl_context"]
