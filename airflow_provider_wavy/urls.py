"""
URL rules: which URLs the provider accepts, where a redirect leads, and how URLs and server text are shown.

Different URL parsers read the same odd string differently (a backslash before an ``@``, a tab inside the
authority, userinfo): one parser sees the API's host where another connects to an attacker's. So a URL
from a server (a ``Location``, a ``file_url``) is accepted only when it is plain RFC 3986 text that
survives a strict round trip, and the transports check the origin again with the parser they connect
with (see ``check_transport_origin`` in each hook).
"""

from __future__ import annotations

import ipaddress
import re
from typing import Final
from urllib.parse import SplitResult, quote, quote_plus, unquote, unquote_plus, urljoin, urlsplit

from airflow_provider_wavy.exceptions import WavyRedirectError

Origin = tuple[str, str, int]

#: A signed CDN link is a few hundred characters; anything past this is not a URL to follow or quote.
MAX_URL_LENGTH: Final = 16 * 1024
#: How much of a URL a message or log line quotes.
SHOWN_URL_LENGTH: Final = 200
HTTP_SCHEMES: Final = ("http", "https")

# RFC 3986 characters: unreserved, reserved and the percent sign. Anything else (space, controls,
# backslash, quotes, braces, non-ASCII) is read differently by different parsers, so it is refused.
_URI_CHARS: Final = re.compile(r"[A-Za-z0-9\-._~:/?#\[\]@!$&'()*+,;=%]*")
_REG_NAME: Final = re.compile(r"[A-Za-z0-9\-._]+")
_PORT: Final = re.compile(r"[0-9]{1,5}")


class UrlError(ValueError):
    """A URL from a server or a connection that the provider does not accept; the message says why."""


def default_port(scheme: str) -> int:
    """Return the port a scheme implies."""
    return 443 if scheme == "https" else 80


def cut(text: str, limit: int = SHOWN_URL_LENGTH) -> str:
    """Return ``text`` cut to ``limit`` characters, marked when it was cut."""
    return text if len(text) <= limit else f"{text[: limit - 3]}..."


def redact(text: str, secret: str | None) -> str:
    """
    Blank out a secret in text taken from a server, also in the forms a URL or form encoding gives it.

    :param text: the text.
    :param secret: the value to hide; nothing is done when empty.
    """
    if not secret:
        return text
    for form in {secret, quote(secret, safe=""), quote_plus(secret, safe="")}:
        text = text.replace(form, "***")
    # A server may escape characters that need none (%2D for "-"): look at the decoded text too, and show
    # that decoded form where it still held the secret.
    for decode in (unquote, unquote_plus):
        decoded = decode(text)
        if secret in decoded:
            text = decoded.replace(secret, "***")
    return text


def _host_of(parts: SplitResult, text: str) -> str:
    netloc = parts.netloc
    if "@" in netloc:
        raise UrlError(f"{cut(text)!r} carries a user name or password in its authority")
    host_port = netloc
    if host_port.startswith("["):
        literal, bracket, rest = host_port[1:].partition("]")
        if not bracket or (rest and not rest.startswith(":")):
            raise UrlError(f"{cut(text)!r} has a malformed IPv6 address")
        try:
            ipaddress.IPv6Address(literal)
        except ValueError:
            raise UrlError(f"{cut(text)!r} has a malformed IPv6 address") from None
        host, port_text = f"[{literal.lower()}]", rest[1:] if rest else None
    else:
        host, colon, port_text_raw = host_port.partition(":")
        port_text = port_text_raw if colon else None
        if not _REG_NAME.fullmatch(host):
            raise UrlError(f"{cut(text)!r} has no usable host name")
        host = host.lower()
    if port_text and (not _PORT.fullmatch(port_text) or not 0 < int(port_text) <= 65535):
        raise UrlError(f"{cut(text)!r} has an invalid port (a number from 1 to 65535 is needed)")
    return host if not port_text else f"{host}:{int(port_text)}"


