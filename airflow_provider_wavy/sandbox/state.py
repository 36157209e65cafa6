"""
The sandbox's shared state: the scenario, the call counters, the recorded requests and the issued files.

Both origins' handler threads read and change it; every access goes through one lock.
"""

from __future__ import annotations

import datetime as dt
import logging
import threading
import uuid
from collections import Counter
from dataclasses import dataclass
from typing import TYPE_CHECKING, Protocol
from urllib.parse import quote

from airflow_provider_wavy.sandbox.lists import LIST_TYPES
from airflow_provider_wavy.sandbox.scenario import Scenario

if TYPE_CHECKING:
    from collections.abc import Callable, Mapping

logger = logging.getLogger(__name__)

#: The endpoint key of ``/v1/session`` (list endpoints are keyed by their list type).
SESSIONS = "session"
CREDENTIAL_HEADERS = frozenset({"username", "authenticationtoken"})


class SandboxSite(Protocol):
    """What the origins need to know about the running sandbox (``WavySandbox`` provides it)."""

    username: str
    token: str
    customer_id: str

    @property
    def base_url(self) -> str:
        """The API origin."""

    @property
    def cdn_url(self) -> str:
        """The CDN origin."""


@dataclass(frozen=True)
class RecordedRequest:
    """
    One request the sandbox received.

    :param origin: ``"api"`` or ``"cdn"``.
    :param method: HTTP method.
    :param path: URL path, without the query.
    :param query: Query parameters (the last value wins for repeated names).
    :param headers: Request headers, names in lower case (repeated headers joined with ``", "``).
    """

    origin: str
    method: str
    path: str
    query: dict[str, str]
    headers: dict[str, str]


@dataclass(frozen=True)
class IssuedFile:
    """A file URL handed out by the API: the parameters that regenerate its content."""

    file_id: str
    path: str
    endpoint: str
    customer_id: str
    sub_account_id: str | None
    scenario: Scenario

    def url(self, cdn_url: str) -> str:
        """
        Return the URL the API hands out for this file.

        :param cdn_url: The CDN origin.
        """
        # The issuing scenario's redirect knob may ask for a URL that redirects to the file.
        if self.scenario.redirect == "file":
            return f"{cdn_url}/r/{self.file_id}"
        return f"{cdn_url}{self.path}"


