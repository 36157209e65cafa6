"""
The Wavy open-sessions contract, without I/O.

Everything both transports need lives here once: the settings read from a ``wavy`` connection, the
session request (URL, query, headers), the interpretation of an answer (a file URL, "nothing yet", a
retry, a redirect or a typed error), which failures are transient, how long to back off, and which
origin may receive the token. :class:`~airflow_provider_wavy.hooks.wavy.WavyHook` drives it with
``requests``; :class:`~airflow_provider_wavy.triggers.wavy.WavyOpenSessionsTrigger` drives it with
``httpx`` on the triggerer's event loop.
"""

from __future__ import annotations

import ipaddress
import json
import math
import random
import re
from contextlib import contextmanager
from dataclasses import dataclass, field
from datetime import UTC, datetime
from email.utils import parsedate_to_datetime
from typing import TYPE_CHECKING, Any
from urllib.parse import parse_qsl, urlencode, urljoin, urlsplit

from airflow_provider_wavy import __version__
from airflow_provider_wavy.exceptions import (
    WavyAuthenticationError,
    WavyConfigurationError,
    WavyDownloadError,
    WavyError,
    WavyRedirectError,
    WavyRequestError,
    WavyResponseError,
    WavyTransientError,
)

if TYPE_CHECKING:
    from collections.abc import Iterator, Mapping

DEFAULT_BASE_URL = "https://api-messaging.wavy.global"
SESSION_PATH = "/v1/session"
DEFAULT_TIMEOUT = 30.0
DEFAULT_MAX_RETRIES = 3
#: A server asking for a longer pause than this is waited on only this long before the next try.
RETRY_AFTER_CAP = 120.0
BACKOFF_BASE = 1.0
BACKOFF_CAP = 60.0
MAX_REDIRECTS = 3
ERROR_TEXT_LIMIT = 300
USER_AGENT = f"airflow-provider-wavy/{__version__}"

#: 420 is Wavy's own "Message is Rate Limited"; 429 the standard one; every 5xx may pass.
RATE_LIMIT_STATUSES = frozenset({420, 429})


def is_transient_status(status: int) -> bool:
    """Tell whether an HTTP status is worth retrying (rate limits and server errors)."""
    return status in RATE_LIMIT_STATUSES or 500 <= status <= 599


def parse_retry_after(value: str | None, *, now: datetime | None = None) -> float | None:
    """
    Read a ``Retry-After`` header as a number of seconds to wait.

    :param value: the header, either delta-seconds (``"120"``) or an HTTP date.
    :param now: the current time, for HTTP dates; defaults to the clock.
    :return: seconds (never negative), or None when the header is absent or unreadable.
    """
    if value is None:
        return None
    text = value.strip()
    if not text:
        return None
    try:
        seconds = float(text)
    except ValueError:
        pass
    else:
        return max(0.0, seconds) if math.isfinite(seconds) else None
    try:
        when = parsedate_to_datetime(text)
    except (TypeError, ValueError, IndexError):
        return None
    if when.tzinfo is None:
        when = when.replace(tzinfo=UTC)
    current = now or datetime.now(UTC)
    return max(0.0, (when - current).total_seconds())


@dataclass(frozen=True)
class RetryPolicy:
    """
    Decide how long to wait before the next try, and when to stop.

    :param max_retries: retries after the first attempt; 0 disables retrying.
    :param backoff_base: the first exponential backoff step, in seconds.
    :param backoff_cap: the longest exponential backoff step, in seconds.
    :param retry_after_cap: the longest wait a ``Retry-After`` header can impose, in seconds.
    """

    max_retries: int = DEFAULT_MAX_RETRIES
    backoff_base: float = BACKOFF_BASE
    backoff_cap: float = BACKOFF_CAP
    retry_after_cap: float = RETRY_AFTER_CAP

    def delay(self, retry_number: int, retry_after: float | None = None) -> float:
        """
        Return the pause before retry number ``retry_number`` (1-based).

        The server's ``Retry-After`` wins when given (up to the cap); otherwise exponential backoff
        with "equal jitter", so that many clients failing together do not retry together.

        :param retry_number: which retry this pause precedes, starting at 1.
        :param retry_after: seconds the server asked to wait, if it did.
        """
        if retry_after is not None:
            return min(retry_after, self.retry_after_cap)
        step = min(self.backoff_cap, self.backoff_base * 2.0 ** (retry_number - 1))
        return step / 2 + random.uniform(0, step / 2)  # noqa: S311 - jitter, not cryptography


