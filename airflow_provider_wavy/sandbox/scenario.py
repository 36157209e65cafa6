"""
Scenario knobs for the Wavy sandbox: how the emulated API and CDN misbehave (or not).

Every field defaults to the happy path, so ``Scenario()`` is a sandbox that answers the first call with a
file URL and serves a 25-row CSV.
"""

from __future__ import annotations

import dataclasses
from dataclasses import dataclass
from typing import Any

PENDING_STYLES: tuple[str, ...] = ("missing", "null", "empty", "data")
REDIRECT_MODES: tuple[str, ...] = ("api-cross-origin", "api-same-origin", "file")
FILE_BODIES: tuple[str, ...] = ("csv", "html", "json-error", "missing-column", "empty")
GENERATED_DELIMITERS: tuple[str, ...] = (";", ",", "\t", "|")

# Characters that would break the fixed-width, unquoted-safe layout of the generated CSV.
_FORBIDDEN_IN_NAMES = frozenset('"\r\n\ufeff')

_INT_FIELDS = (
    "rows",
    "ready_after",
    "rate_limited_calls",
    "server_errors",
    "failed_answers",
    "cdn_not_found_calls",
)
_BOOL_FIELDS = ("bom", "crlf", "final_newline", "quote", "gzip", "chunked", "no_data")
# The timestamp columns of the sessions file and of the lists: extra columns must not reuse them.
_TIME_COLUMNS = ("session_created_at", "createdAt")


