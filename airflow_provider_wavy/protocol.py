"""
The Wavy exchange, without I/O: build a request, read an answer into an outcome.

A call (:class:`ExportCall` for the API, :class:`FileCall` for a file host) holds the rules of one
logical request across its retries and redirects: what to send, how much of an answer to read, and what
an answer means (the file URL, "nothing yet", retry after N seconds, follow a checked redirect, or a typed
error). :func:`~airflow_provider_wavy.exchange.exchange` drives a call; the hooks only send and sleep.

This module gathers the protocol's names in one place; each lives in the module of its one job:
:mod:`~airflow_provider_wavy.request` (the requests), :mod:`~airflow_provider_wavy.outcomes` (what an
answer means), :mod:`~airflow_provider_wavy.calls` (the calls), :mod:`~airflow_provider_wavy.answers`
(reading answers), and settings, timing, URL rules and message wording in theirs.
"""

from __future__ import annotations

from airflow_provider_wavy.answers import (
    MAX_API_BODY,
    MAX_ERROR_BODY,
    body_limit,
    check_received_length,
    content_length,
    parse_export_body,
    parse_session_body,
)
from airflow_provider_wavy.calls import (
    MAX_FILE_REDIRECTS,
    MAX_REDIRECTS,
    Call,
    ExportCall,
    FileCall,
    SessionCall,
    new_export_call,
    new_file_call,
)
from airflow_provider_wavy.csv.first_row import FirstRowCheck  # re-exported: it lived here
from airflow_provider_wavy.exceptions import WavyError
from airflow_provider_wavy.exports import OPEN_SESSIONS
from airflow_provider_wavy.messages import (
    clean_text,
    cut_short_error,
    describe_network_error,
    error_text,
    tls_error,
    tls_failure_reason,
    too_large_error,
    transient_advice,
)
from airflow_provider_wavy.outcomes import Done, FollowRedirect, Outcome, ReadBody, Retry
from airflow_provider_wavy.request import (
    FILE_HEADERS,
    USER_AGENT,
    HttpRequest,
    build_export_request,
    build_file_request,
    build_session_request,
)
from airflow_provider_wavy.settings import (
    DEFAULT_BASE_URL,
    DEFAULT_CALL_TIMEOUT,
    DEFAULT_DOWNLOAD_TIMEOUT,
    DEFAULT_MAX_FILE_BYTES,
    DEFAULT_TIMEOUT,
    WavySettings,
    normalize_base_url,
)
from airflow_provider_wavy.timing import (
    BACKOFF_BASE,
    DEFAULT_MAX_RETRIES,
    Deadline,
    RetryPolicy,
    is_transient_status,
    parse_retry_after,
)
from airflow_provider_wavy.urls import (
    UrlError,
    check_file_url,
    describe_url,
    origin_of,
    redact,
    resolve_location,
)

SESSION_PATH = OPEN_SESSIONS.api_path

__all__ = [
    "BACKOFF_BASE",
    "DEFAULT_BASE_URL",
    "DEFAULT_CALL_TIMEOUT",
    "DEFAULT_DOWNLOAD_TIMEOUT",
    "DEFAULT_MAX_FILE_BYTES",
    "DEFAULT_MAX_RETRIES",
    "DEFAULT_TIMEOUT",
    "FILE_HEADERS",
    "MAX_API_BODY",
    "MAX_ERROR_BODY",
    "MAX_FILE_REDIRECTS",
    "MAX_REDIRECTS",
    "SESSION_PATH",
    "USER_AGENT",
    "Call",
    "Deadline",
    "Done",
    "ExportCall",
    "FileCall",
    "FirstRowCheck",
    "FollowRedirect",
    "HttpRequest",
    "Outcome",
    "ReadBody",
    "Retry",
    "RetryPolicy",
    "SessionCall",
    "UrlError",
    "WavyError",
    "WavySettings",
    "body_limit",
    "build_export_request",
    "build_file_request",
    "build_session_request",
    "check_file_url",
    "check_received_length",
    "clean_text",
    "content_length",
    "cut_short_error",
    "describe_network_error",
    "describe_url",
    "error_text",
    "is_transient_status",
    "new_export_call",
    "new_file_call",
    "normalize_base_url",
    "origin_of",
    "parse_export_body",
    "parse_retry_after",
    "parse_session_body",
    "redact",
    "resolve_location",
    "tls_error",
    "tls_failure_reason",
    "too_large_error",
    "transient_advice",
]
