"""
The calls: the rules of one logical request across its retries and redirects.

A call (:class:`ExportCall` for the API, :class:`FileCall` for a file host) says what to send, how much of
an answer to read, and what an answer means (an outcome from :mod:`~airflow_provider_wavy.outcomes`, or a
typed error). :func:`~airflow_provider_wavy.exchange.exchange` drives a call; the hooks only send and sleep.
"""

from __future__ import annotations

from typing import TYPE_CHECKING
from urllib.parse import parse_qsl

from airflow_provider_wavy.answers import MAX_API_BODY, MAX_ERROR_BODY, body_limit, parse_export_body
from airflow_provider_wavy.exceptions import (
    WavyAuthenticationError,
    WavyDownloadError,
    WavyRedirectError,
    WavyRequestError,
    WavyResponseError,
    WavyTransientError,
)
from airflow_provider_wavy.exports import OPEN_SESSIONS, Export
from airflow_provider_wavy.messages import error_text, transient_advice
from airflow_provider_wavy.outcomes import Done, FollowRedirect, Outcome, ReadBody, Retry
from airflow_provider_wavy.request import (
    FILE_HEADERS,
    HttpRequest,
    build_export_request,
    build_file_request,
)
from airflow_provider_wavy.timing import (
    BACKOFF_BASE,
    Deadline,
    RetryPolicy,
    is_transient_status,
    parse_retry_after,
)
from airflow_provider_wavy.urls import UrlError, describe_url, origin_of, redact, resolve_location

if TYPE_CHECKING:
    from collections.abc import Mapping

    from airflow_provider_wavy.settings import WavySettings

MAX_REDIRECTS = 3
#: A CDN may hop through a few hosts before the file.
MAX_FILE_REDIRECTS = 5


class _Attempts:
    """Count failures against a retry policy and turn the last one into a :class:`WavyTransientError`."""

    def __init__(self, policy: RetryPolicy, what: str, deadline: Deadline) -> None:
        self.policy = policy
        self.what = what
        self.retries = 0
        self.deadline = deadline

    def retry_or_raise(self, reason: str, retry_after: float | None = None) -> Retry:
        if self.retries >= self.policy.max_retries:
            attempts = self.retries + 1
            raise WavyTransientError(
                f"{self.what} failed {attempts} time{'s' if attempts > 1 else ''}, last: {reason}. "
                f"{transient_advice(reason)}"
            )
        delay = self.policy.delay(self.retries + 1, retry_after)
        if delay >= self.deadline.remaining():
            # Sleeping past the limit helps nobody: fail now, with what went wrong.
            raise self.deadline.exceeded(reason)
        self.retries += 1
        return Retry(delay=delay, reason=reason, number=self.retries)