def strict_url(text: str) -> str:
    """
    Return ``text`` rebuilt from its parsed parts, or raise :class:`UrlError`.

    Accepted: an absolute ``http``/``https`` URL of RFC 3986 characters only, with a host (a name, an IPv4
    or a bracketed IPv6 address) and an optional port from 1 to 65535, without user information. The
    fragment is dropped (it is never sent). The rebuilt URL must parse back to the same parts.

    :param text: the URL as received.
    """
    if len(text) > MAX_URL_LENGTH:
        raise UrlError(f"a URL of {len(text):,} characters (over {MAX_URL_LENGTH:,}) starting {cut(text)!r}")
    if not _URI_CHARS.fullmatch(text):
        raise UrlError(
            f"{cut(text)!r} holds characters a URL may not (space, control, backslash or non-ASCII)"
        )
    try:
        parts = urlsplit(text)
    except ValueError as error:
        raise UrlError(f"{cut(text)!r} is malformed ({error})") from None
    scheme = parts.scheme.lower()
    if scheme not in HTTP_SCHEMES or not text.lower().startswith(f"{scheme}://"):
        raise UrlError(f"{cut(text)!r} is not an absolute http(s) URL")
    authority = _host_of(parts, text)
    rebuilt = f"{scheme}://{authority}{parts.path or '/'}" + (f"?{parts.query}" if parts.query else "")
    again = urlsplit(rebuilt)
    if (again.scheme, again.netloc, again.path, again.query) != (
        scheme,
        authority,
        parts.path or "/",
        parts.query,
    ):
        raise UrlError(f"{cut(text)!r} does not read the same way twice")
    return rebuilt


def origin_of(url: str) -> Origin:
    """Return the (scheme, host, port) origin of a URL, with the scheme's default port filled in."""
    parts = urlsplit(url)
    scheme = parts.scheme.lower()
    try:
        port = parts.port
    except ValueError:
        port = None
    return scheme, (parts.hostname or "").lower().strip("[]"), port or default_port(scheme)


def same_origin(scheme: str, host: str | None, port: int | None, expected: Origin) -> bool:
    """
    Compare an origin as a transport's own URL parser reads it with the expected one.

    :param scheme: the scheme the transport parsed.
    :param host: the host the transport parsed (brackets of an IPv6 literal are ignored).
    :param port: the port the transport parsed, None for the scheme's default.
    :param expected: the origin that may receive the token.
    """
    scheme = scheme.lower()
    found = (scheme, (host or "").lower().strip("[]"), port or default_port(scheme))
    return found == expected


def resolve_location(current_url: str, location: str) -> str:
    """
    Resolve a redirect's ``Location`` against the URL that answered it, strictly.

    :param current_url: the URL of the request that was redirected.
    :param location: the header as received.
    :raises WavyRedirectError: the location is malformed, or not http(s).
    """
    if len(location) > MAX_URL_LENGTH or not _URI_CHARS.fullmatch(location):
        raise WavyRedirectError(
            f"A redirect's Location {cut(location)!r} is not a valid URL (it holds characters a URL may "
            "not, or is too long); it was not followed."
        )
    try:
        return strict_url(urljoin(current_url, location))
    except ValueError as error:  # UrlError, or urljoin's own "Invalid IPv6 URL"
        raise WavyRedirectError(f"A redirect's Location is unusable: {error}; it was not followed.") from None


def check_file_url(file_url: str) -> str:
    """
    Check that a file URL is a strict absolute http(s) URL, and return it rebuilt.

    :param file_url: the URL to check.
    :raises UrlError: the URL is not usable (callers say whose URL it was).
    """
    try:
        return strict_url(file_url.strip())
    except UrlError as error:
        raise UrlError(f"The file URL is unusable: {error}.") from None


def origin_and_path(url: str) -> tuple[str, str]:
    """Return a URL's origin (``scheme://host[:port]``, no user information) and path, without the query."""
    parts = urlsplit(url)
    return f"{parts.scheme}://{parts.netloc.rpartition('@')[2]}", parts.path or "/"


def describe_url(url: str, *, secret: str | None = None) -> str:
    """
    Return a URL fit for logs and messages: origin and path only, bounded, without a secret.

    Query strings may hold signatures; a server may put anything in a path.

    :param url: the URL.
    :param secret: a value to blank out if it appears.
    """
    origin, _ = origin_and_path(url)
    shown = f"{origin}{urlsplit(url).path}"
    flat = "".join(ch if ch.isprintable() else "?" for ch in shown)
    return cut(redact(flat, secret))


def is_loopback_host(host: str) -> bool:
    """Tell whether a host name is this machine (where plain HTTP exposes nothing)."""
    if host == "localhost" or host.endswith(".localhost"):
        return True
    try:
        return ipaddress.ip_address(host.strip("[]")).is_loopback
    except ValueError:
        return False


__all__ = [
    "MAX_URL_LENGTH",
    "Origin",
    "UrlError",
    "check_file_url",
    "cut",
    "default_port",
    "describe_url",
    "is_loopback_host",
    "origin_and_path",
    "origin_of",
    "redact",
    "resolve_location",
    "same_origin",
    "strict_url",
]