Origin = tuple[str, str, int]


def origin_of(url: str) -> Origin:
    """Return the (scheme, host, port) origin of a URL, with the scheme's default port filled in."""
    parts = urlsplit(url)
    scheme = parts.scheme.lower()
    port = parts.port or (443 if scheme == "https" else 80)
    return scheme, (parts.hostname or "").lower(), port


def describe_url(url: str) -> str:
    """Return a URL fit for logs and messages: origin and path only (query strings may hold signatures)."""
    parts = urlsplit(url)
    return f"{parts.scheme}://{parts.netloc.rpartition('@')[2]}{parts.path}"


_ERRNO_REASON = re.compile(r"\[Errno -?\d+\] ([^'\")]+)")


def describe_network_error(error: BaseException, url: str, timeout: float, *, timed_out: bool) -> str:
    """
    Say in one line why a request got no answer, without the HTTP library's internals.

    Both transports use it, so the sync and async paths fail with the same words.

    :param error: the exception the HTTP library raised.
    :param url: the origin or URL that was being reached (no secret in it).
    :param timeout: the timeout in force, for the message.
    :param timed_out: whether the library classed the error as a timeout.
    """
    if timed_out:
        return f"no answer from {url} within {timeout:g}s"
    text = str(error)
    match = _ERRNO_REASON.search(text)
    if match:
        return f"cannot connect to {url}: {match.group(1).strip()}"
    if "NameResolutionError" in text or "Name or service not known" in text:
        return f"cannot resolve the host of {url}"
    return f"cannot reach {url}: {type(error).__name__}"


_TLS_REASON = re.compile(r"\[SSL: ([A-Z0-9_]+)\] ([^(')\"]+)")


def tls_failure_reason(error: BaseException) -> str | None:
    """
    Return OpenSSL's reason when an HTTP library error is a TLS failure ("[SSL: CODE] reason"), else None.

    :param error: the exception the HTTP library raised.
    """
    match = _TLS_REASON.search(str(error))
    return match.group(2).strip() if match else None


def tls_error(url: str, reason: str | None) -> WavyConfigurationError:
    """
    Say that TLS failed, and what to check: waiting does not fix a certificate, so it is not retried.

    :param url: the origin or URL that was being reached.
    :param reason: OpenSSL's reason, if known.
    """
    return WavyConfigurationError(
        f"TLS with {url} failed ({reason or 'handshake failed'}). Check that the connection's host is right "
        "(https:// to an https server) and that this machine trusts its certificate (CA bundle: "
        "REQUESTS_CA_BUNDLE or SSL_CERT_FILE)."
    )


def is_loopback_host(host: str) -> bool:
    """Tell whether a host name is this machine (where plain HTTP exposes nothing)."""
    if host == "localhost" or host.endswith(".localhost"):
        return True
    try:
        return ipaddress.ip_address(host.strip("[]")).is_loopback
    except ValueError:
        return False


