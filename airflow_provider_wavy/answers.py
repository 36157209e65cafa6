"""
Reading the answers: the file URL out of an API body, how much of an answer to read, lengths on the wire.
"""

from __future__ import annotations

from typing import TYPE_CHECKING

from airflow_provider_wavy.exceptions import WavyResponseError
from airflow_provider_wavy.exports import OPEN_SESSIONS, Export
from airflow_provider_wavy.messages import clean_text, cut_short_error
from airflow_provider_wavy.urls import check_file_url

if TYPE_CHECKING:
    from collections.abc import Mapping

#: An API answer larger than this is not Wavy's small JSON: read no further than needed to say so.
MAX_API_BODY = 1024 * 1024
#: Enough of an error or redirect answer to quote its reason; the rest is never read.
MAX_ERROR_BODY = 4096


def body_limit(status: int) -> int:
    """Return how many bytes of an answer with ``status`` a transport reads at most (plus one, to tell)."""
    return MAX_API_BODY if 200 <= status <= 299 else MAX_ERROR_BODY


def parse_session_body(body: bytes) -> str | None:
    """Read the file URL out of a successful open-sessions answer (see :func:`parse_export_body`)."""
    return parse_export_body(body, OPEN_SESSIONS)


def parse_export_body(body: bytes, export: Export) -> str | None:
    """
    Read the file URL out of a successful answer of an export.

    :param body: the JSON body of an HTTP 2xx answer.
    :param export: the export asked for (which fields hold the URL).
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
            f"The Wavy API answered a JSON {json_type(document)}, expected an object with "
            f"{export.url_fields[0]!r}."
        )
    _check_success_fields(document)
    for key in export.url_fields:
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


def _check_success_fields(document: dict[str, object]) -> None:
    """Refuse an HTTP 200 whose body says it failed (the lists' ``success``/``status`` fields)."""
    success, status = document.get("success", True), document.get("status", 200)
    if success is True and status in (200, "200"):
        return
    texts = (document.get(key) for key in ("message", "errorMessage", "error"))
    reason = next((text for text in texts if isinstance(text, str) and text.strip()), "")
    detail = f": {clean_text(reason)}" if reason else ""
    raise WavyResponseError(
        f"The Wavy API answered HTTP 200 with success={clean_text(repr(success), limit=40)} and "
        f"status={clean_text(repr(status), limit=40)}{detail}. Check the customer and sub-account ids; try "
        "again later if Wavy reports an error of its own."
    )


def check_received_length(received: int, expected: int | None, shown_url: str) -> None:
    """
    Fail when a download ended before the ``Content-Length`` the server announced.

    :param received: bytes received on the wire.
    :param expected: the announced length, if any.
    :param shown_url: the file URL as it may be shown.
    """
    if expected is not None and received != expected:
        raise cut_short_error(received, expected, shown_url)


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
    "MAX_API_BODY",
    "MAX_ERROR_BODY",
    "body_limit",
    "check_received_length",
    "content_length",
    "parse_export_body",
    "parse_session_body",
]
