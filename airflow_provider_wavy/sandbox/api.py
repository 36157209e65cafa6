"""
The sandbox's API origin: credential and parameter checks, the scenario's phases, redirects and the
answers of ``GET /v1/session`` and ``GET /v1/list/{OPTOUT|OPTIN|BLACKLIST|WHITELIST}``.
"""

from __future__ import annotations

import hmac
from typing import TYPE_CHECKING

from airflow_provider_wavy.sandbox.endpoints import (
    UNKNOWN_LIST,
    SandboxOrigin,
    endpoint_path,
    failed_body,
    pending_body,
    route,
)
from airflow_provider_wavy.sandbox.lists import LIST_TYPES

if TYPE_CHECKING:
    from airflow_provider_wavy.sandbox.http import SandboxHandler
    from airflow_provider_wavy.sandbox.scenario import Scenario
    from airflow_provider_wavy.sandbox.state import RecordedRequest


class ApiOrigin(SandboxOrigin):
    """Answers the API origin's requests."""

    name = "api"

    def handle(self, handler: SandboxHandler, request: RecordedRequest, raw_query: str) -> None:
        """
        Record the request and answer the session and list endpoints; anything else is a JSON 404/405.

        :param handler: The connection's handler (sends the answer).
        :param request: The request as recorded.
        :param raw_query: Query string as received (forwarded by redirects).
        """
        self.state.record(request)
        found = route(request.path)
        if found is None:
            handler.send_api_error(404, f"Not Found: no resource at {request.path}")
            return
        version, endpoint = found
        if endpoint == UNKNOWN_LIST:
            handler.send_api_error(
                404, f"Not Found: no list at {request.path}; the lists are {', '.join(LIST_TYPES)}."
            )
            return
        if handler.command != "GET":
            handler.send_api_error(405, headers=[("Allow", "GET")])
            return
        generation: int | None = None
        if version == "v1":
            scenario, call_index, generation = self.state.count_api_call(endpoint)
            handler.pause(scenario.api_delay, call_index, scenario.slow_calls)
            if self._redirected(handler, scenario, endpoint, raw_query):
                return
        else:
            scenario = self.state.scenario_for(endpoint)
            if scenario.api_status is not None:
                handler.send_api_error(scenario.api_status)
                return
        self._answer(handler, request, endpoint, scenario, generation)

    def _redirected(self, handler: SandboxHandler, scenario: Scenario, endpoint: str, raw_query: str) -> bool:
        """Answer the fixed status or a redirect when the scenario asks for one; return whether it did."""
        target = endpoint_path(endpoint) + (f"?{raw_query}" if raw_query else "")
        if scenario.api_status is not None:
            handler.send_api_error(scenario.api_status)
        elif scenario.redirect == "api-same-origin":
            handler.send(307, headers=[("Location", f"{self.site.base_url}/v2{target}")])
        elif scenario.redirect == "api-cross-origin":
            handler.send(302, headers=[("Location", f"{self.site.cdn_url}/redirected/v1{target}")])
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

    def _answer(
        self,
        handler: SandboxHandler,
        request: RecordedRequest,
        endpoint: str,
        scenario: Scenario,
        generation: int | None = None,
    ) -> None:
        """
        Check credentials and parameters, then answer the endpoint's current phase.

        :param handler: The connection's handler.
        :param request: The request.
        :param endpoint: ``SESSIONS`` or a list type.
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
        phase = self.state.next_phase(endpoint, scenario, generation)
        if phase == "stale":
            handler.send_api_error(
                503, "Service Unavailable: the sandbox's scenario changed during this call."
            )
        elif phase == "rate-limited":
            retry = [] if scenario.retry_after is None else [("Retry-After", scenario.retry_after)]
            handler.send_api_error(scenario.rate_limit_status, headers=retry)
        elif phase == "server-error":
            handler.send_api_error(scenario.server_error_status)
        elif phase == "failed":
            handler.send_json(200, failed_body(scenario))
        elif phase == "pending":
            handler.send_json(200, pending_body(endpoint, scenario))
        else:
            self.send_ready(
                handler, endpoint, scenario, customer_id=customer_id, sub_account_id=sub_account_id
            )
