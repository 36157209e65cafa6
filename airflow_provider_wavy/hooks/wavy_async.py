"""Asynchronous hook for the Wavy API: the httpx transport over ``protocol``, for triggers."""

from __future__ import annotations

import asyncio
import math
from typing import TYPE_CHECKING, Any

import httpx
from airflow.providers.common.compat.sdk import BaseHook, mask_secret

from airflow_provider_wavy import CONN_TYPE, HOOK_NAME
from airflow_provider_wavy._compat import get_async_connection, get_async_extra_dejson
from airflow_provider_wavy.decoding import BodyDecoder, BodyDecodingError
from airflow_provider_wavy.exceptions import WavyDownloadError, WavyRedirectError, WavyResponseError
from airflow_provider_wavy.hooks._httpx_client import LOCATION_KEY, SharedClient, loop_client
from airflow_provider_wavy.protocol import (
    BACKOFF_BASE,
    MAX_ERROR_BODY,
    Deadline,
    Done,
    FileCall,
    FirstRowCheck,
    FollowRedirect,
    HttpRequest,
    Retry,
    RetryPolicy,
    SessionCall,
    WavySettings,
    body_limit,
    check_received_length,
    content_length,
    cut_short_error,
    describe_network_error,
    tls_error,
    tls_failure_reason,
    too_large_error,
)
from airflow_provider_wavy.urls import Origin, describe_url, same_origin

if TYPE_CHECKING:
    from collections.abc import Mapping


def describe_transport_error(error: BaseException, url: str, timeout: float) -> str:
    """
    Say in one line why an httpx call got no answer.

    :param error: the exception httpx raised.
    :param url: the origin or URL that was being reached (no secret in it).
    :param timeout: the timeout in force, for the message.
    """
    return describe_network_error(error, url, timeout, timed_out=isinstance(error, httpx.TimeoutException))


def check_transport_origin(url: httpx.URL, origin: Origin) -> None:
    """
    Refuse to send the token unless httpx itself would connect to ``origin`` (read with httpx's parser).

    :param url: the URL of the built request.
    :param origin: the only origin allowed to receive the token.
    """
    if not same_origin(url.scheme, url.host, url.port, origin):
        raise WavyRedirectError(
            f"A request to {describe_url(str(url))} would not go to the connection's origin "
            f"{origin[0]}://{origin[1]}:{origin[2]}; it was not sent, and the token with it."
        )


def _bound(seconds: float) -> float | None:
    return None if math.isinf(seconds) else seconds


def answer_headers(response: httpx.Response) -> dict[str, str]:
    """Return an answer's headers by lower-case name, with the ``Location`` the client set aside."""
    headers = {name.lower(): value for name, value in response.headers.items()}
    location = response.extensions.get(LOCATION_KEY)
    if isinstance(location, str):
        headers["location"] = location
    return headers


def _refused_location(error: httpx.RequestError) -> WavyRedirectError | None:
    """
    Tell whether httpx's HTTP parser refused a whole answer because of its ``Location`` line.

    h11 rejects a header line holding a control character before anyone can read it; when that line is
    a Location, the answer was a malformed redirect, which retrying cannot fix. h11 names the line in its
    message, the only place it says which one it was.
    """
    text = str(error)
    if (
        isinstance(error, httpx.RemoteProtocolError)
        and "illegal header line" in text
        and "location:" in text.lower()
    ):
        return WavyRedirectError(
            "A redirect's Location holds characters a URL may not (a control character); it was not followed."
        )
    return None