def normalize_base_url(host: str | None, port: int | None = None) -> str:
    """
    Build the API base URL from a connection's host and port.

    :param host: empty for Wavy's public API, a host name (HTTPS is assumed) or a URL with its scheme.
    :param port: the connection's port, used when the host does not name one.
    """
    text = (host or "").strip()
    if not text:
        return DEFAULT_BASE_URL if port is None else f"{DEFAULT_BASE_URL}:{port}"
    if "://" not in text:
        text = f"https://{text}"
    parts = urlsplit(text)
    if parts.scheme.lower() not in ("http", "https") or not parts.hostname:
        raise WavyConfigurationError(
            f"The connection's host {text!r} is not an http(s) URL or host name. "
            f"Leave it empty for {DEFAULT_BASE_URL}, or give e.g. 'api-messaging.wavy.global'."
        )
    if parts.query or parts.fragment or parts.username:
        raise WavyConfigurationError(
            "The connection's host must be a base URL without user, query or fragment, "
            f"e.g. {DEFAULT_BASE_URL}."
        )
    netloc = parts.netloc
    try:
        has_port = parts.port is not None
    except ValueError:
        raise WavyConfigurationError(f"The connection's host {text!r} has an invalid port.") from None
    if port is not None and not has_port:
        netloc = f"{netloc}:{port}"
    return f"{parts.scheme.lower()}://{netloc}{parts.path.rstrip('/')}"


def _optional_text(value: Any) -> str | None:
    if value is None:
        return None
    text = str(value).strip()
    return text or None


def _positive_number(extra: Mapping[str, Any], key: str, default: float, conn_id: str) -> float:
    value = extra.get(key)
    if value in (None, ""):
        return default
    try:
        number = float(value)
    except (TypeError, ValueError):
        number = math.nan
    if not math.isfinite(number) or number <= 0:
        raise WavyConfigurationError(
            f"Connection {conn_id!r}: extra {key!r} must be a positive number of seconds, got {value!r}."
        )
    return number


def _non_negative_int(extra: Mapping[str, Any], key: str, default: int, conn_id: str) -> int:
    value = extra.get(key)
    if value in (None, ""):
        return default
    try:
        number = int(str(value))
    except ValueError:
        number = -1
    if number < 0:
        raise WavyConfigurationError(
            f"Connection {conn_id!r}: extra {key!r} must be a whole number >= 0, got {value!r}."
        )
    return number


@dataclass(frozen=True)
class WavySettings:
    """
    Everything a transport needs from a ``wavy`` connection.

    :param conn_id: the connection's id, for messages.
    :param base_url: the API base URL, scheme included.
    :param username: the Wavy UserName (connection login).
    :param token: the authentication token (connection password); never printed.
    :param customer_id: the default customer id (connection extra).
    :param sub_account_id: the default sub-account id (connection extra).
    :param timeout: seconds to wait for a connection or for the next bytes of an answer.
    :param max_retries: retries of transient failures after the first attempt.
    """

    conn_id: str
    base_url: str
    username: str
    token: str = field(repr=False)
    customer_id: str | None = None
    sub_account_id: str | None = None
    timeout: float = DEFAULT_TIMEOUT
    max_retries: int = DEFAULT_MAX_RETRIES

    @classmethod
    def from_connection(
        cls,
        *,
        conn_id: str,
        host: str | None,
        port: int | None,
        login: str | None,
        password: str | None,
        extra: Mapping[str, Any],
    ) -> WavySettings:
        """
        Read and check the fields of a ``wavy`` connection.

        :param conn_id: the connection's id.
        :param host: the Host field: empty, a host name, or a base URL with scheme.
        :param port: the Port field, if any.
        :param login: the Login field (Wavy UserName).
        :param password: the Password field (authentication token).
        :param extra: the Extra field as a dict.
        """
        username = _optional_text(login)
        token = (password or "").strip()
        missing = [
            name for name, value in (("Login (Wavy UserName)", username), ("Password", token)) if not value
        ]
        if missing:
            raise WavyConfigurationError(
                f"Connection {conn_id!r} has no {' and no '.join(missing)}. Set the Login to your Wavy "
                "UserName and the Password to its authentication token (Wavy/Sinch messaging portal)."
            )
        assert username is not None  # for mypy: checked just above
        return cls(
            conn_id=conn_id,
            base_url=normalize_base_url(host, port),
            username=username,
            token=token,
            customer_id=_optional_text(extra.get("customer_id")),
            sub_account_id=_optional_text(extra.get("sub_account_id")),
            timeout=_positive_number(extra, "timeout", DEFAULT_TIMEOUT, conn_id),
            max_retries=_non_negative_int(extra, "max_retries", DEFAULT_MAX_RETRIES, conn_id),
        )

    @classmethod
    def from_airflow_connection(cls, conn: Any, *, conn_id: str, extra: Mapping[str, Any]) -> WavySettings:
        """
        Read the settings from an Airflow ``Connection``.

        :param conn: the connection (anything with host, port, login and password attributes).
        :param conn_id: its id, for messages.
        :param extra: its extras as a dict, passed in because triggers must read them the async way.
        """
        return cls.from_connection(
            conn_id=conn_id,
            host=conn.host,
            port=conn.port,
            login=conn.login,
            password=conn.password,
            extra=extra,
        )

    @property
    def origin(self) -> Origin:
        """Return the only origin allowed to receive the token."""
        return origin_of(self.base_url)

    @property
    def sends_token_in_clear(self) -> bool:
        """Tell whether the token would travel unencrypted over a network (plain HTTP, not loopback)."""
        scheme, host, _ = self.origin
        return scheme == "http" and not is_loopback_host(host)

    def retry_policy(self, *, backoff_base: float = BACKOFF_BASE) -> RetryPolicy:
        """
        Return this connection's retry policy.

        :param backoff_base: the first backoff step in seconds (the sandbox's tests use short ones).
        """
        return RetryPolicy(max_retries=self.max_retries, backoff_base=backoff_base)

    def resolve_ids(self, customer_id: str | None, sub_account_id: str | None) -> tuple[str, str | None]:
        """
        Pick the customer and sub-account ids: the arguments first, then the connection's extras.

        :param customer_id: the caller's customer id, if given.
        :param sub_account_id: the caller's sub-account id, if given.
        """
        customer = _optional_text(customer_id) or self.customer_id
        if not customer:
            raise ValueError(
                "No Wavy customer id: pass customer_id to the operator, sensor or hook call, or set the "
                f"extra 'customer_id' on connection {self.conn_id!r}."
            )
        return customer, _optional_text(sub_account_id) or self.sub_account_id