@dataclass(frozen=True)
class Scenario:
    """
    Describe how the sandbox answers; every default is the happy path.

    Calls to ``/v1/session`` (or to one list, ``/v1/list/{type}``) that pass authentication and validation
    go through phases, in this order: ``rate_limited_calls`` rate-limited answers, then ``server_errors``
    5xx answers, then ``failed_answers`` ``success: false`` answers, then ``ready_after`` "nothing yet"
    answers, then the file URL. Each endpoint counts its own calls.

    :param rows: Data rows in the CSV (0 = header only).
    :param ready_after: Calls answered 200 with "nothing yet" before the file URL.
    :param pending_style: Shape of "nothing yet": ``missing`` (``{}``), ``null`` (``{"file_url": null}``),
        ``empty`` (``{"file_url": ""}``) or ``data`` (``{"success": true, "status": 200}``). A list answers
        ``{"success": true, "status": 200}`` plus nothing (``missing``, ``data``), ``"data": null`` or
        ``"data": ""``.
    :param api_status: Answer every call (session or list) with this status and a JSON error body.
    :param rate_limit_status: Status of rate-limited answers (429 or Wavy's 420).
    :param rate_limited_calls: Calls answered with ``rate_limit_status``.
    :param retry_after: ``Retry-After`` header of rate-limited answers (seconds or HTTP date; None = none).
    :param server_errors: Calls answered with ``server_error_status`` (after the rate-limited ones).
    :param server_error_status: Status of the server-error burst.
    :param failed_answers: Calls answered HTTP 200 ``{"success": false, "status": failed_status, "message":
        ...}`` (after the server errors).
    :param failed_status: The ``status`` inside those answers.
    :param body_status: The ``status`` inside ``{"success": true, ...}`` answers (the lists' answers and the
        ``data`` pending style); another value than 200 makes an HTTP 200 answer that says otherwise.
    :param no_data: Lists only: the ready answer leaves ``data`` out (``{"success": true, "status": 200}``),
        Wavy's answer when a list is empty; no file is issued.
    :param api_delay: Seconds to wait before answering an API call.
    :param cdn_delay: Seconds to wait before answering a file request.
    :param slow_calls: Only the first N API calls / N file requests are slow (None = all).
    :param truncate_at: The CDN announces the full length but closes after this many body bytes.
    :param truncate_stall: Seconds the CDN stays silent at ``truncate_at`` before it closes: a transfer that
        stalls, so the client's read timeout fires first.
    :param redirect: ``api-cross-origin``, ``api-same-origin`` or ``file`` (see docs/sandbox.md).
    :param cdn_not_found_calls: File requests answered with ``cdn_status`` before the file is served.
    :param cdn_status: Status of those early file requests (403 or 404, like a CDN not yet in sync).
    :param file_body: ``csv``, ``html``, ``json-error``, ``missing-column`` or ``empty``.
    :param delimiter: CSV delimiter (``;`` or ``,``; tab and ``|`` also work).
    :param bom: Start the file with a UTF-8 byte order mark.
    :param crlf: End lines with ``\\r\\n`` instead of ``\\n``.
    :param phone_column: Name of the phone column (``source``; the Portuguese docs say ``origin``).
    :param final_newline: End the last line with a line break.
    :param quote: Quote every field with ``"``.
    :param extra_columns: Extra trailing columns, filled with deterministic values.
    :param gzip: Serve the file with ``Content-Encoding: gzip``.
    :param chunked: Serve the file with ``Transfer-Encoding: chunked`` and no ``Content-Length``.
    :param content_type: Override the file's ``Content-Type`` (None = chosen from ``file_body``).
    :param file_url_query: A query appended to every issued file URL, as a CDN's signed URL carries one
        (e.g. ``X-Amz-Signature=...``); the CDN ignores it.
    :param bad_timestamp_rows: 0-based data rows whose timestamp is ``9999-99-99T99:99:99Z``
        (``9999-99-99 99:99:99`` in a list): the same width, so sizes do not change, but no time at all.
    """

    rows: int = 25
    ready_after: int = 0
    pending_style: str = "missing"
    api_status: int | None = None
    rate_limit_status: int = 429
    rate_limited_calls: int = 0
    retry_after: str | None = "1"
    server_errors: int = 0
    server_error_status: int = 503
    failed_answers: int = 0
    failed_status: int = 500
    body_status: int = 200
    no_data: bool = False
    api_delay: float = 0.0
    cdn_delay: float = 0.0
    slow_calls: int | None = None
    truncate_at: int | None = None
    truncate_stall: float = 0.0
    redirect: str | None = None
    cdn_not_found_calls: int = 0
    cdn_status: int = 404
    file_body: str = "csv"
    delimiter: str = ";"
    bom: bool = False
    crlf: bool = False
    phone_column: str = "source"
    final_newline: bool = True
    quote: bool = False
    extra_columns: tuple[str, ...] = ()
    gzip: bool = False
    chunked: bool = False
    content_type: str | None = None
    file_url_query: str | None = None
    bad_timestamp_rows: tuple[int, ...] = ()

    def __post_init__(self) -> None:
        """Validate the knobs so that a typo fails loudly instead of serving the happy path."""
        # JSON and callers hand over lists; a tuple keeps the scenario hashable (it keys the file registry).
        for name in ("extra_columns", "bad_timestamp_rows"):
            if not isinstance(getattr(self, name), tuple):
                object.__setattr__(self, name, tuple(getattr(self, name)))
        self._check_counts()
        self._check_statuses()
        self._check_choices()
        self._check_names()

    def _check_counts(self) -> None:
        """Reject negative counts, non-booleans and bad delays."""
        for name in _INT_FIELDS:
            value = getattr(self, name)
            if isinstance(value, bool) or not isinstance(value, int) or value < 0:
                raise ValueError(f"Scenario.{name} must be an integer >= 0, got {value!r}")
        for name in ("slow_calls", "truncate_at"):
            value = getattr(self, name)
            if value is not None and (isinstance(value, bool) or not isinstance(value, int) or value < 0):
                raise ValueError(f"Scenario.{name} must be None or an integer >= 0, got {value!r}")
        for name in ("api_delay", "cdn_delay", "truncate_stall"):
            value = getattr(self, name)
            if isinstance(value, bool) or not isinstance(value, int | float) or value < 0:
                raise ValueError(f"Scenario.{name} must be a number of seconds >= 0, got {value!r}")
        if self.truncate_stall and self.truncate_at is None:
            raise ValueError(
                "Scenario.truncate_stall needs truncate_at: the stall happens where the body is cut"
            )
        for row in self.bad_timestamp_rows:
            if isinstance(row, bool) or not isinstance(row, int) or row < 0:
                raise ValueError(f"Scenario.bad_timestamp_rows must hold integers >= 0, got {row!r}")
        for name in _BOOL_FIELDS:
            if not isinstance(getattr(self, name), bool):
                raise ValueError(f"Scenario.{name} must be a bool, got {getattr(self, name)!r}")

    def _check_statuses(self) -> None:
        """Reject statuses that cannot be error answers."""
        statuses = {
            "api_status": (self.api_status, 400),
            "rate_limit_status": (self.rate_limit_status, 400),
            "server_error_status": (self.server_error_status, 500),
            "cdn_status": (self.cdn_status, 400),
            "failed_status": (self.failed_status, 100),
            "body_status": (self.body_status, 100),
        }
        for name, (value, low) in statuses.items():
            if value is None and name == "api_status":
                continue
            if isinstance(value, bool) or not isinstance(value, int) or not low <= value <= 599:
                raise ValueError(f"Scenario.{name} must be an HTTP status in {low}..599, got {value!r}")

    def _check_choices(self) -> None:
        """Reject values outside the documented choices."""
        choices: dict[str, tuple[object, tuple[str, ...]]] = {
            "pending_style": (self.pending_style, PENDING_STYLES),
            "file_body": (self.file_body, FILE_BODIES),
            "delimiter": (self.delimiter, GENERATED_DELIMITERS),
        }
        for name, (value, allowed) in choices.items():
            if value not in allowed:
                raise ValueError(f"Scenario.{name} must be one of {allowed}, got {value!r}")
        if self.redirect is not None and self.redirect not in REDIRECT_MODES:
            raise ValueError(
                f"Scenario.redirect must be None or one of {REDIRECT_MODES}, got {self.redirect!r}"
            )
        if self.retry_after is not None and not isinstance(self.retry_after, str):
            raise ValueError(f"Scenario.retry_after must be None or a string, got {self.retry_after!r}")
        if self.file_url_query is not None and not (
            isinstance(self.file_url_query, str)
            and self.file_url_query.isprintable()
            and "#" not in self.file_url_query
        ):
            raise ValueError(
                "Scenario.file_url_query must be None or a URL query without '#', "
                f"got {self.file_url_query!r}"
            )
        if self.content_type is not None and (not self.content_type or "\n" in self.content_type):
            raise ValueError(
                f"Scenario.content_type must be None or a header value, got {self.content_type!r}"
            )

    def _check_names(self) -> None:
        """Reject column names that would need escaping or collide."""
        names = (self.phone_column, *self.extra_columns)
        for name in names:
            if (
                not isinstance(name, str)
                or not name
                or self.delimiter in name
                or _FORBIDDEN_IN_NAMES & set(name)
            ):
                raise ValueError(
                    f"Column name {name!r} must be a non-empty string without quotes, line breaks "
                    f"or the delimiter {self.delimiter!r}"
                )
        all_names = (*names, *_TIME_COLUMNS)
        if len(set(all_names)) != len(all_names):
            raise ValueError(f"Column names must be unique, got {all_names}")

    def replace(self, **changes: Any) -> Scenario:
        """
        Return a copy with some knobs changed.

        :param changes: Knob names and their new values.
        """
        return dataclasses.replace(self, **changes)

    def to_dict(self) -> dict[str, Any]:
        """Return the knobs as a JSON-friendly dict."""
        data = dataclasses.asdict(self)
        data["extra_columns"] = list(self.extra_columns)
        data["bad_timestamp_rows"] = list(self.bad_timestamp_rows)
        return data

    @classmethod
    def from_dict(cls, data: dict[str, Any]) -> Scenario:
        """
        Build a scenario from a dict of knobs (for example parsed JSON), rejecting unknown names.

        :param data: Knob names and values; missing knobs keep their defaults.
        """
        known = {field.name for field in dataclasses.fields(cls)}
        unknown = sorted(set(data) - known)
        if unknown:
            raise ValueError(f"Unknown scenario knob(s) {unknown}; known knobs: {sorted(known)}")
        return cls(**data)