class WavyAsyncHook(BaseHook):
    """
    Talk to the Wavy API from an event loop (a trigger), through the same ``wavy`` connection.

    The protocol rules (retries, redirects, deadlines, caps) are the ones :class:`WavyHook` follows; this
    hook only sends with httpx and sleeps with asyncio. Many hooks of one loop share one client.

    :param wavy_conn_id: the ``wavy`` connection to use.
    :param backoff_base: the first pause between retries, in seconds.
    """

    conn_name_attr = "wavy_conn_id"
    default_conn_name = "wavy_default"
    conn_type = CONN_TYPE
    hook_name = HOOK_NAME

    def __init__(
        self, *, wavy_conn_id: str = default_conn_name, backoff_base: float = BACKOFF_BASE, **kwargs: Any
    ) -> None:
        super().__init__(**kwargs)
        self.wavy_conn_id = wavy_conn_id
        self.backoff_base = backoff_base
        self._settings: WavySettings | None = None

    async def get_settings(self) -> WavySettings:
        """Read the connection once, the async way (Airflow 3 triggers may not read it synchronously)."""
        if self._settings is None:
            conn = await get_async_connection(self.wavy_conn_id)
            extra = await get_async_extra_dejson(conn)
            settings = WavySettings.from_airflow_connection(conn, conn_id=self.wavy_conn_id, extra=extra)
            # The triggerer logs too: the token is masked there as on a worker.
            mask_secret(settings.token)
            if settings.sends_token_in_clear:
                self.log.warning(
                    "Connection %r uses plain http:// to %s: the authentication token travels unencrypted.",
                    self.wavy_conn_id,
                    settings.base_url,
                )
            self._settings = settings
        return self._settings

    def keep_client(self) -> Any:
        """Hold the loop's shared client open across several calls (``async with hook.keep_client():``)."""
        return loop_client()

    async def session_call(
        self,
        customer_id: str | None = None,
        sub_account_id: str | None = None,
        *,
        timeout: float | None = None,
    ) -> SessionCall:
        """
        Build one API call (ids resolved once, deadline started now).

        :param customer_id: the customer id; defaults to the connection's extra.
        :param sub_account_id: the sub-account id; defaults to the connection's extra.
        :param timeout: the call's total time limit, if shorter than the connection's ``call_timeout``.
        """
        settings = await self.get_settings()
        deadline = Deadline(
            min(settings.call_timeout, math.inf if timeout is None else max(timeout, 0.0)),
            what=f"The Wavy API call to {settings.base_url}",
            setting="the connection's 'call_timeout' extra",
        )
        policy = settings.retry_policy(backoff_base=self.backoff_base)
        return SessionCall(settings, customer_id, sub_account_id, policy=policy, deadline=deadline)

    async def get_open_sessions_file_url(
        self,
        customer_id: str | None = None,
        sub_account_id: str | None = None,
        *,
        timeout: float | None = None,
    ) -> str | None:
        """
        Ask the API for the open-sessions file of a customer.

        :param customer_id: the customer id; defaults to the connection's ``customer_id`` extra.
        :param sub_account_id: the sub-account id; defaults to the connection's ``sub_account_id`` extra.
        :param timeout: the longest the whole call may take, retries included.
        :return: the file URL, or None when the API has no file yet.
        """
        return await self.run_session_call(
            await self.session_call(customer_id, sub_account_id, timeout=timeout)
        )

    async def run_session_call(self, call: SessionCall) -> str | None:
        """Drive an API call to its end: send, sleep between retries, follow checked redirects."""
        settings = await self.get_settings()
        request = call.request
        async with loop_client() as client:
            while True:
                try:
                    async with asyncio.timeout(_bound(call.deadline.remaining())):
                        status, headers, body = await self._fetch(client, request, settings.origin)
                except TimeoutError:
                    raise call.deadline.exceeded() from None
                except BodyDecodingError as error:
                    raise WavyResponseError(
                        f"The Wavy API at {settings.base_url} sent an answer: {error}."
                    ) from None
                except httpx.RequestError as error:
                    outcome: Done | Retry | FollowRedirect = call.on_transport_error(
                        self._transport_failure(error, settings.base_url, settings.timeout)
                    )
                else:
                    outcome = call.on_response(status, headers, body)
                if isinstance(outcome, Done):
                    return outcome.file_url
                if isinstance(outcome, FollowRedirect):
                    request = outcome.request
                    continue
                await self._pause(outcome, call.policy)

    async def file_has_rows(self, file_url: str, *, timeout: float | None = None) -> bool:
        """
        Tell whether a sessions file holds a data row, reading it no further than that row.

        :param file_url: the URL the API returned.
        :param timeout: the longest the look may take; the connection's ``download_timeout`` at most.
        :raises WavyResponseError: the file is not the open-sessions CSV.
        :raises WavyDownloadError: the file cannot be read (the CDN may lag behind the API).
        """
        settings = await self.get_settings()
        deadline = Deadline(
            min(settings.download_timeout, math.inf if timeout is None else max(timeout, 0.0)),
            what=f"The look into {describe_url(file_url)}",
            setting="the wavy connection's 'download_timeout' extra",
            error=WavyDownloadError,
        )
        call = FileCall(
            file_url, policy=settings.retry_policy(backoff_base=self.backoff_base), deadline=deadline
        )
        try:
            async with loop_client() as client, asyncio.timeout(_bound(deadline.remaining())):
                return await self._look_for_rows(client, call, settings)
        except TimeoutError:
            raise deadline.exceeded() from None

    async def _look_for_rows(self, client: SharedClient, call: FileCall, settings: WavySettings) -> bool:
        request = call.request
        while True:
            try:
                async with self._open(client, request, None) as response:
                    if 200 <= response.status_code <= 299:
                        return await self._has_rows(response, call.shown_url, settings)
                    snippet = await _read_lenient(response, MAX_ERROR_BODY)
                    outcome = call.on_response(response.status_code, answer_headers(response), snippet)
            except httpx.RequestError as error:
                outcome = call.on_transport_error(
                    self._transport_failure(error, call.shown_url, settings.timeout)
                )
            if isinstance(outcome, FollowRedirect):
                request = outcome.request
            elif isinstance(outcome, Retry):
                await self._pause(outcome, call.policy)

    async def _has_rows(self, response: httpx.Response, shown_url: str, settings: WavySettings) -> bool:
        check = FirstRowCheck(shown_url)
        decoded = 0
        try:
            decoder = BodyDecoder(response.headers.get("content-encoding"))
            async for raw in response.aiter_raw():
                for piece in decoder.decode(raw):
                    if check.feed(piece):
                        return True
                    decoded += len(piece)
                    if decoded > settings.max_file_bytes:
                        raise too_large_error(shown_url, settings.max_file_bytes)
                    await asyncio.sleep(0)  # a large body never holds the loop
            decoder.finish()
        except BodyDecodingError as error:
            raise WavyDownloadError(f"The file at {shown_url} cannot be read: {error}.") from None
        except httpx.RequestError as error:
            if isinstance(error, httpx.TimeoutException):
                reason = describe_transport_error(error, "the file host", settings.timeout)
                raise WavyDownloadError(f"The download of {shown_url} failed: {reason}.") from None
            raise cut_short_error(
                response.num_bytes_downloaded, content_length(response.headers), shown_url
            ) from None
        check_received_length(response.num_bytes_downloaded, content_length(response.headers), shown_url)
        return check.finish()

    def _open(self, client: SharedClient, request: HttpRequest, token_origin: Origin | None) -> Any:
        built = client.client.build_request(
            "GET", request.url, params=dict(request.params), headers=dict(request.headers)
        )
        if token_origin is not None:
            check_transport_origin(built.url, token_origin)
        assert self._settings is not None
        return client.send(built, timeout=self._settings.timeout)

    async def _fetch(
        self, client: SharedClient, request: HttpRequest, token_origin: Origin
    ) -> tuple[int, Mapping[str, str], bytes]:
        """Send one API request; return its status, headers and body (decoded, read up to its cap)."""
        async with self._open(client, request, token_origin) as response:
            limit = body_limit(response.status_code)
            if 200 <= response.status_code <= 299:
                body = await _read_decoded(response, limit + 1)
            else:
                body = await _read_lenient(response, limit + 1)
            return response.status_code, answer_headers(response), body

    def _transport_failure(self, error: httpx.RequestError, where: str, timeout: float) -> str:
        if (refused := _refused_location(error)) is not None:
            raise refused
        if (reason := tls_failure_reason(error)) is not None:
            raise tls_error(where, reason) from None
        return describe_transport_error(error, where, timeout)

    async def _pause(self, retry: Retry, policy: RetryPolicy) -> None:
        self.log.warning(
            "Wavy: %s; retry %d of %d in %.1fs.", retry.reason, retry.number, policy.max_retries, retry.delay
        )
        await asyncio.sleep(retry.delay)


async def _read_decoded(response: httpx.Response, limit: int) -> bytes:
    """Read at most ``limit`` decoded bytes of a streamed answer, decoding step by step."""
    decoder = BodyDecoder(response.headers.get("content-encoding"))
    parts: list[bytes] = []
    size = 0
    async for raw in response.aiter_raw():
        for piece in decoder.decode(raw):
            parts.append(piece)
            size += len(piece)
            if size >= limit:
                return b"".join(parts)[:limit]
        await asyncio.sleep(0)
    return b"".join(parts)


async def _read_lenient(response: httpx.Response, limit: int) -> bytes:
    """Read the start of an error or redirect answer for its message; a body that fails to decode is empty."""
    try:
        return await _read_decoded(response, limit)
    except (BodyDecodingError, httpx.RequestError):
        return b""


__all__ = ["WavyAsyncHook", "check_transport_origin", "describe_transport_error"]