@dataclass(frozen=True)
class HttpRequest:
    """
    A GET to send: URL, query parameters and headers.

    :param url: the URL without query string.
    :param params: the query parameters.
    :param headers: the headers; may hold the token, so never printed.
    """

    url: str
    params: Mapping[str, str] = field(default_factory=dict)
    headers: Mapping[str, str] = field(default_factory=dict, repr=False)

    @property
    def full_url(self) -> str:
        """Return the URL with its query string."""
        return f"{self.url}?{urlencode(self.params)}" if self.params else self.url


def build_session_request(
    settings: WavySettings, customer_id: str, sub_account_id: str | None
) -> HttpRequest:
    """
    Build ``GET {base}/v1/session`` as Wavy documents it.

    :param settings: the connection's settings.
    :param customer_id: required by the API.
    :param sub_account_id: optional; left out of the query when not given.
    """
    params = {"customerId": customer_id}
    if sub_account_id:
        params["subAccountId"] = sub_account_id
    headers = {
        "Content-Type": "application/json",
        "Accept": "application/json",
        "User-Agent": USER_AGENT,
        "UserName": settings.username,
        "authenticationToken": settings.token,
    }
    return HttpRequest(url=f"{settings.base_url}{SESSION_PATH}", params=params, headers=headers)


def build_file_request(file_url: str) -> HttpRequest:
    """
    Build the GET of a sessions file: no credential at all, whatever host it is on.

    :param file_url: the ``file_url`` the API returned.
    """
    check_file_url(file_url)
    return HttpRequest(url=file_url, headers={"Accept": "text/csv, */*", "User-Agent": USER_AGENT})


def check_file_url(file_url: str) -> str:
    """
    Check that a file URL is an absolute http(s) URL, and return it.

    :param file_url: the URL to check.
    """
    parts = urlsplit(file_url)
    if parts.scheme.lower() not in ("http", "https") or not parts.hostname:
        shown = file_url if len(file_url) <= 80 else f"{file_url[:80]}..."
        raise ValueError(f"The sessions file URL {shown!r} is not an absolute http(s) URL.")
    return file_url


