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
from airflow_provider_wavy.sandbox.http import phrase
from airflow_provider_wavy.sandbox.state import SESSIONS

if TYPE_CHECKING:
    from airflow_provider_wavy.sandbox.http import SandboxHandler
    from airflow_provider_wavy.sandbox.scenario import Scenario
    from airflow_provider_wavy.sandbox.state import IssuedFile, RecordedRequest, SandboxSite, SandboxState

_CDN_ERRORS = {
    403: ("AccessDenied", "Access Denied"),
    404: ("NoSuchKey", "The specified key does not exist."),
}


def file_url(cdn_url: str, entry: IssuedFile) -> str:
    """
    Return the URL the API hands out for an issued file.

    :param cdn_url: The CDN origin.
    :param entry: The file; its scenario's ``redirect`` knob may ask for a URL that redirects to it.
    """
    if entry.scenario.redirect == "file":
        return f"{cdn_url}/r/{entry.file_id}"
    return f"{cdn_url}{entry.path}"


def _measure_gzip(entry: IssuedFile) -> int:
    """Compute the compressed size of a file by a streaming pre-pass."""
    return gzip_size(entry.customer_id, entry.sub_account_id, entry.scenario)


class CdnOrigin:
    """Answers the CDN origin's requests."""

    name = "cdn"

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
        Record the request; answer a redirected API call, a redirect to a file, a file, or a CDN-style 404.

        :param handler: The connection's handler (sends the answer).
        :param request: The request as recorded.
        :param raw_query: Query string as received.
        """
        self.state.record(request)
        path = request.path
        if path == "/redirected/v1/session":
            # Where a cross-origin redirect lands: it answers like the API, minus the checks.
            customer_id = request.query.get("customerId", "").strip() or self.site.customer_id
            sub_account_id = request.query.get("subAccountId", "").strip() or None
            issued = self.state.issue(SESSIONS, customer_id, sub_account_id, self.state.scenario)
            handler.send_json(200, {"file_url": file_url(self.site.cdn_url, issued)})
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

    def _serve(self, handler: SandboxHandler, entry: IssuedFile, scenario: Scenario) -> None:
        """Send the file: content from the scenario it was issued under, transport from the current one."""
        content = entry.scenario
        chunks = iter_csv_chunks(entry.customer_id, entry.sub_account_id, content)
        length: int | None
        if scenario.gzip:
            chunks = iter_gzip_chunks(chunks)
            length = None if scenario.chunked else self.state.gzip_length(entry, _measure_gzip)
        else:
            length = None if scenario.chunked else csv_size(entry.customer_id, entry.sub_account_id, content)
        handler.send_response(200)
        handler.send_header("Content-Type", content_type(content))
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
