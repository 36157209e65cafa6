"""Asynchronous hook for the Wavy API: the httpx transport over ``protocol``, for triggers."""

from __future__ import annotations

import asyncio
import math
from contextlib import AsyncExitStack
from typing import Any

import httpx
from airflow.providers.common.compat.sdk import BaseHook, mask_secret

from airflow_provider_wavy import CONN_TYPE, HOOK_NAME
from airflow_provider_wavy._compat import get_async_connection
from airflow_provider_wavy.decoding import BodyDecoder, BodyDecodingError
from airflow_provider_wavy.exceptions import WavyDownloadError, WavyRedirectError, WavyResponseError
from airflow_provider_wavy.exchange import Answer, Failure, Reply, Send, Sleep, exchange
from airflow_provider_wavy.exports import OPEN_SESSIONS, Export, WavyListType, list_export
from airflow_provider_wavy.hooks._httpx_client import LOCATION_KEY, SharedClient, loop_client
from airflow_provider_wavy.messages import (
    cut_short_error,
    describe_network_error,
    tls_error,
    tls_failure_reason,
    too_large_error,
)
from airflow_provider_wavy.protocol import (
    Call,
    Done,
    FirstRowCheck,
    ReadBody,
    check_received_length,
    content_length,
    new_export_call,
    new_file_call,
)
from airflow_provider_wavy.settings import WavySettings, connection_name
from airflow_provider_wavy.timing import BACKOFF_BASE
from airflow_provider_wavy.urls import Origin, describe_url, same_origin


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
            settings = WavySettings.from_airflow_connection(conn, conn_id=self.wavy_conn_id)
            # The triggerer logs too: the token is masked there as on a worker.
            mask_secret(settings.token)
            if settings.sends_token_in_clear:
                self.log.warning(
                    "%s uses plain http:// to %s: the authentication token travels unencrypted.",
                    connection_name(self.wavy_conn_id, first=True),
                    settings.base_url,
                )
            self._settings = settings
        return self._settings

    def keep_client(self) -> Any:
        """Hold the loop's shared client open across several calls (``async with hook.keep_client():``)."""
        return loop_client()

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
        return await self.get_export_file_url(OPEN_SESSIONS, customer_id, sub_account_id, timeout=timeout)

    async def get_list_file_url(
        self,
        list_type: str | WavyListType,
        customer_id: str | None = None,
        sub_account_id: str | None = None,
        *,
        timeout: float | None = None,
    ) -> str | None:
        """
        Ask the API for a list's file (``GET /v1/list/{list_type}``), as ``WavyHook.get_list_file_url``.

        :param list_type: ``OPTOUT``, ``OPTIN``, ``BLACKLIST`` or ``WHITELIST``, in any case.
        :param customer_id: the customer id; defaults to the connection's ``customer_id`` extra.
        :param sub_account_id: the sub-account id; defaults to the connection's ``sub_account_id`` extra.
        :param timeout: the longest the whole call may take, retries included.
        """
        export = list_export(list_type)
        return await self.get_export_file_url(export, customer_id, sub_account_id, timeout=timeout)

    async def get_export_file_url(
        self,
        export: Export,
        customer_id: str | None = None,
        sub_account_id: str | None = None,
        *,
        timeout: float | None = None,
    ) -> str | None:
        """
        Ask the API for the file of any export (the open sessions, a list).

        :param export: what to ask for.
        :param customer_id: the customer id; defaults to the connection's extra.
        :param sub_account_id: the sub-account id; defaults to the connection's extra.
        :param timeout: the longest the whole call may take, retries included.
        """
        settings = await self.get_settings()
        call = new_export_call(
            settings, export, customer_id, sub_account_id, timeout=timeout, backoff_base=self.backoff_base
        )
        deadline = call.deadline
        try:
            async with loop_client() as client, AsyncExitStack() as stack:
                async with asyncio.timeout(_bound(deadline.remaining())):
                    outcome, _ = await self._run(call, client, stack)
        except TimeoutError:
            raise deadline.exceeded() from None
        assert isinstance(outcome, Done)  # an API call never hands out a body to read
        return outcome.file_url

    async def file_has_rows(
        self, file_url: str, *, timeout: float | None = None, export: Export = OPEN_SESSIONS
    ) -> bool:
        """
        Tell whether an export's file holds a data row, reading it no further than that row.

        :param file_url: the URL the API returned.
        :param timeout: the longest the look may take; the connection's ``download_timeout`` at most.
        :param export: whose columns the file must have.
        :raises WavyResponseError: the file is not the export's CSV.
        :raises WavyDownloadError: the file cannot be read (the CDN may lag behind the API).
        """
        settings = await self.get_settings()
        call = new_file_call(settings, file_url, timeout=timeout, backoff_base=self.backoff_base)
        deadline = call.deadline
        try:
            async with loop_client() as client, AsyncExitStack() as stack:
                async with asyncio.timeout(_bound(deadline.remaining())):
                    _, response = await self._run(call, client, stack)
                    assert response is not None  # a file call ends with the file's answer open
                    return await self._has_rows(response, call.shown_url, settings, export)
        except TimeoutError:
            raise deadline.exceeded() from None

    async def _run(
        self, call: Call, client: SharedClient, stack: AsyncExitStack
    ) -> tuple[Done | ReadBody, httpx.Response | None]:
        """Drive a call through the one exchange loop: this transport only sends and sleeps."""
        settings = await self.get_settings()
        steps = exchange(call, settings.timeout, self.log)
        reply: Reply = None
        kept: httpx.Response | None = None
        while True:
            try:
                step = steps.send(reply)
            except StopIteration as stop:
                return stop.value, kept
            if isinstance(step, Sleep):
                await asyncio.sleep(step.seconds)
                reply = None
            else:
                reply, kept = await self._exchange_once(step, call, client, stack)

    async def _exchange_once(
        self, step: Send, call: Call, client: SharedClient, stack: AsyncExitStack
    ) -> tuple[Answer | Failure, httpx.Response | None]:
        """Send one request; return what came back, and the response when its body is the caller's."""
        settings = await self.get_settings()
        request = step.request
        built = client.client.build_request(
            "GET", request.url, params=dict(request.params), headers=dict(request.headers)
        )
        if step.carries_token:
            check_transport_origin(built.url, settings.origin)
        async with AsyncExitStack() as exchange_stack:
            try:
                response = await exchange_stack.enter_async_context(client.send(built, timeout=step.timeout))
            except httpx.RequestError as error:
                return self._transport_failure(error, call.where, settings.timeout), None
            status = response.status_code
            limit = call.body_limit(status)
            if limit is None:
                # The body is the caller's: its connection stays open until the caller's stack closes.
                stack.push_async_exit(exchange_stack.pop_all())
                return Answer(status, answer_headers(response), b""), response
            if not 200 <= status <= 299:
                return Answer(
                    status, answer_headers(response), await _read_lenient(response, limit + 1)
                ), None
            try:
                body = await _read_decoded(response, limit + 1)
            except BodyDecodingError as error:
                raise WavyResponseError(
                    f"{call.where} sent an answer that does not decode: {error}."
                ) from None
            except httpx.RequestError as error:
                return self._transport_failure(error, call.where, settings.timeout), None
            return Answer(status, answer_headers(response), body), None

    async def _has_rows(
        self, response: httpx.Response, shown_url: str, settings: WavySettings, export: Export
    ) -> bool:
        check = FirstRowCheck(shown_url, export=export)
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

    def _transport_failure(self, error: httpx.RequestError, where: str, timeout: float) -> Failure:
        if (refused := _refused_location(error)) is not None:
            raise refused
        if (reason := tls_failure_reason(error)) is not None:
            raise tls_error(where, reason) from None
        return Failure(describe_transport_error(error, where, timeout))


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