def clean_text(text: str, *, secret: str | None = None, limit: int = ERROR_TEXT_LIMIT) -> str:
    """
    Make text from a server fit for one line of a message: printable, bounded, and without the token.

    :param text: the raw text.
    :param secret: a value to blank out if the server echoed it.
    :param limit: the longest text kept.
    """
    if secret:
        text = text.replace(secret, "***")
    flat = " ".join("".join(ch if ch.isprintable() else " " for ch in text).split())
    return flat if len(flat) <= limit else f"{flat[: limit - 3]}..."


def error_text(body: bytes, *, secret: str | None = None) -> str:
    """
    Pull the human-readable reason out of an error answer (``errorMessage`` when it is Wavy's JSON).

    :param body: the answer's body.
    :param secret: a value to blank out if the server echoed it.
    """
    text = body[:4096].decode("utf-8", errors="replace")
    try:
        document = json.loads(text)
    except ValueError:
        document = None
    if isinstance(document, dict):
        for key in ("errorMessage", "message", "error", "detail"):
            value = document.get(key)
            if isinstance(value, str) and value.strip():
                return clean_text(value, secret=secret)
    return clean_text(text, secret=secret) or "no details in the answer"


def parse_session_body(body: bytes) -> str | None:
    """
    Read the file URL out of a successful session answer.

    :param body: the JSON body of an HTTP 2xx answer.
    :return: the file URL, or None when the API has no file yet (``file_url`` missing, null or empty; or
        the lists endpoint's shape without ``data``).
    """
    if not body.strip():
        return None
    try:
        document = json.loads(body)
    except ValueError:
        raise WavyResponseError(
            "The Wavy API answered success with a body that is not JSON "
            f"({clean_text(body[:200].decode('utf-8', errors='replace'))!r}); expected "
            '{"file_url": "..."}. Check that the connection\'s host is the Wavy API.'
        ) from None
    if not isinstance(document, dict):
        raise WavyResponseError(
            f"The Wavy API answered a JSON {type(document).__name__}, expected an object with 'file_url'."
        )
    for key in ("file_url", "data"):
        value = document.get(key)
        if value is None or (isinstance(value, str) and not value.strip()):
            continue
        if not isinstance(value, str):
            raise WavyResponseError(
                f"The Wavy API answered {key!r} as a JSON {type(value).__name__}, expected a URL string."
            )
        try:
            return check_file_url(value.strip())
        except ValueError as error:
            raise WavyResponseError(f"The Wavy API answered an unusable {key!r}: {error}") from None
    return None


@dataclass(frozen=True)
class Done:
    """The call is over: the file URL, or None when the API has no file yet."""

    file_url: str | None


@dataclass(frozen=True)
class Retry:
    """Wait ``delay`` seconds, then send the same request again."""

    delay: float
    reason: str
    number: int = 1


@dataclass(frozen=True)
class FollowRedirect:
    """Send ``request`` next (a same-origin redirect, credentials kept)."""

    request: HttpRequest


Outcome = Done | Retry | FollowRedirect


class _Attempts:
    """Count failures against a retry policy and turn the last one into a :class:`WavyTransientError`."""

    def __init__(self, policy: RetryPolicy, what: str) -> None:
        self.policy = policy
        self.what = what
        self.retries = 0

    def retry_or_raise(self, reason: str, retry_after: float | None = None) -> Retry:
        if self.retries >= self.policy.max_retries:
            attempts = self.retries + 1
            raise WavyTransientError(
                f"{self.what} failed {attempts} time{'s' if attempts > 1 else ''}, last: {reason}. "
                "The service may be down or rate limiting: try again later, or raise the connection's "
                "'max_retries' / 'timeout' extras."
            )
        self.retries += 1
        return Retry(delay=self.policy.delay(self.retries, retry_after), reason=reason, number=self.retries)


