"""What the ``requests`` transport checks and says on its own: the token's origin, failures, capped reads."""

from __future__ import annotations

from typing import TYPE_CHECKING

from urllib3.util import parse_url

from airflow_provider_wavy.exceptions import WavyRedirectError
from airflow_provider_wavy.hooks._download import timed_out
from airflow_provider_wavy.messages import describe_network_error
from airflow_provider_wavy.urls import Origin, describe_url, same_origin

if TYPE_CHECKING:
    import requests


def describe_transport_error(error: BaseException, url: str, timeout: float) -> str:
    """
    Say in one line why a ``requests`` call got no answer.

    :param error: the exception ``requests`` or urllib3 raised.
    :param url: the origin or URL that was being reached (no secret in it).
    :param timeout: the timeout in force, for the message.
    """
    return describe_network_error(error, url, timeout, timed_out=timed_out(error))


def check_transport_origin(url: str, origin: Origin) -> None:
    """
    Refuse to send the token unless ``requests`` itself would connect to ``origin``.

    The URL is read with urllib3's parser, the one ``requests`` connects with, so no URL that another
    parser reads differently can carry the token elsewhere.

    :param url: the prepared URL about to be sent.
    :param origin: the only origin allowed to receive the token.
    """
    parsed = parse_url(url)
    if not same_origin(parsed.scheme or "", parsed.host, parsed.port, origin):
        raise WavyRedirectError(
            f"A request to {describe_url(url)} would not go to the connection's origin "
            f"{origin[0]}://{origin[1]}:{origin[2]}; it was not sent, and the token with it."
        )


def read_capped(response: requests.Response, limit: int) -> bytes:
    """Read at most ``limit`` + 1 decoded bytes: enough to use the body, or to tell that it is too big."""
    return response.raw.read(limit + 1, decode_content=True) or b""


__all__ = ["check_transport_origin", "describe_transport_error", "read_capped"]
