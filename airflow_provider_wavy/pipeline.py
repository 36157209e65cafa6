"""
The download pipeline: buffers read on the task's thread, hashed and written on two more, in order.

Memory stays at most ``count * size`` bytes whatever the file's size; reading, hashing, writing and (with
NumPy) row counting release the GIL, so the stages run on separate cores at once.
"""

from __future__ import annotations

import hashlib
import queue
import threading
import time
from typing import TYPE_CHECKING, Any

if TYPE_CHECKING:
    import mmap
    from collections.abc import Callable

    Buffer = bytearray | mmap.mmap

PROGRESS_INTERVAL = 5.0


class Progress:
    """Log bytes, rate and share done every few seconds."""

    def __init__(self, log: Any, expected: int | None) -> None:
        self._clock = time.monotonic
        self._log = log
        self._expected = expected
        self._start = self._clock()
        self._next = self._start + PROGRESS_INTERVAL

    def update(self, done: int) -> None:
        now = self._clock()
        if now < self._next:
            return
        self._next = now + PROGRESS_INTERVAL
        rate = done / max(now - self._start, 1e-9) / 2**20
        if self._expected:
            self._log.info(
                "Downloaded %.1f of %.1f MiB (%.0f%%) at %.1f MiB/s.",
                done / 2**20,
                self._expected / 2**20,
                100 * done / self._expected,
                rate,
            )
        else:
            self._log.info("Downloaded %.1f MiB at %.1f MiB/s (size not announced).", done / 2**20, rate)


class Pipeline:
    """
    Hash, then write, buffers in two threads, in order, and lend each buffer out again once written.

    The pipeline owns every buffer of the download, so memory stays at most ``count * size`` bytes whatever
    the file's size, and a buffer is never refilled before it is hashed and written. Use :meth:`close` when
    the download is complete, :meth:`abort` when it failed.

    :param write: called with each buffer's bytes, in order (in the writing thread).
    :param count: the number of buffers.
    :param size: the size of each buffer.
    """

    def __init__(self, write: Callable[[memoryview], object], count: int, size: int) -> None:
        self._write = write
        self._digest = hashlib.sha256()
        self._error: BaseException | None = None
        self._cancelled = False
        self._size = size
        self._unallocated = count  # allocated on demand: a small file needs one or two, not all of them
        self._free: queue.SimpleQueue[Buffer] = queue.SimpleQueue()
        self._to_hash: queue.SimpleQueue[tuple[Buffer, int] | None] = queue.SimpleQueue()
        self._to_write: queue.SimpleQueue[tuple[Buffer, int] | None] = queue.SimpleQueue()
        self._threads = [
            threading.Thread(target=self._hash_all, name="wavy-download-sha256", daemon=True),
            threading.Thread(target=self._write_all, name="wavy-download-write", daemon=True),
        ]
        for thread in self._threads:
            thread.start()

    def _stopped(self) -> bool:
        return self._cancelled or self._error is not None

    def _hash_all(self) -> None:
        try:
            while (item := self._to_hash.get()) is not None:
                buffer, size = item
                if not self._stopped():
                    try:
                        self._digest.update(memoryview(buffer)[:size])  # releases the GIL at this size
                    except BaseException as error:  # noqa: BLE001 - raised in the caller's thread
                        self._error = self._error or error
                # Passed on even when stopped: the writing thread returns every buffer to the pool.
                self._to_write.put(item)
        finally:
            self._to_write.put(None)

    def _write_all(self) -> None:
        while (item := self._to_write.get()) is not None:
            buffer, size = item
            if not self._stopped():  # once stopped, buffers still come back so that take() never hangs
                try:
                    self._write(memoryview(buffer)[:size])
                except BaseException as error:  # noqa: BLE001 - raised in the caller's thread
                    self._error = self._error or error
            self._free.put(buffer)

    def take(self) -> Buffer:
        """
        Return a free buffer, waiting while all of them are being hashed or written.

        :raises Exception: what hashing or writing an earlier buffer raised (e.g. the disk is full).
        """
        if self._unallocated and self._free.empty():
            self._unallocated -= 1
            buffer = anonymous_buffer(self._size)
        else:
            buffer = self._free.get()
        if self._error is not None:
            raise self._error
        return buffer

    def submit(self, buffer: Buffer, size: int) -> None:
        """
        Queue the first ``size`` bytes of a buffer to be hashed and written; it then returns to the pool.

        :param buffer: a buffer from :meth:`take`, not to be changed until it is taken again.
        :param size: how many of its bytes belong to the file.
        """
        self._to_hash.put((buffer, size))

    def close(self) -> str:
        """
        Wait until every queued buffer is hashed and written; return the hex SHA-256 of all of them.

        :raises Exception: what hashing or writing raised.
        """
        self._to_hash.put(None)
        self._join()
        if self._error is not None:
            raise self._error
        return self._digest.hexdigest()

    def abort(self) -> None:
        """Stop after the buffers in hand: the rest are neither hashed nor written (the file is discarded)."""
        self._cancelled = True
        self._to_hash.put(None)
        self._join()

    def _join(self) -> None:
        # The destination is closed or discarded right after this returns: no thread may still write to it,
        # even when a timeout or a signal interrupts the wait.
        try:
            for thread in self._threads:
                thread.join()
        except BaseException:
            self._cancelled = True
            for thread in self._threads:
                thread.join()
            raise


def anonymous_buffer(size: int) -> Buffer:
    """
    Allocate a download buffer the kernel may back with 2 MiB pages (a ``bytearray`` where it cannot).

    A ``bytearray`` is zero-filled at once in 4 KiB pages: about 2.5 ms per 4 MiB buffer on a virtual
    machine, a tenth of a 100 MiB download. An anonymous private mapping is filled lazily, and with
    ``MADV_HUGEPAGE`` in 2 MiB pages, which also spares the copy, hash and write passes most TLB misses.

    :param size: the buffer's size in bytes.
    """
    import contextlib
    import mmap

    private = getattr(mmap, "MAP_PRIVATE", None)  # POSIX only
    if private is None:
        return bytearray(size)
    try:
        buffer = mmap.mmap(-1, size, flags=private | mmap.MAP_ANONYMOUS)
    except OSError:
        return bytearray(size)  # e.g. the process's mapping limit: the heap may still have room
    huge_pages = getattr(mmap, "MADV_HUGEPAGE", None)  # Linux only; a no-op where THP is off
    if huge_pages is not None:
        # A kernel without transparent huge pages refuses the advice: 4 KiB pages then, as a bytearray has.
        with contextlib.suppress(OSError):
            buffer.madvise(huge_pages)
    return buffer


__all__ = ["PROGRESS_INTERVAL", "Pipeline", "Progress", "anonymous_buffer"]
