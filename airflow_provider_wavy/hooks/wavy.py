"""Hook for the Wavy (Sinch) Messaging open-sessions API: the synchronous transport over ``protocol``."""

from __future__ import annotations

import http.client
import time
from contextlib import contextmanager
from functools import cached_property
from http.cookiejar import DefaultCookiePolicy
from typing import TYPE_CHECKING, Any

import requests
from airflow.providers.common.compat.sdk import BaseHook, mask_secret
from requests.adapters import HTTPAdapter
from urllib3.exceptions import HTTPError as Urllib3Error

from airflow_provider_wavy import CONN_FIELDS, CONN_TYPE, HOOK_NAME, UI_FIELD_BEHAVIOUR
from airflow_provider_wavy.exceptions import (
    WavyDownloadError,
    WavyError,
    WavyRequestError,
)
from airflow_provider_wavy.protocol import (
    BACKOFF_BASE,
    Done,
    FileCall,
    FollowRedirect,
    HttpRequest,
    Retry,
    RetryPolicy,
    SessionCall,
    WavySettings,
    check_received_length,
    content_length,
    describe_network_error,
    tls_error,
    tls_failure_reason,
)

if TYPE_CHECKING:
    import mmap
    from collections.abc import Iterator

#: An API answer larger than this is not Wavy's small JSON: read no further than needed to say so.
MAX_API_BODY = 1024 * 1024
DEFAULT_CHUNK_SIZE = 1024 * 1024


def describe_transport_error(error: BaseException, url: str, timeout: float) -> str:
    """
    Say in one line why a ``requests`` call got no answer.

    :param error: the exception ``requests`` or urllib3 raised.
    :param url: the origin or URL that was being reached (no secret in it).
    :param timeout: the timeout in force, for the message.
    """
    return describe_network_error(error, url, timeout, timed_out=_timed_out(error))


def _timed_out(error: BaseException) -> bool:
    """Tell whether a ``requests``/urllib3/socket error is a timeout."""
    # urllib3 read timeouts during a streamed body surface as plain errors whose text says "timed out".
    return isinstance(error, requests.Timeout | TimeoutError) or "timed out" in str(error).lower()


