"""
The Wavy sandbox: an emulated sessions and lists API origin and CDN origin on loopback, in one process.

The API origin answers ``GET /v1/session`` and ``GET /v1/list/{type}`` like Wavy does (credentials in the
``UserName`` and ``authenticationToken`` headers, a JSON body holding ``file_url``, or ``data`` for the
lists); the CDN origin serves the files those
URLs name, without credentials, and records whether a credential ever reached it. This module holds the
public front, ``WavySandbox``; the origins live in ``api`` and ``cdn``, their plumbing in ``http`` and the
shared counters and files in ``state``.
"""

from __future__ import annotations

import json
import logging
import threading
import time
from typing import TYPE_CHECKING
from urllib.parse import quote, urlencode, urlsplit

from airflow_provider_wavy.sandbox.api import ApiOrigin
from airflow_provider_wavy.sandbox.cdn import CdnOrigin
from airflow_provider_wavy.sandbox.data import iter_csv_chunks
from airflow_provider_wavy.sandbox.http import AUTH_ERROR_MESSAGE, SandboxServer
from airflow_provider_wavy.sandbox.lists import LIST_TYPES, iter_list_chunks
from airflow_provider_wavy.sandbox.scenario import Scenario
from airflow_provider_wavy.sandbox.state import SESSIONS, RecordedRequest, SandboxState

if TYPE_CHECKING:
    from collections.abc import Mapping
    from types import TracebackType

logger = logging.getLogger(__name__)

DEFAULT_USERNAME = "sandbox-user"
DEFAULT_TOKEN = "sandbox-token"  # noqa: S105 - the sandbox's well-known fake credential
DEFAULT_CUSTOMER_ID = "1001"

_STOP_GRACE = 5.0


