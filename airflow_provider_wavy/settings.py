"""
The settings of a ``wavy`` connection: base URL, credentials, default ids, timeouts and caps, checked once.
"""

from __future__ import annotations

import json
import math
import os
import re
from dataclasses import dataclass, field
from typing import TYPE_CHECKING, Any
from urllib.parse import urlsplit

from airflow_provider_wavy.exceptions import WavyConfigurationError
from airflow_provider_wavy.timing import BACKOFF_BASE, DEFAULT_MAX_RETRIES, RetryPolicy
from airflow_provider_wavy.urls import (
    Origin,
    UrlError,
    default_port,
    is_loopback_host,
    origin_of,
    strict_url,
)

if TYPE_CHECKING:
    from collections.abc import Mapping

DEFAULT_BASE_URL = "https://api-messaging.wavy.global"
DEFAULT_TIMEOUT = 30.0
#: The longest one API call may take, its retries and their pauses included (extra ``call_timeout``).
DEFAULT_CALL_TIMEOUT = 600.0
#: The longest one file download may take, first byte to last (extra ``download_timeout``).
DEFAULT_DOWNLOAD_TIMEOUT = 3600.0
#: The largest sessions file accepted, decoded (extra ``max_file_bytes``): about 60 million sessions.
DEFAULT_MAX_FILE_BYTES = 2 * 1024**3


#: Airflow's Test button (the 2.11 REST API, the 3.x API server) tests a connection under a throw-away id,
#: ``airflow.utils.strings.get_random_string()`` (8 ASCII letters and digits), exported as
#: ``AIRFLOW_CONN_<ID>`` only while the test runs.
_TEST_BUTTON_ID = re.compile(r"[A-Za-z0-9]{8}")


def is_test_button_id(conn_id: str) -> bool:
    """
    Tell whether ``conn_id`` is the throw-away id Airflow's Test button made up, not the user's.

    All-lowercase ids (``wavyprod``) are taken as the user's: connections defined by environment variable
    are named that way, and a random id is all lowercase letters in one test of a thousand.

    :param conn_id: the connection id the hook was given.
    """
    return (
        _TEST_BUTTON_ID.fullmatch(conn_id) is not None
        and not (conn_id.isalpha() and conn_id.islower())
        and f"AIRFLOW_CONN_{conn_id.upper()}" in os.environ
    )


def connection_name(conn_id: str, *, first: bool = False) -> str:
    """
    Name a connection in a message: ``connection 'wavy_default'``, or ``this connection`` for the Test button.

    :param conn_id: the connection id the hook was given.
    :param first: the name starts a sentence (capitalised).
    """
    name = "this connection" if is_test_button_id(conn_id) else f"connection {conn_id!r}"
    return name[0].upper() + name[1:] if first else name


def _about(conn_id: str) -> str:
    return connection_name(conn_id, first=True)


def normalize_base_url(host: str | None, port: int | None = None) -> str:
    """
    Build the API base URL from a connection's host and port.

    :param host: empty for Wavy's public API, a host name (HTTPS is assumed) or a URL with its scheme.
    :param port: the connection's port: used when the host does not name one, and must agree when it does.
        The scheme's default port is left out of the URL (Airflow 3's Test button needs a stored port).
    """
    text = (host or "").strip() or DEFAULT_BASE_URL
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
    if port is not None and parts.port is not None and port != parts.port:
        raise WavyConfigurationError(
            f"The connection's port {port} contradicts the port {parts.port} in its host {text!r}: "
            f"empty the Port field or set it to {parts.port}."
        )
    if port is not None and parts.port is None:
        if not 0 < port <= 65535:
            raise WavyConfigurationError(f"The connection's port {port} is not from 1 to 65535.")
        if port != default_port(parts.scheme):
            netloc = f"{netloc}:{port}"
    return f"{parts.scheme}://{netloc}{parts.path.rstrip('/')}"


