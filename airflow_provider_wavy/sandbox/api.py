"""
The sandbox's API origin: credential and parameter checks, the scenario's phases, redirects and the
answers of ``GET /v1/session``.
"""

from __future__ import annotations

import hmac
from typing import TYPE_CHECKING, Any

from airflow_provider_wavy.sandbox.cdn import file_url
from airflow_provider_wavy.sandbox.state import SESSIONS

if TYPE_CHECKING:
    from airflow_provider_wavy.sandbox.http import SandboxHandler
    from airflow_provider_wavy.sandbox.scenario import Scenario
    from airflow_provider_wavy.sandbox.state import RecordedRequest, SandboxSite, SandboxState

_PENDING_BODIES: dict[str, dict[str, Any]] = {
    "missing": {},
    "null": {"file_url": None},
    "empty": {"file_url": ""},
    "data": {"success": True, "status": 200},
}


class ApiOrigin:
    """Answers the API origin's requests."""

    name = "api"

    def __init__(self, state: SandboxState, site: SandboxSite) -> None:
        """
        Serve from a sandbox's state.

        :param state: Counters, records and issued files.
        :param site: Credentials and URLs of the running sandbox.
        """
        self.state = state
        self.site = site

    def handle(self, handler: SandboxHandler, request: RecordedRequest, raw_query: str) -> None:
        """
        Record the request and answer the session endpoints; anything else is a JSON 404/405.

        :param handler: The connection's handler (sends the answer).
        :param request: The request as recorded.
        :param raw_query: Query string as received (forwarded by redirects).
        """
        self.state.record(request)
        path = request.path
        if path not in ("/v1/session", "/v2/session"):
            handler.send_api_error(404, f"Not Found: no resource at {path}")
            return
        if handler.command != "GET":
            handler.send_api_error(405, headers=[("Allow", "GET")])
            return
        generation: int | None = None
        if path == "/v1/session":
            scenario, call_index, generation = self.state.count_api_call(SESSIONS)
            handler.pause(scenario.api_delay, call_index, scenario.slow_calls)
            if self._redirected(handler, scenario, raw_query):
                return
        else:
            scenario = self.state.scenario
            if scenario.api_status is not None:
                handler.send_api_error(scenario.api_status)
                return
        self._session(handler, request, scenario, generation)

    def _redirected(self, handler: SandboxHandler, scenario: Scenario, raw_query: str) -> bool:
        """Answer the fixed status or a redirect when the scenario asks for one; return whether it did."""
        suffix = f"?{raw_query}" if raw_query else ""
        if scenario.api_status is not None:
            handler.send_api_error(scenario.api_status)
        elif scenario.redirect == "api-same-origin":
            handler.send(307, headers=[("Location", f"{self.site.base_url}/v2/session{suffix}")])
        elif scenario.redirect == "api-cross-origin":
            handler.send(302, headers=[("Location", f"{self.site.cdn_url}/redirected/v1/session{suffix}")])
        else:
            return False
        return True

    def _authenticated(self, handler: SandboxHandler) -> bool:
        """Compare the credential headers with the sandbox's in constant time."""
        username = handler.headers.get("UserName")
        token = handler.headers.get("authenticationToken")
        if username is None or token is None:
            return False
        user_ok = hmac.compare_digest(username.encode(), self.site.username.encode())
        token_ok = hmac.compare_digest(token.encode(), self.site.token.encode())
        return user_ok and token_ok

    def _session(
        self,
        handler: SandboxHandler,
        request: RecordedRequest,
        scenario: Scenario,
        generation: int | None = None,
    ) -> None:
        """
        Check credentials and parameters, then answer the current phase.

        :param handler: The connection's handler.
        :param request: The request.
        :param scenario: The scenario the call started under.
        :param generation: The sandbox generation the call started under (None: not tracked).
        """
        if not self._authenticated(handler):
            handler.send_api_error(401)
            return
        customer_id = request.query.get("customerId", "").strip()
        if not customer_id:
            handler.send_api_error(400, "Bad Request: the customerId parameter is required.")
            return
        sub_account_id = request.query.get("subAccountId", "").strip() or None
        phase = self.state.next_phase(SESSIONS, scenario, generation)
        if phase == "stale":
            handler.send_api_error(
                503, "Service Unavailable: the sandbox's scenario changed during this call."
            )
        elif phase == "rate-limited":
            retry = [] if scenario.retry_after is None else [("Retry-After", scenario.retry_after)]
            handler.send_api_error(scenario.rate_limit_status, headers=retry)
        elif phase == "server-error":
            handler.send_api_error(scenario.server_error_status)
        elif phase == "pending":
            handler.send_json(200, _PENDING_BODIES[scenario.pending_style])
        else:
            entry = self.state.issue(SESSIONS, customer_id, sub_account_id, scenario)
            handler.send_json(200, {"file_url": file_url(self.site.cdn_url, entry)})
