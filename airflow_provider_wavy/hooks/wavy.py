"""Hook for the Wavy (Sinch) Messaging open-sessions API: the synchronous transport over ``protocol``."""

from __future__ import annotations

import time
from contextlib import contextmanager
from functools import cached_property
from http.cookiejar import DefaultCookiePolicy
from typing import TYPE_CHECKING, Any

import requests
from airflow.providers.common.compat.sdk import BaseHook, mask_secret
from urllib3.exceptions import DecodeError

from airflow_provider_wavy import CONN_TYPE, HOOK_NAME
from airflow_provider_wavy.exceptions import WavyDownloadError, WavyResponseError
from airflow_provider_wavy.exchange import Answer, Failure, Reply, Send, Sleep, exchange
from airflow_provider_wavy.exports import OPEN_SESSIONS, Export, WavyListType, list_export
from airflow_provider_wavy.hooks._connection_test import test_connection
from airflow_provider_wavy.hooks._download import DEFAULT_CHUNK_SIZE, TRANSFER_ERRORS, FileDownload
from airflow_provider_wavy.hooks._form import connection_form_widgets, ui_field_behaviour
from airflow_provider_wavy.hooks._requests_checks import (
    check_transport_origin,
    describe_transport_error,
    read_capped,
)
from airflow_provider_wavy.hooks._watchdog import CallWatch, WatchedAdapter
from airflow_provider_wavy.messages import tls_error, tls_failure_reason
from airflow_provider_wavy.protocol import (
    Call,
    Done,
    ExportCall,
    FirstRowCheck,
    ReadBody,
    new_export_call,
    new_file_call,
)
from airflow_provider_wavy.settings import WavySettings, connection_name
from airflow_provider_wavy.timing import BACKOFF_BASE, RetryPolicy
from airflow_provider_wavy.urls import check_file_url as _strict_file_url

if TYPE_CHECKING:
    from collections.abc import Iterator


