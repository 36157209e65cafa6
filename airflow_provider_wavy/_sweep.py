"""
Remove what killed writers left beside a destination: temporary siblings and, on S3, incomplete uploads.

An :class:`~airflow_provider_wavy._destination.AtomicWriter` writes ``.<name>.partial-<32 hex>`` beside its
target. A writer that is SIGKILLed, OOM-killed or lost with its node runs no clean-up, so its file stays (and
on S3 its multipart upload: invisible to listings, its parts billed until aborted). The next writer of the
same target sweeps them before it writes, and must never touch the file of a writer that is still alive:

- local files: a live writer holds an exclusive ``flock`` on its file, and the kernel drops the locks of a
  process that dies (on NFS, once the lost client's lease expires). A file whose lock can be taken has no
  live writer. The one moment a live writer holds no lock is between creating its file and locking it, so a
  file younger than ``local_min_age`` is left. Where locks are unavailable (no ``fcntl``, or a file system
  that refuses them) the object-store rule applies instead.
- object stores have no locks: a partial object or an incomplete upload counts as dead once older than
  ``stale_after``, which must be longer than any live download can take, or at once when its name carries
  the id of a writer known to be dead (``dead_writers``: an earlier try of the same task instance, which
  Airflow has failed before it started the next try).

A sweep never fails the download: what cannot be removed is logged as a warning and left for a later try.
"""

from __future__ import annotations

import logging
import os
import re
import stat
import time
from datetime import UTC, datetime
from typing import TYPE_CHECKING, Any

if TYPE_CHECKING:
    from fsspec import AbstractFileSystem

try:
    import fcntl
except ImportError:  # pragma: no cover - Windows
    fcntl = None  # type: ignore[assignment]

log = logging.getLogger(__name__)

#: A writer's file or upload older than this is taken for a dead writer's where no lock tells (object stores).
#: Six hours: far beyond any download of this file (570 MB take minutes even at a few MB/s). Too short a value
#: cannot corrupt anything: a live writer whose upload was aborted fails its own commit and the task retries.
DEFAULT_STALE_AFTER = 6 * 3600.0
#: Local files younger than this are left: their writer may not have taken its lock yet. A writer locks in
#: the system call after the one that creates the file; the margin covers a machine stalled under load, and
#: costs nothing, since a task's next try comes after its retry delay (minutes).
DEFAULT_LOCAL_MIN_AGE = 10.0
_UUID_HEX = "[0-9a-f]{32}"
#: Bounds the listing of incomplete uploads (1,000 a page): a prefix this narrow has a handful.
_MAX_UPLOAD_PAGES = 20


def partial_prefix(name: str) -> str:
    """
    Return the start of a temporary file's name; a writer appends ``uuid.uuid4().hex``.

    :param name: the target's file name.
    """
    return f".{name}.partial-"


def _partials(stem: str) -> re.Pattern[str]:
    return re.compile(re.escape(stem) + _UUID_HEX)


def lock_for_life(fd: int) -> bool:
    """
    Take the lock that tells sweepers this writer is alive; return whether it is held.

    The lock lives as long as the open file: keep the file open until it is renamed into place.

    :param fd: the writer's open temporary file.
    """
    if fcntl is None:  # pragma: no cover - Windows
        return False
    try:
        fcntl.flock(fd, fcntl.LOCK_EX | fcntl.LOCK_NB)
    except OSError as error:
        log.warning(
            "Cannot lock the temporary file (%s): other writers will judge it by its age only.", error
        )
        return False
    return True


def sweep(
    fs: AbstractFileSystem | None,
    path: str,
    scheme: str,
    *,
    stale_after: float,
    min_age: float,
    dead_writers: frozenset[str] = frozenset(),
) -> None:
    """
    Remove what dead writers of ``path`` left; never raise.

    :param fs: the fsspec file system, or None for a local path.
    :param path: the target's local path or file-system path.
    :param scheme: the URI scheme, for logs.
    :param stale_after: seconds after which an unlocked leftover is a dead writer's.
    :param min_age: seconds a local file must have before its lock is asked.
    :param dead_writers: writer ids (the 32 hex digits ending a temporary name) whose object-store leftovers
        are dead whatever their age; local files are judged by their locks only.
    """
    try:
        if fs is None:
            _sweep_local(path, stale_after, min_age)
        else:
            _sweep_store(fs, path, scheme, stale_after, dead_writers)
    except Exception as error:  # noqa: BLE001 - a failed sweep must not fail the download
        log.warning("Could not look for files left by killed writers beside %s: %s", path, error)


def _sweep_local(path: str, stale_after: float, min_age: float) -> None:
    folder, name = os.path.split(path)
    pattern = _partials(partial_prefix(name))
    try:
        with os.scandir(folder or ".") as entries:
            found = [entry.path for entry in entries if pattern.fullmatch(entry.name)]
    except FileNotFoundError:
        return
    for candidate in found:
        try:
            size = _remove_if_dead(candidate, stale_after, min_age)
        except FileNotFoundError:
            continue  # renamed into place by its writer, or removed by another sweeper
        except OSError as error:
            log.warning("Could not remove %s, left by an earlier writer: %s", candidate, error)
            continue
        if size is not None:
            log.info("Removed %s (%s bytes), left by a killed writer.", candidate, f"{size:,}")


