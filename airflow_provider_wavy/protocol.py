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

import math
import random
import re
import time
from contextlib import contextmanager
from dataclasses import dataclass, field
from datetime import UTC, datetime
from email.utils import parsedate_to_datetime
from typing import TYPE_CHECKING, Any
from urllib.parse import parse_qsl, urlencode, urlsplit

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
from airflow_provider_wavy.urls import (
    Origin,
    UrlError,
    check_file_url,
    cut,
    describe_url,
    is_loopback_host,
    origin_of,
    redact,
    resolve_location,
    strict_url,
)

if TYPE_CHECKING:
    from collections.abc import Callable, Iterator, Mapping

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
#: The longest one API call may take, its retries and their pauses included (extra ``call_timeout``).
DEFAULT_CALL_TIMEOUT = 600.0
#: The longest one file download may take, first byte to last (extra ``download_timeout``).
DEFAULT_DOWNLOAD_TIMEOUT = 3600.0
#: The largest sessions file accepted, decoded (extra ``max_file_bytes``): about 60 million sessions.
DEFAULT_MAX_FILE_BYTES = 2 * 1024**3
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
    if "?" in text or "#" in text:
        raise WavyConfigurationError(
            f"The connection's host must be a base URL without query or fragment, e.g. {DEFAULT_BASE_URL}."
        )
    try:
        url = strict_url(text)
    except UrlError as error:
        raise WavyConfigurationError(
            f"The connection's host is not a usable http(s) base URL: {error}. "
            f"Leave it empty for {DEFAULT_BASE_URL}, or give e.g. 'api-messaging.wavy.global'."
        ) from None
    parts = urlsplit(url)
    netloc = parts.netloc
    if port is not None and parts.port is None:
        if not 0 < port <= 65535:
            raise WavyConfigurationError(f"The connection's port {port} is not from 1 to 65535.")
        netloc = f"{netloc}:{port}"
    return f"{parts.scheme}://{netloc}{parts.path.rstrip('/')}"


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


def _header_value(value: str | None, field_name: str, conn_id: str) -> str | None:
    # A newline or control character in a header value is refused by every HTTP library, which would
    # otherwise surface as a network error and be retried as if the service were down.
    if value is not None and not all(" " <= ch <= "~" for ch in value):
        raise WavyConfigurationError(
            f"Connection {conn_id!r}: the {field_name} holds a character an HTTP header cannot carry (a "
            "line break, control or non-ASCII character). Paste it again from the Wavy/Sinch portal."
        )
    return value