class SandboxState:
    """Counters, records and issued files, shared by the API and CDN handler threads."""

    def __init__(self, *, scenario: Scenario, max_recorded: int) -> None:
        """
        Start empty.

        :param scenario: The scenario of every endpoint without one of its own.
        :param max_recorded: Keep at most this many recorded requests (the oldest are dropped).
        """
        self._lock = threading.Lock()
        #: Set while the sandbox stops: wakes handlers sleeping on a delay knob.
        self.stopping = threading.Event()
        self._max_recorded = max_recorded
        self._scenario = scenario
        self._list_scenarios: dict[str, Scenario] = {}
        self._api_calls: Counter[str] = Counter()
        self._answers: Counter[str] = Counter()
        self._cdn_calls: Counter[str] = Counter()
        # Bumped by every scenario change and reset: a call that started before it (and slept through
        # it, e.g. a slow answer its client gave up on) must not consume the new scenario's phases.
        self._generation = 0
        self._requests: list[RecordedRequest] = []
        self._cdn_saw_credentials = False
        self._files_by_id: dict[str, IssuedFile] = {}
        self._files_by_path: dict[str, IssuedFile] = {}
        self._files_by_key: dict[tuple[str, str, str | None, Scenario], IssuedFile] = {}
        self._gzip_lengths: dict[str, int] = {}

    # -- scenario and counters -----------------------------------------------------------------------

    @property
    def scenario(self) -> Scenario:
        """The current scenario."""
        with self._lock:
            return self._scenario

    @scenario.setter
    def scenario(self, scenario: Scenario) -> None:
        """
        Replace the scenario and reset the call counters (file URLs already handed out stay valid).

        :param scenario: The new scenario.
        """
        if not isinstance(scenario, Scenario):
            raise TypeError(f"Expected a Scenario, got {type(scenario).__name__}")
        with self._lock:
            self._scenario = scenario
            self._reset_counters()

    @property
    def list_scenarios(self) -> dict[str, Scenario]:
        """A copy of the list types' own scenarios."""
        with self._lock:
            return dict(self._list_scenarios)

    @list_scenarios.setter
    def list_scenarios(self, scenarios: Mapping[str, Scenario]) -> None:
        """
        Give list types their own scenarios (the others follow ``scenario``) and reset the call counters.

        :param scenarios: List type (``OPTOUT``, ...) to scenario.
        """
        checked: dict[str, Scenario] = {}
        for list_type, scenario in scenarios.items():
            if list_type not in LIST_TYPES:
                raise ValueError(f"list_scenarios keys must be among {LIST_TYPES}, got {list_type!r}")
            if not isinstance(scenario, Scenario):
                raise TypeError(f"Expected a Scenario for {list_type}, got {type(scenario).__name__}")
            checked[list_type] = scenario
        with self._lock:
            self._list_scenarios = checked
            self._reset_counters()

    def scenario_for(self, endpoint: str) -> Scenario:
        """
        Return the scenario of an endpoint.

        :param endpoint: ``SESSIONS`` or a list type.
        """
        with self._lock:
            return self._list_scenarios.get(endpoint, self._scenario)

    def api_calls(self, endpoint: str) -> int:
        """
        Return the number of API requests to an endpoint since the last reset or scenario change.

        :param endpoint: ``SESSIONS`` or a list type.
        """
        with self._lock:
            return self._api_calls[endpoint]

    def cdn_calls(self) -> int:
        """Return the number of requests for issued files since the last reset or scenario change."""
        with self._lock:
            return sum(self._cdn_calls.values())

    def requests(self) -> list[RecordedRequest]:
        """Return a copy of the recorded requests of both origins, oldest first."""
        with self._lock:
            return list(self._requests)

    @property
    def cdn_saw_credentials(self) -> bool:
        """Whether any CDN request carried a credential header."""
        with self._lock:
            return self._cdn_saw_credentials

    def reset(self) -> None:
        """Reset the counters, the recorded requests and the credential recorder."""
        with self._lock:
            self._reset_counters()
            self._requests.clear()
            self._cdn_saw_credentials = False

    def _reset_counters(self) -> None:
        """Zero every counter and start a new generation (the caller holds the lock)."""
        self._api_calls.clear()
        self._answers.clear()
        self._cdn_calls.clear()
        self._generation += 1

    def record(self, request: RecordedRequest) -> None:
        """
        Keep a request (bounded) and note credentials reaching the CDN.

        :param request: The request as received.
        """
        leaked = request.origin == "cdn" and not CREDENTIAL_HEADERS.isdisjoint(request.headers)
        with self._lock:
            if self._max_recorded:
                self._requests.append(request)
                if len(self._requests) > self._max_recorded:
                    # Drop a slice at once so that a long benchmark does not pay O(n) per request.
                    del self._requests[: max(1, self._max_recorded // 10)]
            if leaked:
                self._cdn_saw_credentials = True
        if leaked:
            logger.debug("Sandbox CDN received a credential header on %s", request.path)

    def count_api_call(self, endpoint: str) -> tuple[Scenario, int, int]:
        """
        Count an API call; return the scenario, the call's 0-based index and the generation.

        :param endpoint: ``SESSIONS`` or a list type.
        """
        with self._lock:
            index = self._api_calls[endpoint]
            self._api_calls[endpoint] += 1
            return self._list_scenarios.get(endpoint, self._scenario), index, self._generation

    def count_cdn_call(self, endpoint: str) -> tuple[Scenario, int]:
        """
        Count a file request; return the scenario and the request's 0-based index.

        :param endpoint: The endpoint that issued the file.
        """
        with self._lock:
            index = self._cdn_calls[endpoint]
            self._cdn_calls[endpoint] += 1
            return self._list_scenarios.get(endpoint, self._scenario), index

    def next_phase(self, endpoint: str, scenario: Scenario, generation: int | None = None) -> str:
        """
        Return the phase of the next authenticated, valid call to an endpoint.

        :param endpoint: ``SESSIONS`` or a list type.
        :param scenario: The scenario the call started under.
        :param generation: The generation the call started under; "stale" when it changed since.
        """
        with self._lock:
            if generation is not None and generation != self._generation:
                return "stale"
            index = self._answers[endpoint]
            self._answers[endpoint] += 1
        for phase, count in (
            ("rate-limited", scenario.rate_limited_calls),
            ("server-error", scenario.server_errors),
            ("failed", scenario.failed_answers),
            ("pending", scenario.ready_after),
        ):
            if index < count:
                return phase
            index -= count
        return "ready"

    # -- issued files --------------------------------------------------------------------------------

    def issue(
        self, endpoint: str, customer_id: str, sub_account_id: str | None, scenario: Scenario
    ) -> IssuedFile:
        """
        Return the file for these parameters, registering it (with a new URL path) the first time.

        :param endpoint: ``SESSIONS`` or a list type.
        :param customer_id: Customer id of the request.
        :param sub_account_id: Sub-account id, or None.
        :param scenario: The scenario whose content knobs the file keeps.
        """
        key = (endpoint, customer_id, sub_account_id, scenario)
        with self._lock:
            entry = self._files_by_key.get(key)
            if entry is None:
                file_id = str(uuid.uuid4())
                path = _new_path(endpoint, customer_id, sub_account_id, file_id)
                entry = IssuedFile(file_id, path, endpoint, customer_id, sub_account_id, scenario)
                self._files_by_key[key] = self._files_by_id[file_id] = self._files_by_path[path] = entry
            return entry

    def file_by_id(self, file_id: str) -> IssuedFile | None:
        """
        Look an issued file up by id.

        :param file_id: The id in a ``/r/<id>`` URL.
        """
        with self._lock:
            return self._files_by_id.get(file_id)

    def file_by_path(self, path: str) -> IssuedFile | None:
        """
        Look an issued file up by URL path.

        :param path: The path of the file URL.
        """
        with self._lock:
            return self._files_by_path.get(path)

    def gzip_length(self, entry: IssuedFile, measure: Callable[[IssuedFile], int]) -> int:
        """
        Return (and cache) the compressed size of a file.

        :param entry: The file.
        :param measure: Computes the size when it is not cached yet (outside the lock: it may be slow).
        """
        with self._lock:
            cached = self._gzip_lengths.get(entry.file_id)
        if cached is None:
            cached = measure(entry)
            with self._lock:
                self._gzip_lengths[entry.file_id] = cached
        return cached


def _new_path(endpoint: str, customer_id: str, sub_account_id: str | None, file_id: str) -> str:
    """
    Return a fresh URL path shaped like Wavy's: ``/YYYY/MM/DD/<uuid>/<uuid>`` for the sessions file,
    ``/YYYY/MM/DD/<uuid>/list-<customer>-<number>.csv`` for a list.
    """
    day = f"{dt.datetime.now(dt.UTC):%Y/%m/%d}"
    if endpoint == SESSIONS:
        folder = uuid.uuid5(uuid.NAMESPACE_URL, f"wavy-sandbox:{customer_id}:{sub_account_id or ''}")
        return f"/{day}/{folder}/{file_id}"
    folder = uuid.uuid5(uuid.NAMESPACE_URL, f"wavy-sandbox:{customer_id}:{sub_account_id or ''}:{endpoint}")
    number = uuid.UUID(file_id).int >> 65  # 63 bits, like the number in Wavy's example
    return f"/{day}/{folder}/list-{quote(customer_id, safe='')}-{number}.csv"
