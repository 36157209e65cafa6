"""An open file download over ``requests``: decoded reads within the download's size and time limits."""

from __future__ import annotations

import http.client
from typing import TYPE_CHECKING

import requests
from urllib3.exceptions import DecodeError
from urllib3.exceptions import HTTPError as Urllib3Error

from airflow_provider_wavy.decoding import SUPPORTED
from airflow_provider_wavy.exceptions import WavyDownloadError
from airflow_provider_wavy.protocol import (
    check_received_length,
    content_length,
    cut_short_error,
    describe_network_error,
    too_large_error,
)

if TYPE_CHECKING:
    import mmap
    from collections.abc import Iterator

    from airflow_provider_wavy.hooks._watchdog import CallWatch

DEFAULT_CHUNK_SIZE = 1024 * 1024
#: What a broken or hostile transfer raises out of ``requests``, urllib3 and ``http.client``.
TRANSFER_ERRORS = (Urllib3Error, requests.RequestException, OSError, http.client.HTTPException)


def timed_out(error: BaseException) -> bool:
    """Tell whether a ``requests``/urllib3/socket error is a timeout."""
    # urllib3 read timeouts during a streamed body surface as plain errors whose text says "timed out".
    return isinstance(error, requests.Timeout | TimeoutError) or "timed out" in str(error).lower()


class FileDownload:
    """
    An open file download, read as decoded chunks.

    :param response: the streamed response, status already checked.
    :param shown_url: the file URL as it may be shown (no query string).
    :param timeout: the read timeout, for messages.
    :param watch: the watchdog holding the download's total deadline.
    :param max_bytes: the largest decoded size accepted.
    """

    def __init__(
        self,
        response: requests.Response,
        shown_url: str,
        timeout: float,
        *,
        watch: CallWatch,
        max_bytes: int,
    ) -> None:
        self._response = response
        self.shown_url = shown_url
        self._timeout = timeout
        self._watch = watch
        self._max_bytes = max_bytes
        self._decoded = 0
        self.content_length = content_length(response.headers)
        self.content_type: str | None = response.headers.get("content-type")
        self.content_encoding: str | None = response.headers.get("content-encoding")
        self._identity = (self.content_encoding or "identity").lower() == "identity"
        encoding = (self.content_encoding or "identity").strip().lower()
        if encoding not in SUPPORTED:
            raise WavyDownloadError(
                f"The file host sent {shown_url} with Content-Encoding {encoding[:40]!r}, which the provider "
                "did not ask for (gzip or deflate). Nothing was kept; report it to Wavy."
            )
        if self._identity and self.content_length is not None and self.content_length > max_bytes:
            raise too_large_error(shown_url, max_bytes, announced=self.content_length)
        # An identity-encoded body is read by http.client straight into the caller's buffer: urllib3's own
        # read() allocates a new object per chunk and copies it once more, a third of the CPU of a large
        # transfer. urllib3 2.x keeps http.client's response as `_fp`; anything else falls back.
        body = getattr(response.raw, "_fp", None)
        self._direct = body if self._identity and isinstance(body, http.client.HTTPResponse) else None
        self._direct_bytes = 0

    @property
    def expected_size(self) -> int | None:
        """Return the size of the decoded file when the server announced it, for progress reports."""
        return self.content_length if self._identity else None

    @property
    def wire_bytes(self) -> int:
        """Return the bytes received on the wire so far (compressed, when the transfer is)."""
        # urllib3 counts what went through it; readinto() counts what it read past it.
        return int(self._response.raw.tell()) + self._direct_bytes

    def iter_chunks(self, chunk_size: int = DEFAULT_CHUNK_SIZE) -> Iterator[bytes]:
        """
        Yield the file's decoded bytes, then check that nothing was cut short.

        :param chunk_size: the largest chunk to yield.
        """
        raw = self._response.raw
        while True:
            try:
                chunk = raw.read(chunk_size, decode_content=True)
            except TRANSFER_ERRORS as error:
                raise self._failure(error) from None
            if not chunk:
                break
            self._count(len(chunk))
            yield chunk
        self._check_end()

    def readinto(self, buffer: bytearray | mmap.mmap) -> int:
        """
        Fill ``buffer`` with the file's next decoded bytes; at the end, check that nothing was cut short.

        :param buffer: where to put the bytes; it is filled completely unless the file ends (or breaks off)
            first.
        :return: the number of bytes put in ``buffer``, 0 at the end of the file.
        """
        try:
            if self._direct is not None:
                size = self._direct.readinto(buffer)
                self._direct_bytes += size
            else:
                chunk = self._response.raw.read(len(buffer), decode_content=True)
                size = len(chunk)
                buffer[:size] = chunk
        except TRANSFER_ERRORS as error:
            raise self._failure(error) from None
        if not size:
            self._check_end()
        self._count(size)
        return size

    def _check_end(self) -> None:
        if self._watch.expired:
            # The watchdog's shutdown reads as an end of file: the file is not complete.
            raise self._watch.deadline.exceeded(f"{self.wire_bytes:,} bytes received")
        check_received_length(self.wire_bytes, self.content_length, self.shown_url)

    def _count(self, size: int) -> None:
        self._decoded += size
        if self._decoded > self._max_bytes:
            raise too_large_error(self.shown_url, self._max_bytes)

    def _failure(self, error: BaseException) -> WavyDownloadError:
        """Describe a transfer that broke off: out of time, a timeout, a bad encoding, or a short body."""
        if self._watch.expired:
            return self._watch.deadline.exceeded(f"{self.wire_bytes:,} bytes received")  # type: ignore[return-value]
        if isinstance(error, DecodeError):
            return WavyDownloadError(
                f"The file host sent {self.shown_url} with a body that does not decode as its "
                f"Content-Encoding ({self.content_encoding}) says. Nothing was kept; ask the API for a new "
                "file URL, or report it to Wavy if it persists."
            )
        was_timeout = timed_out(error)
        if not was_timeout:
            # The file host closed the connection (or reset it) before the end it announced.
            return cut_short_error(self.wire_bytes, self.content_length, self.shown_url)
        # The message names the URL once, as its subject.
        reason = describe_network_error(error, "the file host", self._timeout, timed_out=True)
        of_total = f" of {self.content_length:,}" if self.content_length is not None else ""
        return WavyDownloadError(
            # At least: bytes a read had taken in when it failed are not counted.
            f"The download of {self.shown_url} failed after at least {self.wire_bytes:,}{of_total} bytes: "
            f"{reason}. Nothing was kept; run the task again (or raise the wavy connection's timeout extra "
            "if the file host is this slow)."
        )


__all__ = ["DEFAULT_CHUNK_SIZE", "TRANSFER_ERRORS", "FileDownload", "timed_out"]