class SessionCall:
    """
    One logical ``GET /v1/session``, across its retries and redirects.

    A transport sends :attr:`request`, feeds what happened to :meth:`on_response` or
    :meth:`on_transport_error`, and acts on the outcome: :class:`Done`, :class:`Retry` (sleep, resend)
    or :class:`FollowRedirect` (send the new request). Errors are raised as :class:`WavyError`.

    :param settings: the connection's settings.
    :param customer_id: the customer id, or None for the connection's default.
    :param sub_account_id: the sub-account id, or None for the connection's default.
    :param policy: the retry policy; defaults to the connection's.
    """

    def __init__(
        self,
        settings: WavySettings,
        customer_id: str | None = None,
        sub_account_id: str | None = None,
        *,
        policy: RetryPolicy | None = None,
    ) -> None:
        self.settings = settings
        self.customer_id, self.sub_account_id = settings.resolve_ids(customer_id, sub_account_id)
        self.request = build_session_request(settings, self.customer_id, self.sub_account_id)
        self.policy = policy or settings.retry_policy()
        self._attempts = _Attempts(self.policy, f"The Wavy API at {settings.base_url}")
        self._redirects = 0
        # Where the last request went: a relative Location resolves against it, not the first URL.
        self._current_url = self.request.url

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
        :param body: the answer's body (error and JSON answers are small).
        """
        token = self.settings.token
        if 200 <= status <= 299:
            return Done(parse_session_body(body))
        if 300 <= status <= 399 and headers.get("location"):
            return self._redirect(status, headers["location"])
        if is_transient_status(status):
            reason = f"HTTP {status} ({error_text(body, secret=token)})"
            return self._attempts.retry_or_raise(reason, parse_retry_after(headers.get("retry-after")))
        detail = f"HTTP {status}: {error_text(body, secret=token)}"
        if status in (401, 403):
            raise WavyAuthenticationError(
                f"Wavy rejected the credentials of connection {self.settings.conn_id!r} ({detail}). "
                "Check its Login (Wavy UserName) and Password (authentication token) in the Wavy/Sinch "
                "messaging portal."
            )
        if status == 404:
            raise WavyRequestError(
                f"Wavy answered not found for {self._ids()} at {self.settings.base_url}{SESSION_PATH} "
                f"({detail}). Check the connection's host and the customer and sub-account ids."
            )
        raise WavyRequestError(
            f"Wavy rejected the open-sessions request for {self._ids()} ({detail}). "
            "Check the customer and sub-account ids."
        )

    def _redirect(self, status: int, location: str) -> FollowRedirect:
        target = urljoin(self._current_url, location)
        if origin_of(target) != self.settings.origin:
            raise WavyRedirectError(
                f"The Wavy API answered HTTP {status}, redirecting to {describe_url(target)}, another origin "
                f"than the connection's {self.settings.base_url}. The token is never sent to another origin: "
                "set the connection's host to the API's real base URL."
            )
        self._redirects += 1
        if self._redirects > MAX_REDIRECTS:
            raise WavyRedirectError(
                f"The Wavy API redirected more than {MAX_REDIRECTS} times; check the connection's host."
            )
        url, _, query = target.partition("?")
        self._current_url = url
        # A redirect that names its own query replaces ours, as a browser would do.
        params = dict(parse_qsl(query, keep_blank_values=True)) if query else dict(self.request.params)
        return FollowRedirect(HttpRequest(url=url, params=params, headers=self.request.headers))


class FileCall:
    """
    The opening of a sessions-file download (up to its first byte), across retries.

    :param file_url: the file URL the API returned.
    :param policy: the retry policy.
    """

    def __init__(self, file_url: str, *, policy: RetryPolicy) -> None:
        self.request = build_file_request(file_url)
        self.shown_url = describe_url(file_url)
        self._attempts = _Attempts(policy, f"Downloading {self.shown_url}")

    def on_transport_error(self, description: str) -> Retry:
        """
        Account for a connection error or timeout before the first byte; retry or raise.

        :param description: what went wrong, already free of secrets.
        """
        return self._attempts.retry_or_raise(description)

    def on_response(self, status: int, headers: Mapping[str, str], body: bytes = b"") -> Done | Retry:
        """
        Interpret the status line of a file download; :class:`Done` means "read the body now".

        :param status: the HTTP status (redirects were already followed by the transport).
        :param headers: the answer's headers.
        :param body: the start of an error answer's body, for the message.
        """
        if 200 <= status <= 299:
            return Done(self.request.url)
        if is_transient_status(status):
            return self._attempts.retry_or_raise(
                f"HTTP {status}", parse_retry_after(headers.get("retry-after"))
            )
        hint = (
            "The link may have expired or not be published yet: let WavyOpenSessionsSensor wait for it, "
            "or ask the API for a new file URL."
            if status in (403, 404, 410)
            else "Check the file URL."
        )
        raise WavyDownloadError(
            f"The file host answered HTTP {status} for {self.shown_url} ({error_text(body)}). {hint}"
        )


class FirstRowCheck:
    """
    Tell whether a sessions file has a data row, reading it no further than that row.

    The ``require_rows`` check of both transports: feed the body's chunks as they arrive and stop reading
    once :meth:`feed` returns True; at the end of the body call :meth:`finish`.

    :param shown_url: the file URL as it may be shown, for messages.
    """

    def __init__(self, shown_url: str) -> None:
        from airflow_provider_wavy.sessions_csv import SessionsCsvChecker

        self._checker = SessionsCsvChecker(hash_bytes=False)
        self._shown_url = shown_url

    def feed(self, chunk: bytes) -> bool:
        """
        Verify the next chunk; return True once the file has shown a data row.

        :param chunk: the next bytes of the body.
        :raises WavyResponseError: the file is not the open-sessions CSV.
        """
        with self._not_csv():
            self._checker.feed(chunk)
        return self._checker.rows_so_far > 0

    def finish(self) -> bool:
        """
        Complete the check at the end of the body; return whether the file has a data row.

        :raises WavyResponseError: the file is not the open-sessions CSV.
        """
        with self._not_csv():
            return self._checker.finish().rows > 0

    @contextmanager
    def _not_csv(self) -> Iterator[None]:
        from airflow_provider_wavy.sessions_csv import SessionsCsvError

        try:
            yield
        except SessionsCsvError as error:
            raise WavyResponseError(
                f"The sessions file at {self._shown_url} is not the open-sessions CSV: {error}"
            ) from None


def check_received_length(received: int, expected: int | None, shown_url: str) -> None:
    """
    Fail when a download ended before the ``Content-Length`` the server announced.

    :param received: bytes received on the wire.
    :param expected: the announced length, if any.
    :param shown_url: the file URL as it may be shown.
    """
    if expected is not None and received != expected:
        raise WavyDownloadError(
            f"The download of {shown_url} was cut short: received {received:,} of {expected:,} bytes. "
            "Nothing was kept; run the task again (it retries by itself if it has retries)."
        )


def content_length(headers: Mapping[str, str]) -> int | None:
    """
    Read ``Content-Length`` when it tells the size on the wire (absent with chunked transfer encoding).

    :param headers: the answer's headers.
    """
    if "chunked" in headers.get("transfer-encoding", "").lower():
        return None
    value = headers.get("content-length")
    if value is None or not value.strip().isdigit():
        return None
    return int(value)


__all__ = [
    "DEFAULT_BASE_URL",
    "Done",
    "FileCall",
    "FirstRowCheck",
    "FollowRedirect",
    "HttpRequest",
    "Outcome",
    "Retry",
    "RetryPolicy",
    "SessionCall",
    "WavyError",
    "WavySettings",
    "build_file_request",
    "build_session_request",
    "check_received_length",
    "content_length",
    "describe_url",
    "is_transient_status",
    "parse_retry_after",
    "parse_session_body",
]
