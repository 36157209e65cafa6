"""
The API's endpoints: their paths, and the JSON bodies of their answers (the sessions answer
``{"file_url": ...}``, the lists answer inside ``{"success": true, "status": 200, "data": ...}``).
"""

from __future__ import annotations

from typing import TYPE_CHECKING, Any

from airflow_provider_wavy.sandbox.lists import LIST_TYPES
from airflow_provider_wavy.sandbox.state import SESSIONS

if TYPE_CHECKING:
    from airflow_provider_wavy.sandbox.http import SandboxHandler
    from airflow_provider_wavy.sandbox.scenario import Scenario
    from airflow_provider_wavy.sandbox.state import SandboxSite, SandboxState

_LIST_PREFIX = "/list/"
UNKNOWN_LIST = "unknown list"
FAILED_MESSAGE = "The request could not be processed right now. Try again later."
_SESSION_PENDING: dict[str, dict[str, Any]] = {
    "missing": {},
    "null": {"file_url": None},
    "empty": {"file_url": ""},
}
_LIST_PENDING_DATA: dict[str, dict[str, Any]] = {
    "missing": {},
    "null": {"data": None},
    "empty": {"data": ""},
    "data": {},
}


def route(path: str) -> tuple[str, str] | None:
    """
    Return (version, endpoint) of an API path: ``("v1", "session")``, ``("v2", "OPTOUT")``, ...

    The endpoint is ``UNKNOWN_LIST`` for a list type the API does not know (lower case included: the
    documentation spells them in upper case); None for any other path. ``v2`` is where a same-origin
    redirect sends the client.

    :param path: URL path.
    """
    for version in ("v1", "v2"):
        if path == f"/{version}/{SESSIONS}":
            return version, SESSIONS
        list_prefix = f"/{version}{_LIST_PREFIX}"
        if path.startswith(list_prefix):
            list_type = path[len(list_prefix) :]
            return version, list_type if list_type in LIST_TYPES else UNKNOWN_LIST
    return None


def endpoint_path(endpoint: str) -> str:
    """
    Return the path of an endpoint under its version, e.g. ``/session`` or ``/list/OPTOUT``.

    :param endpoint: ``SESSIONS`` or a list type.
    """
    return f"/{SESSIONS}" if endpoint == SESSIONS else f"{_LIST_PREFIX}{endpoint}"


def _envelope(scenario: Scenario) -> dict[str, Any]:
    """Return the ``{"success": true, "status": ...}`` part of an answer."""
    return {"success": True, "status": scenario.body_status}


def pending_body(endpoint: str, scenario: Scenario) -> dict[str, Any]:
    """
    Return the "nothing yet" answer.

    :param endpoint: ``SESSIONS`` or a list type.
    :param scenario: Its ``pending_style`` picks the shape.
    """
    if endpoint == SESSIONS:
        if scenario.pending_style == "data":
            return _envelope(scenario)
        return dict(_SESSION_PENDING[scenario.pending_style])
    return {**_envelope(scenario), **_LIST_PENDING_DATA[scenario.pending_style]}


def ready_body(endpoint: str, scenario: Scenario, url: str | None) -> dict[str, Any]:
    """
    Return the answer that carries the file URL.

    :param endpoint: ``SESSIONS`` or a list type.
    :param scenario: The scenario of the call.
    :param url: The file URL (None: a list with ``no_data``).
    """
    if endpoint == SESSIONS:
        return {"file_url": url}
    body = _envelope(scenario)
    if url is not None:
        body["data"] = url
    return body


def failed_body(scenario: Scenario) -> dict[str, Any]:
    """
    Return a ``success: false`` answer (sent with HTTP 200).

    :param scenario: Its ``failed_status`` goes inside.
    """
    return {"success": False, "status": scenario.failed_status, "message": FAILED_MESSAGE}


def ready_answer(
    state: SandboxState,
    cdn_url: str,
    endpoint: str,
    scenario: Scenario,
    *,
    customer_id: str,
    sub_account_id: str | None,
) -> dict[str, Any]:
    """
    Issue the file (unless a list has ``no_data``) and return the answer that carries its URL.

    :param state: Where the file is registered.
    :param cdn_url: The CDN origin.
    :param endpoint: ``SESSIONS`` or a list type.
    :param customer_id: Customer id of the request.
    :param sub_account_id: Sub-account id, or None.
    :param scenario: The scenario whose content knobs the file keeps.
    """
    if endpoint != SESSIONS and scenario.no_data:
        return ready_body(endpoint, scenario, None)
    entry = state.issue(endpoint, customer_id, sub_account_id, scenario)
    query = f"?{scenario.file_url_query}" if scenario.file_url_query else ""
    return ready_body(endpoint, scenario, entry.url(cdn_url) + query)


class SandboxOrigin:
    """One origin of the sandbox (the API or the CDN), answering from the sandbox's state."""

    name = ""

    def __init__(self, state: SandboxState, site: SandboxSite) -> None:
        """
        Serve from a sandbox's state.

        :param state: Counters, records and issued files.
        :param site: Credentials and URLs of the running sandbox.
        """
        self.state = state
        self.site = site

    def send_ready(
        self,
        handler: SandboxHandler,
        endpoint: str,
        scenario: Scenario,
        *,
        customer_id: str,
        sub_account_id: str | None,
    ) -> None:
        """Issue the file (unless a list has ``no_data``) and send the answer that carries its URL."""
        body = ready_answer(
            self.state,
            self.site.cdn_url,
            endpoint,
            scenario,
            customer_id=customer_id,
            sub_account_id=sub_account_id,
        )
        handler.send_json(200, body)