class ExportCall:
    """
    One logical ask for an export's file URL (``GET /v1/session``, ``/v1/list/OPTOUT``, ...).

    A transport sends :attr:`request`, feeds what happened to :meth:`on_response` or
    :meth:`on_transport_error`, and acts on the outcome: :class:`Done`, :class:`Retry` (sleep, resend)
    or :class:`FollowRedirect` (send the new request). Errors are raised as :class:`WavyError`.

    :param settings: the connection's settings.
    :param customer_id: the customer id, or None for the connection's default.
    :param sub_account_id: the sub-account id, or None for the connection's default.
    :param policy: the retry policy; defaults to the connection's.
    :param deadline: the call's total time limit; defaults to the connection's ``call_timeout``.
    :param export: what to ask for; the open sessions by default.
    """

    def __init__(
        self,
        settings: WavySettings,
        customer_id: str | None = None,
        sub_account_id: str | None = None,
        *,
        policy: RetryPolicy | None = None,
        deadline: Deadline | None = None,
        export: Export = OPEN_SESSIONS,
    ) -> None:
        self.settings = settings
        self.export = export
        self.customer_id, self.sub_account_id = settings.resolve_ids(customer_id, sub_account_id)
        self.request = build_export_request(settings, export, self.customer_id, self.sub_account_id)
        self.carries_token = True
        self.policy = policy or settings.retry_policy()
        self.deadline = deadline or Deadline(
            settings.call_timeout,
            what=f"The Wavy API call to {settings.base_url}",
            setting="the connection's 'call_timeout' extra",
        )
        self._attempts = _Attempts(self.policy, f"The Wavy API at {settings.base_url}", self.deadline)
        self._redirects = 0

    @staticmethod
    def body_limit(status: int) -> int | None:
        """Return how much of an answer with ``status`` to read (None: none, it is the file)."""
        return body_limit(status)

    @property
    def where(self) -> str:
        """Return what is being reached, for messages (no secret in it)."""
        return self.settings.base_url

    def _ids(self) -> str:
        ids = f"customer_id={self.customer_id!r}"
        return f"{ids}, sub_account_id={self.sub_account_id!r}" if self.sub_account_id else ids

    def on_transport_error(self, description: str) -> Retry:
        """
        Account for a connection error or timeout; retry or raise :class:`WavyTransientError`.

        :param description: what went wrong, already free of secrets (e.g. "timed out after 30s").
        """
        return self._attempts.retry_or_raise(description)

    def on_response(self, status: int, headers: Mapping[str, str], body: bytes) -> Outcome:
        """
        Interpret an answer.

        :param status: the HTTP status.
        :param headers: the answer's headers (case-insensitive mapping).
        :param body: the answer's body, read up to :func:`body_limit` plus one byte.
        """
        token = self.settings.token
        if 200 <= status <= 299:
            return Done(self._file_url(body))
        if 300 <= status <= 399 and headers.get("location"):
            return self._redirect(status, headers["location"])
        if is_transient_status(status):
            reason = f"HTTP {status} ({error_text(body, secret=token)})"
            return self._attempts.retry_or_raise(reason, parse_retry_after(headers.get("retry-after")))
        detail = f"HTTP {status}: {error_text(body, secret=token)}"
        if status in (401, 403):
            raise WavyAuthenticationError(
                f"Wavy rejected the credentials of {self.settings.name} ({detail}). "
                "Check its Login (Wavy UserName) and Password (authentication token) in the Wavy/Sinch "
                "messaging portal."
            )
        if status == 404:
            raise WavyRequestError(
                f"Wavy answered not found for {self._ids()} at "
                f"{self.settings.base_url}{self.export.api_path} ({detail}). "
                "Check the connection's host and the customer and sub-account ids."
            )
        raise WavyRequestError(
            f"Wavy rejected the {self.export.title} request for {self._ids()} ({detail}). "
            "Check the customer and sub-account ids."
        )

    def _file_url(self, body: bytes) -> str | None:
        if len(body) > MAX_API_BODY:
            raise WavyResponseError(
                f"The Wavy API answered success with a body over {MAX_API_BODY // 1024} KiB; expected "
                '{"file_url": "..."}. Check that the connection\'s host is the Wavy API.'
            )
        file_url = parse_export_body(body, self.export)
        if file_url is not None and redact(file_url, self.settings.token) != file_url:
            # Passing it on would hand the token to the file host, the logs and XCom.
            raise WavyResponseError(
                "The Wavy API answered a file URL that contains the connection's authentication token; it "
                "was not used. Check that the connection's host is the Wavy API."
            )
        return file_url

    def _redirect(self, status: int, location: str) -> FollowRedirect:
        token = self.settings.token
        target = resolve_location(self.request.url, location)
        if origin_of(target) != self.settings.origin:
            raise WavyRedirectError(
                f"The Wavy API answered HTTP {status}, redirecting to {describe_url(target, secret=token)}, "
                f"another origin than the connection's {self.settings.base_url}. The token is never sent to "
                "another origin: set the connection's host to the API's real base URL."
            )
        self._redirects += 1
        if self._redirects > MAX_REDIRECTS:
            raise WavyRedirectError(
                f"The Wavy API redirected more than {MAX_REDIRECTS} times; check the connection's host."
            )
        url, _, query = target.partition("?")
        # A redirect that names its own query replaces ours, as a browser would do.
        params = dict(parse_qsl(query, keep_blank_values=True)) if query else dict(self.request.params)
        self.request = HttpRequest(url=url, params=params, headers=self.request.headers)
        return FollowRedirect(self.request)