class WavySandbox:
    """
    Run an emulated Wavy sessions API and its CDN on loopback, for tests and offline DAG runs.

    Use it as a context manager (or call ``start()``/``stop()``)::

        with WavySandbox(scenario=Scenario(rows=10)) as sb:
            os.environ["AIRFLOW_CONN_WAVY_DEFAULT"] = sb.connection_json()
    """

    def __init__(
        self,
        username: str = DEFAULT_USERNAME,
        token: str = DEFAULT_TOKEN,
        *,
        scenario: Scenario | None = None,
        customer_id: str = DEFAULT_CUSTOMER_ID,
        host: str = "127.0.0.1",
        port: int = 0,
        cdn_port: int = 0,
        max_recorded: int = 100_000,
    ) -> None:
        """
        Configure the sandbox (nothing listens before ``start()``).

        :param username: The only accepted ``UserName``.
        :param token: The only accepted ``authenticationToken``.
        :param scenario: How to answer (default: ``Scenario()``, the happy path).
        :param customer_id: Customer id put in ``connection_json()``; the API accepts any customerId.
        :param host: Interface to listen on, for both origins.
        :param port: API port (0 = a free port).
        :param cdn_port: CDN port (0 = a free port).
        :param max_recorded: Keep at most this many recorded requests (the oldest are dropped).
        """
        if max_recorded < 0:
            raise ValueError(f"max_recorded must be >= 0, got {max_recorded}")
        self.username = username
        self.token = token
        self.customer_id = str(customer_id)
        self.host = host
        self._ports = (port, cdn_port)
        self._state = SandboxState(scenario=scenario or Scenario(), max_recorded=max_recorded)
        self._servers: list[SandboxServer] = []
        self._threads: list[threading.Thread] = []
        self._urls: tuple[str, str] | None = None

    def __repr__(self) -> str:
        """Describe the sandbox without its token."""
        where = f"{self._urls[0]}, cdn {self._urls[1]}" if self._urls else "not started"
        return f"WavySandbox({where}, username={self.username!r})"

    # -- lifecycle ---------------------------------------------------------------------------------------

    def start(self) -> WavySandbox:
        """Bind both origins and serve them from daemon threads; return self."""
        if self._servers:
            raise RuntimeError("The sandbox is already running")
        self._state.stopping.clear()
        servers: list[SandboxServer] = []
        try:
            for name, port in zip(("api", "cdn"), self._ports, strict=True):
                servers.append(SandboxServer((self.host, port), name, self._state.stopping))
        except OSError:
            for server in servers:
                server.server_close()
            raise
        self._servers = servers
        self._urls = (_url(self.host, servers[0].server_port), _url(self.host, servers[1].server_port))
        servers[0].origin = ApiOrigin(self._state, self)
        servers[1].origin = CdnOrigin(self._state, self)
        for server in servers:
            # A short poll interval makes stop() return within ~50 ms.
            thread = threading.Thread(
                target=server.serve_forever,
                kwargs={"poll_interval": 0.05},
                name=f"wavy-sandbox-{server.name}",
                daemon=True,
            )
            thread.start()
            self._threads.append(thread)
        logger.debug("Wavy sandbox listening: API %s, CDN %s", *self._urls)
        return self

    def stop(self) -> None:
        """Stop both origins, cut open connections and wait (briefly) for their threads; idempotent."""
        if not self._servers:
            return
        self._state.stopping.set()  # wakes handlers sleeping on a delay knob
        for server in self._servers:
            server.shutdown()
        deadline = time.monotonic() + _STOP_GRACE
        for server in self._servers:
            server.server_close()
            server.close_connections(deadline)
        for thread in self._threads:
            thread.join(max(0.0, deadline - time.monotonic()))
        self._servers = []
        self._threads = []

    def __enter__(self) -> WavySandbox:
        """Start the sandbox."""
        return self.start()

    def __exit__(
        self,
        exc_type: type[BaseException] | None,
        exc: BaseException | None,
        traceback: TracebackType | None,
    ) -> None:
        """Stop the sandbox."""
        self.stop()

    # -- public state --------------------------------------------------------------------------------------

    @property
    def base_url(self) -> str:
        """The API origin, for example ``http://127.0.0.1:41234`` (the connection's host)."""
        return self._started_urls()[0]

    @property
    def cdn_url(self) -> str:
        """The CDN origin the file URLs point at."""
        return self._started_urls()[1]

    @property
    def port(self) -> int:
        """The API port."""
        return int(urlsplit(self.base_url).port or 0)

    @property
    def cdn_port(self) -> int:
        """The CDN port."""
        return int(urlsplit(self.cdn_url).port or 0)

    @property
    def scenario(self) -> Scenario:
        """The current scenario."""
        return self._state.scenario

    @scenario.setter
    def scenario(self, scenario: Scenario) -> None:
        """
        Replace the scenario and reset the call counters (file URLs already handed out stay valid).

        :param scenario: The new scenario.
        """
        self._state.scenario = scenario

    @property
    def api_calls(self) -> int:
        """Number of ``/v1/session`` requests since the last reset or scenario change."""
        return self._state.api_calls(SESSIONS)

    @property
    def list_scenarios(self) -> dict[str, Scenario]:
        """
        A copy of the scenarios of the lists that have their own; the other lists follow ``scenario``.

        Assigning a dict (for example ``{"OPTOUT": Scenario(ready_after=2, rows=0)}``) replaces them all
        and resets the call counters.
        """
        return self._state.list_scenarios

    @list_scenarios.setter
    def list_scenarios(self, scenarios: Mapping[str, Scenario]) -> None:
        """
        Replace the lists' own scenarios and reset the call counters.

        :param scenarios: List type (``OPTOUT``, ...) to scenario.
        """
        self._state.list_scenarios = scenarios

    @property
    def list_calls(self) -> dict[str, int]:
        """Number of ``/v1/list/{type}`` requests per list type since the last reset or scenario change."""
        return {list_type: self._state.api_calls(list_type) for list_type in LIST_TYPES}

    @property
    def cdn_calls(self) -> int:
        """Number of requests for issued files since the last reset or scenario change."""
        return self._state.cdn_calls()

    @property
    def requests(self) -> list[RecordedRequest]:
        """A copy of the recorded requests of both origins, oldest first."""
        return self._state.requests()

    @property
    def cdn_requests(self) -> list[RecordedRequest]:
        """A copy of the recorded requests of the CDN origin."""
        return [request for request in self.requests if request.origin == "cdn"]

    @property
    def cdn_saw_credentials(self) -> bool:
        """Whether any CDN request carried a ``UserName`` or ``authenticationToken`` header (any case)."""
        return self._state.cdn_saw_credentials

    def reset(self) -> None:
        """Reset the counters, the recorded requests and the credential recorder."""
        self._state.reset()

    def expected_bytes(
        self,
        customer_id: str | None = None,
        sub_account_id: str | None = None,
        *,
        list_type: str | None = None,
    ) -> bytes:
        """
        Return the uncompressed file body the current scenario serves (small files only: it is held whole).

        :param customer_id: Customer id (default: the sandbox's ``customer_id``).
        :param sub_account_id: Sub-account id, or None.
        :param list_type: A list type for that list's file (None: the sessions file).
        """
        customer = self.customer_id if customer_id is None else customer_id
        if list_type is None:
            return b"".join(iter_csv_chunks(customer, sub_account_id, self.scenario))
        scenario = self._state.scenario_for(list_type)
        return b"".join(iter_list_chunks(customer, sub_account_id, list_type, scenario))

    def list_url(self, list_type: str, customer_id: str | None = None) -> str:
        """
        Return the API URL of a list, e.g. ``http://127.0.0.1:8765/v1/list/OPTOUT?customerId=1001``.

        :param list_type: ``OPTOUT``, ``OPTIN``, ``BLACKLIST`` or ``WHITELIST``.
        :param customer_id: Customer id (default: the sandbox's ``customer_id``).
        """
        query = urlencode({"customerId": self.customer_id if customer_id is None else customer_id})
        return f"{self.base_url}/v1/list/{list_type}?{query}"

    def connection_json(self) -> str:
        """Return the JSON form of an Airflow ``wavy`` connection to this sandbox."""
        return json.dumps(
            {
                "conn_type": "wavy",
                "host": self.base_url,
                "login": self.username,
                "password": self.token,
                "extra": {"customer_id": self.customer_id},
            }
        )

    def connection_uri(self) -> str:
        """Return the URI form (host with protocol) of an Airflow ``wavy`` connection to this sandbox."""
        parts = urlsplit(self.base_url)
        login = quote(self.username, safe="")
        password = quote(self.token, safe="")
        query = urlencode({"customer_id": self.customer_id})
        return f"wavy://{parts.scheme}://{login}:{password}@{parts.netloc}/?{query}"

    def env(self) -> dict[str, str]:
        """Return environment variables pointing Airflow and scripts at this sandbox."""
        return {
            "WAVY_SANDBOX_BASE_URL": self.base_url,
            "WAVY_SANDBOX_CDN_URL": self.cdn_url,
            "AIRFLOW_CONN_WAVY_DEFAULT": self.connection_json(),
        }

    def _started_urls(self) -> tuple[str, str]:
        """Return (API URL, CDN URL) or fail when the sandbox never started."""
        if self._urls is None:
            raise RuntimeError("The sandbox is not started: use it as a context manager or call start()")
        return self._urls


def _url(host: str, port: int) -> str:
    """Return an http URL for a host and port (IPv6 literals bracketed)."""
    return f"http://[{host}]:{port}" if ":" in host else f"http://{host}:{port}"


__all__ = [
    "AUTH_ERROR_MESSAGE",
    "DEFAULT_CUSTOMER_ID",
    "DEFAULT_TOKEN",
    "DEFAULT_USERNAME",
    "RecordedRequest",
    "WavySandbox",
]
