"""
Decode an HTTP body's ``Content-Encoding`` step by step, never more than a small output at a time.

An event loop must not inflate a whole network read at once: 64 KiB of gzip can hold gigabytes. The
decoder hands out at most ``step`` bytes per piece, so the caller can yield to the loop between pieces
and stop as soon as it has read enough.
"""

from __future__ import annotations

import zlib
from typing import TYPE_CHECKING, Final

if TYPE_CHECKING:
    from collections.abc import Iterator

#: Output of one step: small enough to decode in well under a millisecond.
DEFAULT_STEP: Final = 64 * 1024
#: The encodings the provider asks for (``Accept-Encoding``) and decodes itself.
SUPPORTED: Final = ("identity", "gzip", "x-gzip", "deflate")


class BodyDecodingError(ValueError):
    """The body is not encoded as its ``Content-Encoding`` says, or uses an encoding not asked for."""


class BodyDecoder:
    """
    Turn the raw bytes of a body into decoded pieces of at most ``step`` bytes.

    :param encoding: the answer's ``Content-Encoding`` header (None for identity).
    :param step: the largest piece handed out.
    """

    def __init__(self, encoding: str | None, *, step: int = DEFAULT_STEP) -> None:
        name = (encoding or "identity").strip().lower() or "identity"
        if name not in SUPPORTED:
            raise BodyDecodingError(f"the body uses Content-Encoding {name[:40]!r}, which was not asked for")
        self.encoding = name
        self._step = step
        # 32 + MAX_WBITS reads a gzip or a zlib header: servers send either under both names.
        self._inflater = None if name == "identity" else zlib.decompressobj(32 + zlib.MAX_WBITS)

    def decode(self, data: bytes) -> Iterator[bytes]:
        """
        Yield the decoded pieces of the next raw bytes.

        :param data: raw bytes as received.
        :raises BodyDecodingError: the bytes do not decode.
        """
        if self._inflater is None:
            for start in range(0, len(data), self._step):
                yield data[start : start + self._step]
            return
        pending = data
        while pending and not self._inflater.eof:
            try:
                piece = self._inflater.decompress(pending, self._step)
            except zlib.error as error:
                raise BodyDecodingError(f"the {self.encoding} body does not decode ({error})") from None
            pending = self._inflater.unconsumed_tail
            if piece:
                yield piece

    def finish(self) -> None:
        """
        Check that a compressed body was complete.

        :raises BodyDecodingError: the compressed stream ended early.
        """
        if self._inflater is not None and not self._inflater.eof:
            raise BodyDecodingError(f"the {self.encoding} body ended before its compressed stream did")


__all__ = ["BodyDecoder", "BodyDecodingError"]