def _remove_if_dead(path: str, stale_after: float, min_age: float) -> int | None:
    """Remove a local temporary file if no live writer holds it; return its size if it was removed."""
    info = os.lstat(path)
    if not stat.S_ISREG(info.st_mode):
        return None  # writers make regular files only: a link or folder of that name is someone else's
    age = time.time() - info.st_mtime  # mtime is never before creation: a true lower bound of the age
    if age < min_age:
        return None
    flags = os.O_RDONLY | getattr(os, "O_NOFOLLOW", 0) | getattr(os, "O_NONBLOCK", 0)
    fd = os.open(path, flags)
    try:
        alive = _lock_taken(fd)
    finally:
        # No live writer can come back to a dead one's name (it holds a fresh uuid): unlink after closing.
        os.close(fd)
    if alive is None:
        alive = age < stale_after
    if alive:
        return None
    os.unlink(path)
    return info.st_size


def _lock_taken(fd: int) -> bool | None:
    """Tell whether a live process holds the file's lock; None when locks cannot tell."""
    if fcntl is None:  # pragma: no cover - Windows
        return None
    try:
        fcntl.flock(fd, fcntl.LOCK_EX | fcntl.LOCK_NB)
    except BlockingIOError:
        return True
    except OSError:
        return None  # a file system without locks (ENOLCK, EOPNOTSUPP): its writers hold none either
    return False


def _is_dead(key: str, started: datetime, stale_after: float, dead_writers: frozenset[str]) -> bool:
    """Tell whether a leftover on a store is a dead writer's: a known dead id, or older than stale_after."""
    return key[-32:] in dead_writers or _age(started) >= stale_after


def _sweep_store(
    fs: AbstractFileSystem, path: str, scheme: str, stale_after: float, dead_writers: frozenset[str]
) -> None:
    folder, slash, name = path.rpartition("/")
    pattern = _partials(partial_prefix(name))
    fs.invalidate_cache(folder)
    try:
        listed: list[dict[str, Any]] = fs.ls(folder, detail=True)
    except FileNotFoundError:
        listed = []
    for entry in listed:
        candidate = str(entry["name"])
        if entry.get("type") != "file" or not pattern.fullmatch(candidate.rpartition("/")[2]):
            continue
        uri = f"{scheme}://{candidate}"
        try:
            if not _is_dead(candidate, fs.modified(candidate), stale_after, dead_writers):
                continue
            fs.rm(candidate)
        except NotImplementedError:
            continue  # a store that cannot tell an object's age: nothing shows the writer is dead
        except Exception as error:  # noqa: BLE001 - one object left behind is no reason to stop
            log.warning("Could not remove %s, left by an earlier writer: %s", uri, error)
            continue
        size = entry.get("size")
        log.info("Removed %s (%s bytes), left by a killed writer.", uri, f"{size:,}" if size else "?")
    _abort_s3_uploads(fs, f"{folder}{slash}{partial_prefix(name)}", scheme, stale_after, dead_writers)


def _abort_s3_uploads(
    fs: AbstractFileSystem, stem: str, scheme: str, stale_after: float, dead_writers: frozenset[str]
) -> None:
    """
    Abort the incomplete multipart uploads of dead writers (s3fs only; other stores have none to list).

    S3 keeps the parts of an upload that was neither completed nor aborted, unlisted and billed, forever
    unless a lifecycle rule removes them. ``call_s3`` and ``abort_mpu`` are public methods of s3fs's
    ``S3FileSystem``; S3's own API (``list_multipart_uploads``) is spoken here only.
    """
    call_s3 = getattr(fs, "call_s3", None)
    abort_mpu = getattr(fs, "abort_mpu", None)
    if not callable(call_s3) or not callable(abort_mpu):
        return
    bucket, _, key_stem = stem.partition("/")
    pattern = _partials(key_stem)
    markers: dict[str, str] = {}
    for _ in range(_MAX_UPLOAD_PAGES):
        answer = call_s3("list_multipart_uploads", Bucket=bucket, Prefix=key_stem, **markers)
        for upload in answer.get("Uploads", []):
            key, started = str(upload["Key"]), upload["Initiated"]
            if not pattern.fullmatch(key) or not _is_dead(key, started, stale_after, dead_writers):
                continue
            uri = f"{scheme}://{bucket}/{key}"
            try:
                abort_mpu(bucket, key, upload["UploadId"])
            except Exception as error:  # noqa: BLE001 - one upload left behind is no reason to stop
                log.warning("Could not abort the incomplete multipart upload of %s: %s", uri, error)
                continue
            log.info(
                "Aborted the incomplete multipart upload of %s (started %s), left by a killed writer.",
                uri,
                started.isoformat(),
            )
        if not answer.get("IsTruncated"):
            return
        markers = {"KeyMarker": answer["NextKeyMarker"], "UploadIdMarker": answer["NextUploadIdMarker"]}


def _age(moment: datetime) -> float:
    """Return the seconds since ``moment`` (a naive datetime is UTC, as fsspec file systems report)."""
    if moment.tzinfo is None:
        moment = moment.replace(tzinfo=UTC)
    return (datetime.now(UTC) - moment).total_seconds()