class FileDownload:
    """
    An open sessions-file download, read as decoded chunks.

    :param response: the streamed response, status already checked.
    :param shown_url: the file URL as it may be shown (no query string).
    :param timeout: the read timeout, for messages.
    """

    def __init__(self, response: requests.Response, shown_url: str, timeout: float) -> None:
        self._response = response
        self.shown_url = shown_url
        self._timeout = timeout
        self.content_length = content_length(response.headers)
        self.content_type: str | None = response.headers.get("content-type")
        self.content_encoding: str | None = response.headers.get("content-encoding")
        self._identity = (self.content_encoding or "identity").lower() == "identity"
        # An identity-encoded body is read by http.client straight into the caller's buffer: urllib3's own
        # read() allocates a new object per chunk and copies it once more, a third of the CPU of a large
        # transfer. urllib3 2.x keeps http.client's response as `_fp`; anything else falls back.
        body = getattr(response.raw, "_fp", None)
        self._direct = body if self._identity and isinstance(body, http.client.HTTPResponse) else None
        self._direct_bytes = 0

    @property
    def expected_size(self) -> int | None:
        """Return the size of the decoded file when the server announced it, for progress reports."""
        return self.content_length if self._identity else None

    @property
    def wire_bytes(self) -> int:
        """Return the bytes received on the wire so far (compressed, when the transfer is)."""
        # urllib3 counts what went through it; readinto() counts what it read past it.
        return int(self._response.raw.tell()) + self._direct_bytes

    def iter_chunks(self, chunk_size: int = DEFAULT_CHUNK_SIZE) -> Iterator[bytes]:
        """
        Yield the file's decoded bytes, then check that nothing was cut short.

        :param chunk_size: the largest chunk to yield.
        """
        raw = self._response.raw
        try:
            while True:
                chunk = raw.read(chunk_size, decode_content=True)
                if not chunk:
                    break
                yield chunk
        except (Urllib3Error, requests.RequestException, OSError) as error:
            raise self._failure(error) from None
        check_received_length(self.wire_bytes, self.content_length, self.shown_url)

    def readinto(self, buffer: bytearray | mmap.mmap) -> int:
        """
        Fill ``buffer`` with the file's next decoded bytes; at the end, check that nothing was cut short.

        :param buffer: where to put the bytes; it is filled completely unless the file ends (or breaks off)
            first.
        :return: the number of bytes put in ``buffer``, 0 at the end of the file.
        """
        try:
            if self._direct is not None:
                size = self._direct.readinto(buffer)
                self._direct_bytes += size
            else:
                chunk = self._response.raw.read(len(buffer), decode_content=True)
                size = len(chunk)
                buffer[:size] = chunk
        except (Urllib3Error, requests.RequestException, OSError, http.client.HTTPException) as error:
            raise self._failure(error) from None
        if not size:
            check_received_length(self.wire_bytes, self.content_length, self.shown_url)
        return size

    def _failure(self, error: BaseException) -> WavyDownloadError:
        """Describe a transfer that broke off: a timeout as such, a closed connection as a short body."""
        timed_out = _timed_out(error)
        if not timed_out:
            try:
                check_received_length(self.wire_bytes, self.content_length, self.shown_url)
            except WavyDownloadError as cut_short:
                return cut_short
        # The message names the URL once, as its subject.
        reason = describe_network_error(error, "the file host", self._timeout, timed_out=timed_out)
        of_total = f" of {self.content_length:,}" if self.content_length is not None else ""
        hint = (
            " (or raise the wavy connection's timeout extra if the file host is this slow)"
            if timed_out
            else ""
        )
        return WavyDownloadError(
            # At least: bytes a read had taken in when it failed are not counted.
            f"The download of {self.shown_url} failed after at least {self.wire_bytes:,}{of_total} bytes: "
            f"{reason}. "
            f"Nothing was kept; run the task again{hint}."
        )


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
        return {key.replace("-", "_"): value for key, value in UI_FIELD_BEHAVIOUR.items()}

    @classmethod
    def get_connection_form_widgets(cls) -> dict[str, Any]:
        """Return the connection form's extra fields (Airflow 2.11 reads them; 3.2+ the provider info)."""
        from flask_appbuilder.fieldwidgets import BS3TextFieldWidget
        from flask_babel import lazy_gettext
        from wtforms import IntegerField, StringField
        from wtforms.validators import NumberRange, Optional

        field_classes = {"string": StringField, "integer": IntegerField, "number": StringField}
        widgets = {}
        for name, spec in CONN_FIELDS.items():
            kind = spec["schema"]["type"][0]
            widgets[name] = field_classes[kind](
                lazy_gettext(spec["label"]),
                description=spec["description"],
                widget=BS3TextFieldWidget(),
                validators=[Optional(), NumberRange(min=0)] if kind == "integer" else [Optional()],
            )
        return widgets

    @cached_property
    def settings(self) -> WavySettings:
        """Read the connection once (no I/O until first used)."""
        conn = self.get_connection(self.wavy_conn_id)
        settings = WavySettings.from_airflow_connection(
            conn, conn_id=self.wavy_conn_id, extra=conn.extra_dejson
        )
        mask_secret(settings.token)
        if settings.sends_token_in_clear:
            self.log.warning(
                "Connection %r uses plain http:// to %s: the authentication token travels unencrypted. "
                "Use https:// outside a local test set-up.",
                self.wavy_conn_id,
                settings.base_url,
            )
        return settings

    @cached_property
    def session(self) -> requests.Session:
        """Return the HTTP session, built on first use and reused for keep-alive."""
        session = requests.Session()
        # Nothing the API sets may ride along to the file host (a cookie for a parent domain would).
        session.cookies.set_policy(DefaultCookiePolicy(allowed_domains=[]))
        # Retries are the protocol's (with Retry-After and logging), never urllib3's silent ones.
        adapter = HTTPAdapter(max_retries=0, pool_connections=4, pool_maxsize=8)
        session.mount("https://", adapter)
        session.mount("http://", adapter)
        return session

    def get_conn(self) -> requests.Session:
        """Return the HTTP session (Airflow's hook interface)."""
        return self.session

    def _wait(self, retry: Retry, policy: RetryPolicy) -> None:
        self.log.warning(
            "Wavy: %s; retry %d of %d in %.1fs.", retry.reason, retry.number, policy.max_retries, retry.delay
        )
        time.sleep(retry.delay)

    def get_open_sessions_file_url(
        self, customer_id: str | None = None, sub_account_id: str | None = None
    ) -> str | None:
        """
        Ask the API for the open-sessions file of a customer.

        :param customer_id: the customer id; defaults to the connection's ``customer_id`` extra.
        :param sub_account_id: the sub-account id; defaults to the connection's ``sub_account_id`` extra.
        :return: the file URL, or None when the API has no file yet.
        """
        policy = self.settings.retry_policy(backoff_base=self.backoff_base)
        return self._run_session_call(SessionCall(self.settings, customer_id, sub_account_id, policy=policy))

    def _run_session_call(self, call: SessionCall) -> str | None:
        settings = call.settings
        request: HttpRequest = call.request
        while True:
            try:
                response = self.session.get(
                    request.url,
                    params=request.params,
                    headers=dict(request.headers),
                    timeout=settings.timeout,
                    allow_redirects=False,
                    stream=True,
                )
            except requests.exceptions.SSLError as error:
                raise tls_error(settings.base_url, tls_failure_reason(error)) from None
            except requests.RequestException as error:
                outcome: Done | Retry | FollowRedirect = call.on_transport_error(
                    describe_transport_error(error, settings.base_url, settings.timeout)
                )
            else:
                with response:
                    try:
                        body = response.raw.read(MAX_API_BODY, decode_content=True) or b""
                    except (Urllib3Error, requests.RequestException, OSError) as error:
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
            self._wait(outcome, call.policy)

    @contextmanager
    def open_file(self, file_url: str) -> Iterator[FileDownload]:
        """
        Open a streamed download of a sessions file; no credential is sent to the file host.

        Connection errors, timeouts, 420, 429 and 5xx before the first byte are retried like API calls.

        :param file_url: the URL the API returned.
        """
        settings = self.settings
        policy = settings.retry_policy(backoff_base=self.backoff_base)
        call = FileCall(file_url, policy=policy)
        while True:
            try:
                response = self.session.get(
                    call.request.url,
                    headers=dict(call.request.headers),
                    timeout=settings.timeout,
                    stream=True,
                    allow_redirects=True,
                )
            except requests.exceptions.SSLError as error:
                raise tls_error(call.shown_url, tls_failure_reason(error)) from None
            except requests.RequestException as error:
                outcome: Done | Retry = call.on_transport_error(
                    describe_transport_error(error, call.shown_url, settings.timeout)
                )
            else:
                if 200 <= response.status_code <= 299:
                    outcome = call.on_response(response.status_code, response.headers)
                else:
                    with response:
                        try:
                            snippet = response.raw.read(4096, decode_content=True) or b""
                        except (Urllib3Error, requests.RequestException, OSError):
                            snippet = b""  # the status says enough; the body only adds detail
                    outcome = call.on_response(response.status_code, response.headers, snippet)
            if isinstance(outcome, Done):
                break
            self._wait(outcome, policy)
        with response:
            yield FileDownload(response, call.shown_url, settings.timeout)

    def iter_file_chunks(self, file_url: str, chunk_size: int = DEFAULT_CHUNK_SIZE) -> Iterator[bytes]:
        """
        Yield a sessions file's bytes in chunks, checked against ``Content-Length`` at the end.

        :param file_url: the URL the API returned.
        :param chunk_size: the largest chunk to yield.
        """
        with self.open_file(file_url) as download:
            yield from download.iter_chunks(chunk_size)

    def test_connection(self) -> tuple[bool, str]:
        """Check host and credentials with a real request (Airflow's Test button)."""
        try:
            settings = self.settings
            # One quick try: the Test button should answer in seconds, not after minutes of backoff.
            call = SessionCall(settings, settings.customer_id or "0", policy=RetryPolicy(max_retries=0))
            file_url = self._run_session_call(call)
        except WavyRequestError as error:
            if settings.customer_id:
                return False, str(error)
            # Wavy checked the credentials before it looked at the made-up customer id.
            return True, (
                f"Connected to {settings.base_url} as {settings.username}: credentials accepted. The probe "
                f"customerId=0 was refused as expected ({error}); set the customer_id extra."
            )
        except (WavyError, ValueError) as error:
            return False, str(error)
        except Exception as error:  # noqa: BLE001 - the Test button must answer with a message, whatever happens
            return False, f"Unexpected {type(error).__name__} while testing the connection: {error}"
        probe = "" if settings.customer_id else " (no customer_id extra set: checked with customerId=0)"
        state = "a sessions file is ready" if file_url else "no sessions file yet"
        return True, f"Connected to {settings.base_url} as {settings.username}: {state}{probe}."


__all__ = ["FileDownload", "WavyDownloadError", "WavyHook", "describe_transport_error"]
