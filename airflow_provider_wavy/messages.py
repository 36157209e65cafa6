"""
The wording of failures, written once for both transports: what went wrong, and what to do about it.
"""

from __future__ import annotations

import os
import re
import socket

from airflow_provider_wavy.exceptions import WavyConfigurationError, WavyDownloadError
from airflow_provider_wavy.urls import cut, redact

ERROR_TEXT_LIMIT = 300

_ERRNO_REASON = re.compile(r"\[Errno -?\d+\] ([^'\")]+)")
#: How :func:`describe_network_error` starts a reason that points at the host or port, not at a busy service.
CANNOT_CONNECT = "cannot connect to"
CANNOT_RESOLVE = "cannot resolve the host of"
NO_HTTP_ANSWER = "no HTTP answer from"
_NOT_HTTP = re.compile(
    r"RemoteDisconnected|BadStatusLine|RemoteProtocolError|closed connection without response|"
    r"[Ss]erver disconnected without sending|illegal status line|Connection aborted"
)


def _os_error(error: BaseException) -> OSError | None:
    """Find the socket error under an HTTP library's wrappers (httpx's async stack hides it in the chain)."""
    seen: set[int] = set()
    pending: list[BaseException] = [error]
    while pending and len(seen) < 20:
        current = pending.pop()
        if id(current) in seen:
            continue
        seen.add(id(current))
        if isinstance(current, OSError) and (current.errno or isinstance(current, socket.gaierror)):
            return current
        pending += [e for e in (current.__cause__, current.__context__) if e is not None]
        pending += [e for e in getattr(current, "exceptions", ()) if isinstance(e, BaseException)]
    return None


def describe_network_error(error: BaseException, url: str, timeout: float, *, timed_out: bool) -> str:
    """
    Say in one line why a request got no answer, without the HTTP library's internals.

    Both transports use it, so the sync and async paths fail with the same words, and
    :func:`transient_advice` can tell a wrong host or port from a busy service by the words alone.

    :param error: the exception the HTTP library raised.
    :param url: the origin or URL that was being reached (no secret in it).
    :param timeout: the timeout in force, for the message.
    :param timed_out: whether the library classed the error as a timeout.
    """
    if timed_out:
        return f"no answer from {url} within {timeout:g}s"
    text = str(error)
    os_error = _os_error(error)
    if (
        isinstance(os_error, socket.gaierror)
        or "NameResolutionError" in text
        or "Name or service not known" in text
    ):
        return f"{CANNOT_RESOLVE} {url}"
    if os_error is not None and os_error.errno:
        return f"{CANNOT_CONNECT} {url}: {os.strerror(os_error.errno)}"
    match = _ERRNO_REASON.search(text)
    if match:
        return f"{CANNOT_CONNECT} {url}: {match.group(1).strip()}"
    if _NOT_HTTP.search(f"{type(error).__name__} {text}"):
        # A port where something other than an HTTP(S) server listens answers like this.
        return f"{NO_HTTP_ANSWER} {url} (the connection was closed or answered in another protocol)"
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


def points_at_host_or_port(reason: str) -> bool:
    """Tell whether a reason from :func:`describe_network_error` means a wrong host or port is likely."""
    return reason.startswith((CANNOT_CONNECT, CANNOT_RESOLVE, NO_HTTP_ANSWER))


HOST_PORT_ADVICE = (
    "Check the host and port (the connection's Host, or the file URL's), that an HTTP(S) server listens "
    "there and that this machine can reach it; raise the connection's 'max_retries' extra only if the "
    "service restarts often."
)


def transient_advice(reason: str) -> str:
    """
    Say what to do after a failure that retrying did not fix.

    :param reason: the last failure, as :func:`describe_network_error` or a status line worded it.
    """
    if points_at_host_or_port(reason):
        return HOST_PORT_ADVICE
    return (
        "The service may be down or rate limiting: try again later, or raise the connection's "
        "'max_retries' / 'timeout' extras."
    )


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


__all__ = [
    "CANNOT_CONNECT",
    "CANNOT_RESOLVE",
    "ERROR_TEXT_LIMIT",
    "HOST_PORT_ADVICE",
    "NO_HTTP_ANSWER",
    "clean_text",
    "cut_short_error",
    "describe_network_error",
    "error_text",
    "points_at_host_or_port",
    "tls_error",
    "tls_failure_reason",
    "too_large_error",
    "transient_advice",
]