def read_extra(conn: Any, conn_id: str) -> dict[str, Any]:
    """
    Read a connection's Extra JSON without Airflow's ``extra_dejson``.

    Airflow 3's ``extra_dejson`` hands every extra value to the secrets masker, which warns "Skipping
    masking for a secret as it's too short" for any string under 5 characters (a customer id such as
    ``"1001"``) before it looks at the key. None of these extras is a secret: the token is the Password,
    which Airflow and the hooks mask on their own.

    :param conn: the connection (its ``extra`` is the JSON text, or already a dict).
    :param conn_id: the connection's id, for messages.
    """
    raw = conn.extra
    if isinstance(raw, dict):
        return dict(raw)
    if raw is None or not str(raw).strip():
        return {}
    try:
        extra = json.loads(raw)
    except ValueError:
        extra = None
    if not isinstance(extra, dict):
        raise WavyConfigurationError(
            f"{_about(conn_id)}: the Extra field is not a JSON object. Write it as e.g. "
            '{"customer_id": "1001"}, or leave it empty.'
        )
    return extra


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
            f"{_about(conn_id)}: extra {key!r} must be a positive number of seconds, got {value!r}."
        )
    return number


def _header_value(value: str | None, field_name: str, conn_id: str) -> str | None:
    # A newline or control character in a header value is refused by every HTTP library, which would
    # otherwise surface as a network error and be retried as if the service were down.
    if value is not None and not all(" " <= ch <= "~" for ch in value):
        raise WavyConfigurationError(
            f"{_about(conn_id)}: the {field_name} holds a character an HTTP header cannot carry (a "
            "line break, control or non-ASCII character). Paste it again from the Wavy/Sinch portal."
        )
    return value


def _whole_number(extra: Mapping[str, Any], key: str, default: int, conn_id: str, *, minimum: int) -> int:
    value = extra.get(key)
    if value in (None, ""):
        return default
    try:
        number = int(str(value))
    except ValueError:
        number = minimum - 1
    if number < minimum:
        raise WavyConfigurationError(
            f"{_about(conn_id)}: extra {key!r} must be a whole number >= {minimum}, got {value!r}."
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
                f"{_about(conn_id)} has no {' and no '.join(missing)}. Set the Login to your Wavy "
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
            max_retries=_whole_number(extra, "max_retries", DEFAULT_MAX_RETRIES, conn_id, minimum=0),
            call_timeout=_positive_number(extra, "call_timeout", DEFAULT_CALL_TIMEOUT, conn_id),
            download_timeout=_positive_number(extra, "download_timeout", DEFAULT_DOWNLOAD_TIMEOUT, conn_id),
            max_file_bytes=_whole_number(extra, "max_file_bytes", DEFAULT_MAX_FILE_BYTES, conn_id, minimum=1),
        )

    @classmethod
    def from_airflow_connection(
        cls, conn: Any, *, conn_id: str, extra: Mapping[str, Any] | None = None
    ) -> WavySettings:
        """
        Read the settings from an Airflow ``Connection``.

        :param conn: the connection (anything with host, port, login, password and extra attributes).
        :param conn_id: its id, for messages.
        :param extra: its extras as a dict; read from ``conn.extra`` by :func:`read_extra` when not given.
        """
        return cls.from_connection(
            conn_id=conn_id,
            host=conn.host,
            port=conn.port,
            login=conn.login,
            password=conn.password,
            extra=read_extra(conn, conn_id) if extra is None else extra,
        )

    @property
    def name(self) -> str:
        """Name the connection in messages (see :func:`connection_name`)."""
        return connection_name(self.conn_id)

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
                f"extra 'customer_id' on {self.name}."
            )
        return customer, _optional_text(sub_account_id) or self.sub_account_id


__all__ = [
    "DEFAULT_BASE_URL",
    "DEFAULT_CALL_TIMEOUT",
    "DEFAULT_DOWNLOAD_TIMEOUT",
    "DEFAULT_MAX_FILE_BYTES",
    "DEFAULT_TIMEOUT",
    "WavySettings",
    "connection_name",
    "is_test_button_id",
    "normalize_base_url",
    "read_extra",
]
