"""
The sandbox's CDN origin: serves the issued files without credentials, generated while streaming
(optionally gzip-compressed, chunked, truncated or stalled), plus S3-style errors and redirect landings.
"""

from __future__ import annotations

from typing import TYPE_CHECKING

from airflow_provider_wavy.sandbox.data import (
    content_type,
    csv_size,
    gzip_size,
    iter_csv_chunks,
    iter_gzip_chunks,
)
from airflow_provider_wavy.sandbox.endpoints import UNKNOWN_LIST, SandboxOrigin, route
from airflow_provider_wavy.sandbox.http import phrase
from airflow_provider_wavy.sandbox.lists import iter_list_chunks, list_size
from airflow_provider_wavy.sandbox.state import SESSIONS

if TYPE_CHECKING:
    from collections.abc import Iterator

    from airflow_provider_wavy.sandbox.http import SandboxHandler
    from airflow_provider_wavy.sandbox.scenario import Scenario
    from airflow_provider_wavy.sandbox.state import IssuedFile, RecordedRequest

_CDN_ERRORS = {
    403: ("AccessDenied", "Access Denied"),
    404: ("NoSuchKey", "The specified key does not exist."),
}


def file_chunks(entry: IssuedFile) -> Iterator[bytes]:
    """
    Yield the uncompressed body of an issued file.

    :param entry: The file.
    """
    if entry.endpoint == SESSIONS:
        return iter_csv_chunks(entry.customer_id, entry.sub_account_id, entry.scenario)
    return iter_list_chunks(entry.customer_id, entry.sub_account_id, entry.endpoint, entry.scenario)


def _file_size(entry: IssuedFile) -> int:
    """Return the uncompressed size of an issued file, without generating it."""
    if entry.endpoint == SESSIONS:
        return csv_size(entry.customer_id, entry.sub_account_id, entry.scenario)
    return list_size(entry.customer_id, entry.sub_account_id, entry.endpoint, entry.scenario)


def _measure_gzip(entry: IssuedFile) -> int:
    """Compute the compressed size of a file by a streaming pre-pass (one chunk held at a time)."""
    if entry.endpoint == SESSIONS:
        return gzip_size(entry.customer_id, entry.sub_account_id, entry.scenario)
    return sum(len(piece) for piece in iter_gzip_chunks(file_chunks(entry)))


class CdnOrigin(SandboxOrigin):
    """Answers the CDN origin's requests."""

    name = "cdn"

    def handle(self, handler: SandboxHandler, request: RecordedRequest, raw_query: str) -> None:
        """
        Record the request; answer a redirected API call, a redirect to a file, a file, or a CDN-style 404.

        :param handler: The connection's handler (sends the answer).
        :param request: The request as recorded.
        :param raw_query: Query string as received.
        """
        self.state.record(request)
        path = request.path
        if path.startswith("/redirected/"):
            self._redirected_api_call(handler, request)
            return
        if path.startswith("/r/"):
            target = self.state.file_by_id(path[3:])
            if target is None:
                _send_error(handler, 404)
            else:
                handler.send(302, headers=[("Location", f"{self.site.cdn_url}{target.path}")])
            return
        entry = self.state.file_by_path(path)
        if entry is None:
            _send_error(handler, 404)
            return
        if handler.command not in ("GET", "HEAD"):
            _send_error(handler, 405)
            return
        scenario, call_index = self.state.count_cdn_call(entry.endpoint)
        handler.pause(scenario.cdn_delay, call_index, scenario.slow_calls)
        if call_index < scenario.cdn_not_found_calls:
            _send_error(handler, scenario.cdn_status)
            return
        self._serve(handler, entry, scenario)

    def _redirected_api_call(self, handler: SandboxHandler, request: RecordedRequest) -> None:
        """Answer where a cross-origin redirect lands: like the API, minus the checks."""
        found = route(request.path[len("/redirected") :])
        if found is None or found[0] != "v1" or found[1] == UNKNOWN_LIST:
            _send_error(handler, 404)
            return
        endpoint = found[1]
        customer_id = request.query.get("customerId", "").strip() or self.site.customer_id
        sub_account_id = request.query.get("subAccountId", "").strip() or None
        scenario = self.state.scenario_for(endpoint)
        self.send_ready(handler, endpoint, scenario, customer_id=customer_id, sub_account_id=sub_account_id)

    def _serve(self, handler: SandboxHandler, entry: IssuedFile, scenario: Scenario) -> None:
        """Send the file: content from the scenario it was issued under, transport from the current one."""
        chunks = file_chunks(entry)
        length: int | None
        if scenario.gzip:
            chunks = iter_gzip_chunks(chunks)
            length = None if scenario.chunked else self.state.gzip_length(entry, _measure_gzip)
        else:
            length = None if scenario.chunked else _file_size(entry)
        handler.send_response(200)
        handler.send_header("Content-Type", content_type(entry.scenario))
        if scenario.gzip:
            handler.send_header("Content-Encoding", "gzip")
        if length is None:
            handler.send_header("Transfer-Encoding", "chunked")
        else:
            handler.send_header("Content-Length", str(length))
        handler.end_headers()
        if handler.command == "HEAD":
            return
        handler.stream(
            chunks, chunked=length is None, limit=scenario.truncate_at, stall=scenario.truncate_stall
        )


def _send_error(handler: SandboxHandler, status: int) -> None:
    """Send an S3/CloudFront-style XML error."""
    code, message = _CDN_ERRORS.get(status, (phrase(status).replace(" ", ""), phrase(status)))
    body = (
        f'<?xml version="1.0" encoding="UTF-8"?>\n<Error><Code>{code}</Code>'
        f"<Message>{message}</Message></Error>\n"
    ).encode()
    handler.send(status, body, "application/xml")