class WavyHook(BaseHook):
    """
    Talk to the Wavy (Sinch) Messaging open-sessions API through a ``wavy`` connection.

    The connection's Host is the API base URL (empty for Wavy's public one), its Login the Wavy UserName
    and its Password the authentication token; extras ``customer_id``, ``sub_account_id``, ``timeout``
    and ``max_retries``.

    :param wavy_conn_id: the ``wavy`` connection to use.
    :param backoff_base: the first pause between retries, in seconds (doubling up to a minute).
    """

    conn_name_attr = "wavy_conn_id"
    default_conn_name = "wavy_default"
    conn_type = CONN_TYPE
    hook_name = HOOK_NAME

    def __init__(
        self,
        *,
        wavy_conn_id: str = default_conn_name,
        backoff_base: float = BACKOFF_BASE,
        **kwargs: Any,
    ) -> None:
        super().__init__(**kwargs)
        self.wavy_conn_id = wavy_conn_id
        self.backoff_base = backoff_base

    @classmethod
    def get_ui_field_behaviour(cls) -> dict[str, Any]:
        """Return the connection form's field behaviour (Airflow 2.11 reads it; 3.2+ the provider info)."""
        return ui_field_behaviour()

    @classmethod
    def get_connection_form_widgets(cls) -> dict[str, Any]:
        """Return the connection form's extra fields (Airflow 2.11 reads them; 3.2+ the provider info)."""
        return connection_form_widgets()

    @cached_property
    def settings(self) -> WavySettings:
        """Read the connection once (no I/O until first used)."""
        conn = self.get_connection(self.wavy_conn_id)
        settings = WavySettings.from_airflow_connection(conn, conn_id=self.wavy_conn_id)
        mask_secret(settings.token)
        if settings.sends_token_in_clear:
            self.log.warning(
                "%s uses plain http:// to %s: the authentication token travels unencrypted. "
                "Use https:// outside a local test set-up.",
                connection_name(self.wavy_conn_id, first=True),
                settings.base_url,
            )
        return settings

    @cached_property
    def session(self) -> requests.Session:
        """Return the HTTP session, built on first use and reused for keep-alive."""
        session = requests.Session()
        # Nothing the API sets may ride along to the file host (a cookie for a parent domain would).
        session.cookies.set_policy(DefaultCookiePolicy(allowed_domains=[]))
        # Retries are the protocol's (with Retry-After and logging), never urllib3's silent ones; the
        # adapter lets a call's deadline shut its sockets down.
        adapter = WatchedAdapter(max_retries=0, pool_connections=4, pool_maxsize=8)
        session.mount("https://", adapter)
        session.mount("http://", adapter)
        return session

    def get_conn(self) -> requests.Session:
        """Return the HTTP session (Airflow's hook interface)."""
        return self.session

    def _send(self, step: Send) -> requests.Response:
        """Send one GET, redirects not followed, its body streamed; the token only to its origin."""
        session = self.session
        request = step.request
        prepared = session.prepare_request(
            requests.Request("GET", request.url, params=dict(request.params), headers=dict(request.headers))
        )
        if step.carries_token:
            check_transport_origin(prepared.url or "", self.settings.origin)
        # What session.request() would add: proxies and the CA bundle from the environment. The adapter
        # sends; Session.send() is not used because even without following a redirect it reads the whole
        # redirect body and parses its Location with another parser.
        environment = session.merge_environment_settings(prepared.url, {}, True, None, None)
        adapter = session.get_adapter(prepared.url or "")
        return adapter.send(
            prepared,
            stream=True,
            timeout=step.timeout,
            verify=environment["verify"] if environment["verify"] is not None else True,
            cert=environment["cert"],
            proxies=environment["proxies"],
        )

    def _transport_failure(self, error: BaseException, where: str, watch: CallWatch) -> Failure:
        """Describe a failed exchange for a retry, or raise what retrying cannot fix."""
        if watch.expired:
            raise watch.deadline.exceeded(describe_transport_error(error, where, self.settings.timeout))
        if isinstance(error, requests.exceptions.SSLError) or tls_failure_reason(error) is not None:
            raise tls_error(where, tls_failure_reason(error)) from None
        return Failure(describe_transport_error(error, where, self.settings.timeout))

    def _exchange_once(
        self, step: Send, call: Call, watch: CallWatch
    ) -> tuple[Answer | Failure, requests.Response | None]:
        """Send one request; return what came back, and the response when its body is the caller's."""
        try:
            response = self._send(step)
        except TRANSFER_ERRORS as error:
            return self._transport_failure(error, call.where, watch), None
        status = response.status_code
        limit = call.body_limit(status)
        if limit is None:
            return Answer(status, response.headers, b""), response
        with response:
            try:
                body = read_capped(response, limit)
            except DecodeError:
                if 200 <= status <= 299:
                    raise WavyResponseError(
                        f"{call.where} sent an answer that does not decode as its Content-Encoding says; "
                        "check that the connection's host is the Wavy API."
                    ) from None
                body = b""  # the status says enough; the body only adds detail
            except TRANSFER_ERRORS as error:
                if 200 <= status <= 299:
                    return self._transport_failure(error, call.where, watch), None
                body = b""
        if watch.expired:
            # A shut-down socket can end an answer early without an error: it is not an answer.
            raise watch.deadline.exceeded()
        return Answer(status, response.headers, body), None

    def _run(self, call: Call, watch: CallWatch) -> tuple[Done | ReadBody, requests.Response | None]:
        """Drive a call through the one exchange loop: this transport only sends and sleeps."""
        steps = exchange(call, self.settings.timeout, self.log)
        reply: Reply = None
        kept: requests.Response | None = None
        while True:
            try:
                step = steps.send(reply)
            except StopIteration as stop:
                return stop.value, kept
            if isinstance(step, Sleep):
                time.sleep(step.seconds)
                reply = None
            else:
                reply, kept = self._exchange_once(step, call, watch)

    def get_open_sessions_file_url(
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
        :param timeout: the longest the whole call may take, retries included; the connection's
            ``call_timeout`` extra when shorter or not given.
        :return: the file URL, or None when the API has no file yet.
        """
        return self.get_export_file_url(OPEN_SESSIONS, customer_id, sub_account_id, timeout=timeout)

    def get_list_file_url(
        self,
        list_type: str | WavyListType,
        customer_id: str | None = None,
        sub_account_id: str | None = None,
        *,
        timeout: float | None = None,
    ) -> str | None:
        """
        Ask the API for a list's file (``GET /v1/list/{list_type}``).

        :param list_type: ``OPTOUT``, ``OPTIN``, ``BLACKLIST`` or ``WHITELIST``, in any case (or a
            :class:`~airflow_provider_wavy.exports.WavyListType`); checked before any request.
        :param customer_id: the customer id; defaults to the connection's ``customer_id`` extra.
        :param sub_account_id: the sub-account id; defaults to the connection's ``sub_account_id`` extra.
        :param timeout: the longest the whole call may take, retries included.
        :return: the file URL, or None when the list has nothing (an answer without ``data``).
        """
        return self.get_export_file_url(list_export(list_type), customer_id, sub_account_id, timeout=timeout)

    def get_export_file_url(
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
        :param customer_id: the customer id; defaults to the connection's ``customer_id`` extra.
        :param sub_account_id: the sub-account id; defaults to the connection's ``sub_account_id`` extra.
        :param timeout: the longest the whole call may take, retries included.
        """
        return self._run_call(self.export_call(export, customer_id, sub_account_id, timeout=timeout))

    def export_call(
        self,
        export: Export = OPEN_SESSIONS,
        customer_id: str | None = None,
        sub_account_id: str | None = None,
        *,
        timeout: float | None = None,
        policy: RetryPolicy | None = None,
    ) -> ExportCall:
        """
        Build one API call with this hook's settings (ids resolved once, deadline started now).

        :param export: what to ask for.
        :param customer_id: the customer id; defaults to the connection's extra.
        :param sub_account_id: the sub-account id; defaults to the connection's extra.
        :param timeout: the call's total time limit, if shorter than the connection's ``call_timeout``.
        :param policy: the retry policy; the connection's by default.
        """
        return new_export_call(
            self.settings,
            export,
            customer_id,
            sub_account_id,
            timeout=timeout,
            backoff_base=self.backoff_base,
            policy=policy,
        )

    def resolve_ids(self, customer_id: str | None, sub_account_id: str | None) -> tuple[str, str | None]:
        """
        Pick the customer and sub-account ids: the arguments first, then the connection's extras.

        :raises WavyConfigurationError: no customer id anywhere.
        """
        return self.settings.resolve_ids(customer_id, sub_account_id)

    @staticmethod
    def check_file_url(file_url: str) -> str:
        """
        Check a file URL given by hand (an operator's ``file_url``) as strictly as one from the API.

        :raises ValueError: the URL is not a plain absolute http(s) URL; the message says why.
        """
        return _strict_file_url(file_url)

    def _run_call(self, call: ExportCall) -> str | None:
        with CallWatch(call.deadline) as watch:
            outcome, _ = self._run(call, watch)
        assert isinstance(outcome, Done)  # an API call never hands out a body to read
        return outcome.file_url

    @contextmanager
    def open_file(
        self, file_url: str, *, timeout: float | None = None, max_bytes: int | None = None
    ) -> Iterator[FileDownload]:
        """
        Open a streamed download of a file the API named; no credential is sent to the file host.

        Connection errors, timeouts, 420, 429 and 5xx before the first byte are retried like API calls;
        redirects are followed here, to http(s) URLs only, reading no more than a few KiB of each.

        :param file_url: the URL the API returned.
        :param timeout: the longest the whole download may take; the connection's ``download_timeout``
            extra when shorter or not given.
        :param max_bytes: the largest decoded size accepted; the connection's ``max_file_bytes`` extra by
            default.
        """
        settings = self.settings
        call = new_file_call(settings, file_url, timeout=timeout, backoff_base=self.backoff_base)
        deadline = call.deadline
        with CallWatch(deadline) as watch:
            _, response = self._run(call, watch)
            assert response is not None  # a file call ends with the file's answer open
            with response:
                yield FileDownload(
                    response,
                    call.shown_url,
                    settings.timeout,
                    watch=watch,
                    max_bytes=max_bytes or settings.max_file_bytes,
                )

    def iter_file_chunks(self, file_url: str, chunk_size: int = DEFAULT_CHUNK_SIZE) -> Iterator[bytes]:
        """
        Yield a sessions file's bytes in chunks, checked against ``Content-Length`` at the end.

        :param file_url: the URL the API returned.
        :param chunk_size: the largest chunk to yield.
        """
        with self.open_file(file_url) as download:
            yield from download.iter_chunks(chunk_size)

    def file_has_rows(
        self, file_url: str, *, timeout: float | None = None, export: Export = OPEN_SESSIONS
    ) -> bool:
        """
        Tell whether an export's file holds a data row, reading it no further than that row.

        :param file_url: the URL the API returned.
        :param timeout: the longest the look may take.
        :param export: whose columns the file must have.
        :raises WavyResponseError: the file is not the open-sessions CSV.
        :raises WavyDownloadError: the file cannot be read (the CDN may lag behind the API).
        """
        with self.open_file(file_url, timeout=timeout) as download:
            check = FirstRowCheck(download.shown_url, export=export)
            for chunk in download.iter_chunks(64 * 1024):
                if check.feed(chunk):
                    return True
            return check.finish()

    def test_connection(self) -> tuple[bool, str]:
        """Check host and credentials with a real request (Airflow's Test button)."""
        return test_connection(self)


__all__ = [
    "FileDownload",
    "WavyDownloadError",
    "WavyHook",
    "check_transport_origin",
    "describe_transport_error",
]
