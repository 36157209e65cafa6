"""
The requests Wavy documents, as values: the API's GET (with its credential headers) and a file's GET
(with none).
"""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import TYPE_CHECKING
from urllib.parse import urlencode

from airflow_provider_wavy import __version__
from airflow_provider_wavy.exports import OPEN_SESSIONS, Export
from airflow_provider_wavy.urls import check_file_url

if TYPE_CHECKING:
    from collections.abc import Mapping

    from airflow_provider_wavy.settings import WavySettings

USER_AGENT = f"airflow-provider-wavy/{__version__}"


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
    """Build ``GET {base}/v1/session`` (the open-sessions export)."""
    return build_export_request(settings, OPEN_SESSIONS, customer_id, sub_account_id)


def build_export_request(
    settings: WavySettings, export: Export, customer_id: str, sub_account_id: str | None
) -> HttpRequest:
    """
    Build ``GET {base}{export.api_path}`` as Wavy documents it.

    :param settings: the connection's settings.
    :param export: what to ask for (the open sessions, or a list).
    :param customer_id: required by the API.
    :param sub_account_id: optional; left out of the query when not given.
    """
    params = {"customerId": customer_id}
    if sub_account_id:
        params["subAccountId"] = sub_account_id
    headers = {
        "Content-Type": "application/json",
        "Accept": "application/json",
        "Accept-Encoding": "gzip, deflate",
        "User-Agent": USER_AGENT,
        "UserName": settings.username,
        "authenticationToken": settings.token,
    }
    return HttpRequest(url=f"{settings.base_url}{export.api_path}", params=params, headers=headers)


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


__all__ = [
    "FILE_HEADERS",
    "USER_AGENT",
    "HttpRequest",
    "build_export_request",
    "build_file_request",
    "build_session_request",
]