class FileCall:
    """
    The opening of a file download (up to its first byte), across retries and redirects.

    :param file_url: the file URL the API returned.
    :param policy: the retry policy.
    :param deadline: the download's total time limit (shared with the reading of the body).
    """

    def __init__(self, file_url: str, *, policy: RetryPolicy, deadline: Deadline | None = None) -> None:
        try:
            self.request = build_file_request(file_url)
        except UrlError as error:
            raise WavyResponseError(f"{error} Ask the API for a new file URL.") from None
        self.shown_url = describe_url(self.request.url)
        self.carries_token = False
        self.policy = policy
        self.deadline = deadline or Deadline(
            None,
            what=f"The download of {self.shown_url}",
            setting="download_timeout",
            error=WavyDownloadError,
        )
        self._attempts = _Attempts(policy, f"Downloading {self.shown_url}", self.deadline)
        self._redirects = 0

    def on_transport_error(self, description: str) -> Retry:
        """
        Account for a connection error or timeout before the first byte; retry or raise.

        :param description: what went wrong, already free of secrets.
        """
        return self._attempts.retry_or_raise(description)

    @staticmethod
    def body_limit(status: int) -> int | None:
        """Return how much of an answer with ``status`` to read (None for a 2xx: it is the file)."""
        return None if 200 <= status <= 299 else MAX_ERROR_BODY

    @property
    def where(self) -> str:
        """Return what is being reached, for messages: the file URL's origin and path."""
        return self.shown_url

    def on_response(
        self, status: int, headers: Mapping[str, str], body: bytes = b""
    ) -> ReadBody | Retry | FollowRedirect:
        """
        Interpret the status line of a file download.

        :param status: the HTTP status.
        :param headers: the answer's headers.
        :param body: the start of an error answer's body, for the message.
        """
        if 200 <= status <= 299:
            return ReadBody(self.request.url)
        if 300 <= status <= 399 and headers.get("location"):
            return self._redirect(headers["location"])
        if is_transient_status(status):
            return self._attempts.retry_or_raise(
                f"HTTP {status}", parse_retry_after(headers.get("retry-after"))
            )
        hint = (
            "The link may have expired or not be published yet: let WavyOpenSessionsSensor (or "
            "WavyListSensor) wait for it, or ask the API for a new file URL."
            if status in (403, 404, 410)
            else "Check the file URL."
        )
        raise WavyDownloadError(
            f"The file host answered HTTP {status} for {self.shown_url} ({error_text(body)}). {hint}"
        )

    def _redirect(self, location: str) -> FollowRedirect:
        # Any origin may serve the file (no credential goes there), but only over http(s), strictly parsed.
        target = resolve_location(self.request.url, location)
        self._redirects += 1
        if self._redirects > MAX_FILE_REDIRECTS:
            raise WavyRedirectError(
                f"The file host redirected {self.shown_url} more than {MAX_FILE_REDIRECTS} times; ask the "
                "API for a new file URL."
            )
        self.request = HttpRequest(url=target, headers=FILE_HEADERS)
        self.shown_url = describe_url(target)
        return FollowRedirect(self.request)


def _limit(configured: float, given: float | None) -> float:
    """Return the shorter of a configured time limit and a caller's (None: the configured one)."""
    return configured if given is None else min(configured, max(given, 0.0))


def new_export_call(
    settings: WavySettings,
    export: Export,
    customer_id: str | None = None,
    sub_account_id: str | None = None,
    *,
    timeout: float | None = None,
    backoff_base: float = BACKOFF_BASE,
    policy: RetryPolicy | None = None,
) -> ExportCall:
    """
    Build an API call with its deadline started now: the connection's ``call_timeout``, or ``timeout``.

    :param settings: the connection's settings.
    :param export: what to ask for.
    :param customer_id: the customer id; defaults to the connection's extra.
    :param sub_account_id: the sub-account id; defaults to the connection's extra.
    :param timeout: the call's total time limit, if shorter than the connection's.
    :param backoff_base: the first pause between retries.
    :param policy: the retry policy; the connection's by default.
    """
    deadline = Deadline(
        _limit(settings.call_timeout, timeout),
        what=f"The Wavy API call to {settings.base_url}",
        setting="the connection's 'call_timeout' extra (or the sensor's timeout)",
    )
    policy = policy or settings.retry_policy(backoff_base=backoff_base)
    return ExportCall(settings, customer_id, sub_account_id, policy=policy, deadline=deadline, export=export)


def new_file_call(
    settings: WavySettings,
    file_url: str,
    *,
    timeout: float | None = None,
    backoff_base: float = BACKOFF_BASE,
) -> FileCall:
    """
    Build a file call with its deadline started now: the connection's ``download_timeout``, or ``timeout``.

    :param settings: the connection's settings.
    :param file_url: the URL the API returned.
    :param timeout: the download's total time limit, if shorter than the connection's.
    :param backoff_base: the first pause between retries.
    """
    deadline = Deadline(
        _limit(settings.download_timeout, timeout),
        what=f"The download of {describe_url(file_url)}",
        setting="the wavy connection's 'download_timeout' extra (or the operator's download_timeout)",
        error=WavyDownloadError,
    )
    return FileCall(file_url, policy=settings.retry_policy(backoff_base=backoff_base), deadline=deadline)


#: The call for the open sessions, by its first name.
SessionCall = ExportCall
Call = ExportCall | FileCall


__all__ = [
    "MAX_FILE_REDIRECTS",
    "MAX_REDIRECTS",
    "Call",
    "ExportCall",
    "FileCall",
    "SessionCall",
    "new_export_call",
    "new_file_call",
]