def _positive_int(extra: Mapping[str, Any], key: str, default: int, conn_id: str) -> int:
    value = extra.get(key)
    if value in (None, ""):
        return default
    try:
        number = int(str(value))
    except ValueError:
        number = 0
    if number <= 0:
        raise WavyConfigurationError(
            f"Connection {conn_id!r}: extra {key!r} must be a whole number > 0, got {value!r}."
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
    :param call_timeout: the longest one API call may take in all, retries and pauses included.
    :param download_timeout: the longest one file download may take in all.
    :param max_file_bytes: the largest file accepted, counted decoded (a gzip bomb stops there).
    """

    conn_id: str
    base_url: str
    username: str
    token: str = field(repr=False)
    customer_id: str | None = None
    sub_account_id: str | None = None
    timeout: float = DEFAULT_TIMEOUT
    max_retries: int = DEFAULT_MAX_RETRIES
    call_timeout: float = DEFAULT_CALL_TIMEOUT
    download_timeout: float = DEFAULT_DOWNLOAD_TIMEOUT
    max_file_bytes: int = DEFAULT_MAX_FILE_BYTES

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
        username = _header_value(_optional_text(login), "Login (Wavy UserName)", conn_id)
        token = _header_value((password or "").strip(), "Password (authentication token)", conn_id) or ""
        missing = [
            name for name, value in (("Login (Wavy UserName)", username), ("Password", token)) if not value
        ]
        if missing:
            raise WavyConfigurationError(
                f"Connection {conn_id!r} has no {' and no '.join(missing)}. Set the Login to your Wavy "
                "UserName and the Password to its authentication token (Wavy/Sinch messaging portal)."
            )
        return cls(
            conn_id=conn_id,
            base_url=normalize_base_url(host, port),
            username=username or "",
            token=token,
            customer_id=_optional_text(extra.get("customer_id")),
            sub_account_id=_optional_text(extra.get("sub_account_id")),
            timeout=_positive_number(extra, "timeout", DEFAULT_TIMEOUT, conn_id),
            max_retries=_non_negative_int(extra, "max_retries", DEFAULT_MAX_RETRIES, conn_id),
            call_timeout=_positive_number(extra, "call_timeout", DEFAULT_CALL_TIMEOUT, conn_id),
            download_timeout=_positive_number(extra, "download_timeout", DEFAULT_DOWNLOAD_TIMEOUT, conn_id),
            max_file_bytes=_positive_int(extra, "max_file_bytes", DEFAULT_MAX_FILE_BYTES, conn_id),
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
            raise WavyConfigurationError(
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
    return HttpRequest(url=check_file_url(file_url), headers=FILE_HEADERS)


#: The file host gets no credential; only the encodings the provider decodes within its caps are offered.
FILE_HEADERS: Mapping[str, str] = {
    "Accept": "text/csv, */*",
    "Accept-Encoding": "gzip, deflate",
    "User-Agent": USER_AGENT,
}


def clean_text(text: str, *, secret: str | None = None, limit: int = ERROR_TEXT_LIMIT) -> str:
    """
    Make text from a server fit for one line of a message: printable, bounded, and without the token.

    :param text: the raw text.
    :param secret: a value to blank out if the server echoed it.
    :param limit: the longest text kept.
    """
    text = redact(text, secret)
    flat = " ".join("".join(ch if ch.isprintable() else " " for ch in text).split())
    return cut(flat, limit)


def error_text(body: bytes, *, secret: str | None = None) -> str:
    """
    Pull the human-readable reason out of an error answer (``errorMessage`` when it is Wavy's JSON).

    Never raises: a body that is not readable JSON (nested, binary, huge) is shown as bounded text.

    :param body: the answer's body.
    :param secret: a value to blank out if the server echoed it.
    """
    from airflow_provider_wavy._json_body import JsonBodyError, load_json

    head = body[:4096]
    try:
        document = load_json(head)
    except JsonBodyError:
        document = None
    if isinstance(document, dict):
        for key in ("errorMessage", "message", "error", "detail"):
            value = document.get(key)
            if isinstance(value, str) and value.strip():
                return clean_text(value, secret=secret)
    return clean_text(head.decode("utf-8", errors="replace"), secret=secret) or "no details in the answer"


def parse_session_body(body: bytes) -> str | None:
    """
    Read the file URL out of a successful session answer.

    :param body: the JSON body of an HTTP 2xx answer.
    :return: the file URL, or None when the API has no file yet (``file_url`` missing, null or empty; or
        the lists endpoint's shape without ``data``).
    :raises WavyResponseError: the body is not the expected JSON; the message quotes a bounded excerpt.
    """
    from airflow_provider_wavy._json_body import MAX_FILE_URL_CHARS, JsonBodyError, json_type, load_json

    if not body.strip():
        return None
    try:
        document = load_json(body)
    except JsonBodyError as error:
        raise WavyResponseError(
            f"The Wavy API answered success with a body that is not JSON the provider reads ({error}), "
            f"starting {clean_text(body[:200].decode('utf-8', errors='replace'), limit=120)!r}; expected "
            '{"file_url": "..."}. Check that the connection\'s host is the Wavy API.'
        ) from None
    if not isinstance(document, dict):
        raise WavyResponseError(
            f"The Wavy API answered a JSON {json_type(document)}, expected an object with 'file_url'."
        )
    for key in ("file_url", "data"):
        value = document.get(key)
        if value is None or (isinstance(value, str) and not value.strip()):
            continue
        if not isinstance(value, str):
            raise WavyResponseError(
                f"The Wavy API answered {key!r} as a JSON {json_type(value)}, expected a URL string."
            )
        value = value.strip()
        if len(value) > MAX_FILE_URL_CHARS:
            raise WavyResponseError(
                f"The Wavy API answered a {key!r} of {len(value):,} characters (at most "
                f"{MAX_FILE_URL_CHARS:,} are accepted), starting {clean_text(value[:80], limit=80)!r}: it is "
                "not a file URL. Check that the connection's host is the Wavy API."
            )
        try:
            return check_file_url(value)
        except ValueError as error:
            raise WavyResponseError(f"The Wavy API answered an unusable {key!r}: {error}") from None
    return None


@dataclass(frozen=True)
class Done:
    """The API call is over: the file URL, or None when the API has no file yet."""

    file_url: str | None


@dataclass(frozen=True)
class ReadBody:
    """The file host answered 2xx at ``url``: read the body now."""

    url: str


@dataclass(frozen=True)
class Retry:
    """Wait ``delay`` seconds, then send the same request again."""

    delay: float
    reason: str
    number: int = 1


@dataclass(frozen=True)
class FollowRedirect:
    """Send ``request`` next (a checked redirect)."""

    request: HttpRequest


Outcome = Done | Retry | FollowRedirect

#: An API answer larger than this is not Wavy's small JSON: read no further than needed to say so.
MAX_API_BODY = 1024 * 1024
#: Enough of an error or redirect answer to quote its reason; the rest is never read.
MAX_ERROR_BODY = 4096
#: A CDN may hop through a few hosts before the file.
MAX_FILE_REDIRECTS = 5


def body_limit(status: int) -> int:
    """Return how many bytes of an answer with ``status`` a transport reads at most (plus one, to tell)."""
    return MAX_API_BODY if 200 <= status <= 299 else MAX_ERROR_BODY


class Deadline:
    """
    The total time one call may take, retries and pauses included.

    :param seconds: the time allowed from now; None for no limit.
    :param what: what is timed, for messages (e.g. "The Wavy API call").
    :param setting: how the user changes the limit, for messages.
    :param error: the class of the error raised when the time is up.
    :param clock: a monotonic clock (tests pass a fake one).
    """

    def __init__(
        self,
        seconds: float | None,
        *,
        what: str,
        setting: str,
        error: type[WavyError] = WavyTransientError,
        clock: Callable[[], float] = time.monotonic,
    ) -> None:
        self.seconds = seconds
        self.what = what
        self.setting = setting
        self._error = error
        self._clock = clock
        self._end = None if seconds is None else clock() + seconds

    def remaining(self) -> float:
        """Return the seconds left (infinite without a limit; never negative)."""
        return math.inf if self._end is None else max(0.0, self._end - self._clock())

    def bound(self, timeout: float) -> float:
        """Return ``timeout`` cut to the time left, for one network wait."""
        return min(timeout, self.remaining())

    def exceeded(self, detail: str = "") -> WavyError:
        """Return the error of a call that ran out of time."""
        last = f" (last: {detail})" if detail else ""
        return self._error(
            f"{self.what} did not complete within its time limit of {self.seconds:g}s{last}. "
            f"Try again later, or raise {self.setting}."
        )


class _Attempts:
    """Count failures against a retry policy and turn the last one into a :class:`WavyTransientError`."""

    def __init__(self, policy: RetryPolicy, what: str, deadline: Deadline | None = None) -> None:
        self.policy = policy
        self.what = what
        self.retries = 0
        self.deadline = deadline

    def retry_or_raise(self, reason: str, retry_after: float | None = None) -> Retry:
        if self.retries >= self.policy.max_retries:
            attempts = self.retries + 1
            raise WavyTransientError(
                f"{self.what} failed {attempts} time{'s' if attempts > 1 else ''}, last: {reason}. "
                f"{_transient_advice(reason)}"
            )
        delay = self.policy.delay(self.retries + 1, retry_after)
        if self.deadline is not None and delay >= self.deadline.remaining():
            # Sleeping past the limit helps nobody: fail now, with what went wrong.
            raise self.deadline.exceeded(reason)
        self.retries += 1
        return Retry(delay=delay, reason=reason, number=self.retries)


def _transient_advice(reason: str) -> str:
    if "connect" in reason or "resolve" in reason:
        return (
            "Check the host and port (the connection's, or the file URL's), and that this machine can reach "
            "them; raise the connection's 'max_retries' extra if the service restarts often."
        )
    return (
        "The service may be down or rate limiting: try again later, or raise the connection's "
        "'max_retries' / 'timeout' extras."
    )


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
    :param deadline: the call's total time limit; defaults to the connection's ``call_timeout``.
    """

    def __init__(
        self,
        settings: WavySettings,
        customer_id: str | None = None,
        sub_account_id: str | None = None,
        *,
        policy: RetryPolicy | None = None,
        deadline: Deadline | None = None,
    ) -> None:
        self.settings = settings
        self.customer_id, self.sub_account_id = settings.resolve_ids(customer_id, sub_account_id)
        self.request = build_session_request(settings, self.customer_id, self.sub_account_id)
        self.policy = policy or settings.retry_policy()
        self.deadline = deadline or Deadline(
            settings.call_timeout,
            what=f"The Wavy API call to {settings.base_url}",
            setting="the connection's 'call_timeout' extra",
        )
        self._attempts = _Attempts(self.policy, f"The Wavy API at {settings.base_url}", self.deadline)
        self._redirects = 0

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

    def _file_url(self, body: bytes) -> str | None:
        if len(body) > MAX_API_BODY:
            raise WavyResponseError(
                f"The Wavy API answered success with a body over {MAX_API_BODY // 1024} KiB; expected "
                '{"file_url": "..."}. Check that the connection\'s host is the Wavy API.'
            )
        file_url = parse_session_body(body)
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
        self.policy = policy
        self.deadline = deadline
        self._attempts = _Attempts(policy, f"Downloading {self.shown_url}", deadline)
        self._redirects = 0

    def on_transport_error(self, description: str) -> Retry:
        """
        Account for a connection error or timeout before the first byte; retry or raise.

        :param description: what went wrong, already free of secrets.
        """
        return self._attempts.retry_or_raise(description)

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
            "The link may have expired or not be published yet: let WavyOpenSessionsSensor wait for it, "
            "or ask the API for a new file URL."
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
        raise cut_short_error(received, expected, shown_url)


def too_large_error(shown_url: str, limit: int, *, announced: int | None = None) -> WavyDownloadError:
    """
    Say that a file passed the provider's size cap (counted decoded: a gzip bomb stops there).

    :param shown_url: the file URL as it may be shown.
    :param limit: the cap in bytes.
    :param announced: the size the file host announced, when that is what exceeded the cap.
    """
    what = f"announces {announced:,} bytes" if announced is not None else "decodes to more bytes than that"
    return WavyDownloadError(
        f"The file at {shown_url} is larger than max_file_bytes={limit:,}: it {what}. Nothing was kept. "
        "If real files are this large, raise the wavy connection's 'max_file_bytes' extra (or the "
        "operator's max_file_bytes argument); otherwise the file host is not serving the sessions file."
    )


def cut_short_error(received: int, expected: int | None, shown_url: str) -> WavyDownloadError:
    """
    Say that the file host closed the connection before the end of the file.

    :param received: bytes received on the wire.
    :param expected: the announced length; None for a chunked answer (its end was never sent).
    :param shown_url: the file URL as it may be shown.
    """
    of_total = f"{received:,} of {expected:,} bytes" if expected is not None else f"{received:,} bytes"
    before = "" if expected is not None else ", before the end of its chunked answer"
    return WavyDownloadError(
        f"The download of {shown_url} was cut short: the file host closed the connection after {of_total}"
        f"{before}. Nothing was kept; run the task again (it retries by itself if it has retries)."
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
    "MAX_API_BODY",
    "MAX_ERROR_BODY",
    "Deadline",
    "Done",
    "FileCall",
    "FirstRowCheck",
    "FollowRedirect",
    "HttpRequest",
    "Outcome",
    "ReadBody",
    "Retry",
    "RetryPolicy",
    "SessionCall",
    "WavyError",
    "WavySettings",
    "body_limit",
    "build_file_request",
    "build_session_request",
    "check_file_url",
    "check_received_length",
    "content_length",
    "cut_short_error",
    "describe_url",
    "is_transient_status",
    "origin_of",
    "parse_retry_after",
    "parse_session_body",
    "too_large_error",
]
