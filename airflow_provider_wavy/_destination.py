"""
Write a download to its destination atomically: a temporary sibling first, renamed into place on success.

Local paths (plain or ``file://``) use the operating system directly (``os.replace`` is atomic on POSIX);
every other scheme goes through an fsspec file system, resolved by Airflow's ``ObjectStoragePath`` (so
``destination_conn_id`` supplies the credentials), or by fsspec itself for schemes Airflow does not
register (``memory://``, for tests). Nothing here is imported at DAG-parse time.
"""

from __future__ import annotations

import contextlib
import logging
import os
import re
import uuid
from dataclasses import dataclass
from typing import TYPE_CHECKING, Any, BinaryIO, cast
from urllib.parse import urlsplit

from airflow_provider_wavy._compat import airflow_has_fs
from airflow_provider_wavy._sweep import (
    DEFAULT_LOCAL_MIN_AGE,
    DEFAULT_STALE_AFTER,
    lock_for_life,
    partial_prefix,
    sweep,
)

log = logging.getLogger(__name__)

if TYPE_CHECKING:
    from collections.abc import Iterable, Iterator

    from airflow.providers.common.compat.sdk import Context, ObjectStoragePath
    from fsspec import AbstractFileSystem

_LOCAL_SCHEMES = frozenset({"", "file", "local"})
_UNSAFE_NAME_CHARS = re.compile(r"[^A-Za-z0-9._-]+")


def safe_name_part(value: str) -> str:
    """
    Make a value fit for a file name (ids are digits in practice, but a template could render anything).

    :param value: the value to embed.
    """
    return _UNSAFE_NAME_CHARS.sub("_", value).strip("._") or "_"


@dataclass
class Target:
    """
    Where the file ends up.

    :param uri: the final location as a URI, fit for XCom and logs (no credentials, no conn id).
    :param path: the local absolute path, or the file system's path (``bucket/key`` on object stores).
    :param fs: the fsspec file system; None for a local path.
    :param scheme: the URI scheme (``file`` for local paths).
    """

    uri: str
    path: str
    fs: AbstractFileSystem | None
    scheme: str

    @property
    def is_local(self) -> bool:
        """Tell whether the target is a local file (written with the operating system's calls)."""
        return self.fs is None

    @property
    def lineage_namespace(self) -> str:
        """Return the OpenLineage namespace: ``file`` or ``scheme://bucket``."""
        if self.is_local:
            return "file"
        bucket, _, _ = self.path.partition("/")
        return f"{self.scheme}://{bucket}"

    @property
    def lineage_name(self) -> str:
        """Return the OpenLineage dataset name: the local path, or the key inside the bucket."""
        if self.is_local:
            return self.path
        _, _, key = self.path.partition("/")
        return key or self.path


def _local_target(path: str, is_folder: bool, file_name: str) -> Target:
    full = os.path.abspath(os.path.expanduser(path))
    if is_folder or os.path.isdir(full):
        full = os.path.join(full, file_name)
    return Target(uri=f"file://{full}", path=full, fs=None, scheme="file")


def _remote_target(fs: AbstractFileSystem, scheme: str, path: str, is_folder: bool, file_name: str) -> Target:
    path = path.rstrip("/") if is_folder else path
    if is_folder:
        path = f"{path}/{file_name}"
    return Target(uri=f"{scheme}://{path}", path=path, fs=fs, scheme=scheme)


def resolve_target(destination: Any, conn_id: str | None, file_name: str) -> Target:
    """
    Turn the operator's ``destination`` into a :class:`Target`.

    :param destination: a local path, a URL, or an ``ObjectStoragePath``.
    :param conn_id: the connection for the object store, if any.
    :param file_name: the name to use when the destination is a folder.
    """
    from airflow.providers.common.compat.sdk import ObjectStoragePath

    if isinstance(destination, os.PathLike) and not isinstance(destination, ObjectStoragePath):
        destination = os.fspath(destination)
    if isinstance(destination, ObjectStoragePath):
        return _storage_path_target(destination, conn_id, file_name)
    if not isinstance(destination, str) or not destination.strip():
        raise ValueError(
            "destination must be a local path, a URL such as 's3://bucket/key.csv', or an "
            f"ObjectStoragePath; got {destination!r}."
        )
    return _url_target(destination.strip(), conn_id, file_name)


def _storage_path_target(destination: ObjectStoragePath, conn_id: str | None, file_name: str) -> Target:
    if conn_id:
        # Ignoring either connection silently would write with credentials the user did not mean.
        raise ValueError(
            f"destination_conn_id={conn_id!r} was given with an ObjectStoragePath destination, which "
            f"carries its own connection: give conn_id={conn_id!r} to the ObjectStoragePath and leave "
            "destination_conn_id out, or pass the destination as a URL string."
        )
    scheme = (destination.protocol or "").lower()
    is_folder = str(destination).endswith("/")
    if scheme in _LOCAL_SCHEMES:
        return _local_target(str(destination.path), is_folder, file_name)
    fs = destination.fs
    fs_path = str(destination.path)
    is_folder = is_folder or bool(fs.isdir(fs_path))
    return _remote_target(fs, scheme, fs_path, is_folder, file_name)


def _url_target(text: str, conn_id: str | None, file_name: str) -> Target:
    is_folder = text.endswith(("/", os.sep))
    scheme = urlsplit(text).scheme.lower() if "://" in text else ""
    if scheme in _LOCAL_SCHEMES:
        if conn_id:
            raise ValueError(
                f"destination_conn_id={conn_id!r} was given for the local destination {text!r}; "
                "leave it out for local paths."
            )
        return _local_target(text.partition("://")[2] if scheme else text, is_folder, file_name)
    if airflow_has_fs(scheme):
        from airflow.providers.common.compat.sdk import ObjectStoragePath

        path = ObjectStoragePath(text, conn_id=conn_id)
        fs, fs_path = path.fs, str(path.path)
    else:
        # Airflow registers only the schemes of installed providers; fsspec knows more (memory://, ...).
        fs, fs_path = _fsspec_fallback(text, scheme, conn_id)
    return _remote_target(fs, scheme, fs_path.rstrip("/") if is_folder else fs_path, is_folder, file_name)


def _fsspec_fallback(url: str, scheme: str, conn_id: str | None) -> tuple[AbstractFileSystem, str]:
    import fsspec
    from fsspec.core import url_to_fs

    missing = ValueError(
        f"No Airflow file system is registered for {scheme}:// (destination {url!r}). Install the "
        "provider that handles it (e.g. apache-airflow-providers-amazon[s3fs] for s3://, "
        "apache-airflow-providers-google for gs://)."
    )
    if conn_id or scheme not in fsspec.available_protocols():
        raise missing from None
    try:
        fs, path = url_to_fs(url)
    except ImportError:
        # fsspec names every scheme's implementation (gs -> gcsfs, ...), installed or not.
        raise missing from None
    return fs, str(path)


_WRITER_ID = re.compile("[0-9a-f]{32}")


def writer_id(*parts: object) -> str:
    """
    Return the writer id of one try of one task instance: 32 hex digits, the same wherever it is computed.

    A task's next try computes its earlier tries' ids and sweeps their object-store leftovers at once:
    Airflow starts a try only after the one before it has ended or been declared lost.

    :param parts: what names the writer, e.g. dag id, task id, run id, map index and try number.
    """
    import hashlib

    return hashlib.sha256("\x1f".join(str(part) for part in parts).encode()).hexdigest()[:32]


def writer_ids(context: Context) -> tuple[str | None, list[str]]:
    """
    Return this try's writer id and its earlier tries' (None and [] outside a task instance).

    Airflow starts a try only once the one before it has ended or been declared lost (a lost worker's try
    is failed after the task heartbeat timeout), so what earlier tries left on an object store is a dead
    writer's at once, without waiting for the age rule: a worker killed mid-upload costs no orphaned upload.
    """
    ti = context.get("ti")
    try_number = getattr(ti, "try_number", None)
    if ti is None or not isinstance(try_number, int) or try_number < 1:
        return None, []
    key = (ti.dag_id, ti.task_id, ti.run_id, getattr(ti, "map_index", -1))
    return writer_id(*key, try_number), [writer_id(*key, earlier) for earlier in range(1, try_number)]


class DestinationError(Exception):
    """
    Writing to the destination failed; ``cause`` is what its file system raised.

    Only these become the operator's "Cannot write ..." message: any other exception is not the
    destination's doing and passes as it is.
    """

    def __init__(self, cause: Exception) -> None:
        super().__init__(str(cause))
        self.cause = cause


@contextlib.contextmanager
def destination_errors() -> Iterator[None]:
    """Turn what a file system raises (OSError, an object store's errors) into :class:`DestinationError`."""
    try:
        yield
    except DestinationError:
        raise
    except Exception as error:
        raise DestinationError(error) from error


class AtomicWriter:
    """
    Write to a temporary sibling of the target, then rename it into place, or delete it on failure.

    Use as a context manager: :meth:`commit` must be called inside the block for the file to be kept. On
    entering, it first removes what killed writers of the same target left (see ``_sweep``): temporary
    files, and on S3 incomplete multipart uploads, never those of a writer still alive.

    :param target: where the file ends up.
    :param stale_after: seconds after which another writer's temporary object, or incomplete upload, is taken
        for a dead writer's where no lock tells (object stores; local file systems without locks). Give more
        than the longest a download may take: a shorter value makes a slower live writer fail its commit.
    :param local_min_age: seconds a local temporary file must have before its lock is asked (a writer holds
        no lock between creating the file and locking it).
    :param writer_id: 32 lowercase hex digits that end this writer's temporary name (default: a random
        uuid4), so that a later writer can tell its leftovers apart (see :func:`writer_id`).
    :param dead_writers: ids of writers known to be dead, whose object-store leftovers go whatever their age.
    """

    def __init__(
        self,
        target: Target,
        *,
        stale_after: float = DEFAULT_STALE_AFTER,
        local_min_age: float = DEFAULT_LOCAL_MIN_AGE,
        writer_id: str | None = None,
        dead_writers: Iterable[str] = (),
    ) -> None:
        for label, value in (("stale_after", stale_after), ("local_min_age", local_min_age)):
            if isinstance(value, bool) or not isinstance(value, int | float) or not value >= 0:
                raise ValueError(f"{label} must be a number of seconds >= 0, got {value!r}.")
        self.target = target
        self.stale_after = float(stale_after)
        self.local_min_age = float(local_min_age)
        if writer_id is not None and not _WRITER_ID.fullmatch(writer_id):
            raise ValueError(f"writer_id must be 32 lowercase hex digits, got {writer_id!r}.")
        self.dead_writers = frozenset(dead_writers)
        folder, slash, name = target.path.rpartition("/")
        # A sibling, so that the final rename stays within one file system (and one bucket).
        self.temp_path = f"{folder}{slash}{partial_prefix(name)}{writer_id or uuid.uuid4().hex}"
        self._file: BinaryIO | None = None
        self._committed = False
        self._locked = False

    def __enter__(self) -> AtomicWriter:
        """Sweep what killed writers left, then open the temporary file for writing."""
        with destination_errors():
            return self._open()

    def _open(self) -> AtomicWriter:
        target = self.target
        sweep(
            target.fs,
            target.path,
            target.scheme,
            stale_after=self.stale_after,
            min_age=self.local_min_age,
            dead_writers=self.dead_writers,
        )
        if target.fs is None:
            os.makedirs(os.path.dirname(target.path), exist_ok=True)
            # Unbuffered: chunks are already large, and a second copy through a buffer costs throughput.
            self._file = cast("BinaryIO", open(self.temp_path, "wb", buffering=0))  # noqa: SIM115 - kept open
            self._locked = lock_for_life(self._file.fileno())
        else:
            self._file = cast("BinaryIO", target.fs.open(self.temp_path, "wb"))
        return self

    def write(self, chunk: bytes | memoryview) -> None:
        """
        Append a chunk to the temporary file.

        :param chunk: the next bytes; the caller may reuse the memory behind a ``memoryview`` afterwards.
        :raises DestinationError: the destination refused the bytes.
        """
        with destination_errors():
            self._write(chunk)

    def _write(self, chunk: bytes | memoryview) -> None:
        if self._file is None:
            raise RuntimeError("AtomicWriter.write() outside its with block")
        if self.target.fs is not None and isinstance(chunk, memoryview):
            # An object-store file may hold on to what it is given until it uploads a part: give it bytes
            # of its own. A local file copies into the kernel before write() returns.
            chunk = chunk.tobytes()
        view = memoryview(chunk)
        while view:  # a raw file may write less than asked
            written = self._file.write(view)
            view = view[written if written is not None else len(view) :]

    def commit(self) -> None:
        """
        Close the temporary file and move it to the final name (overwriting what was there).

        :raises DestinationError: the destination refused to close or rename it.
        """
        with destination_errors():
            self._commit()

    def _commit(self) -> None:
        if self._file is None:
            raise RuntimeError("AtomicWriter.commit() outside its with block")
        if self.target.fs is None:
            if self._locked:
                # Renamed while still open, so locked: closed first, it would be a dead writer's to sweepers.
                os.replace(self.temp_path, self.target.path)
                self._file.close()
            else:
                self._file.close()
                os.replace(self.temp_path, self.target.path)
        else:
            self._file.close()
            self.target.fs.mv(self.temp_path, self.target.path)
        self._committed = True

    def __exit__(self, *exc_info: object) -> None:
        """Delete the temporary file unless the write was committed."""
        if self._committed:
            return
        file, self._file = self._file, None
        if file is not None:
            self._abandon(file)
        try:
            if self.target.fs is None:
                with contextlib.suppress(FileNotFoundError):
                    os.unlink(self.temp_path)
            elif self.target.fs.exists(self.temp_path):
                self.target.fs.rm(self.temp_path)
        except Exception as error:  # noqa: BLE001 - the download's own error is the one to raise
            log.warning("Could not delete the temporary file %s: %s", self.temp_path, error)

    def _abandon(self, file: BinaryIO) -> None:
        """Drop an unfinished temporary file without publishing it."""
        from fsspec.spec import AbstractBufferedFile

        if isinstance(file, AbstractBufferedFile) and file.mode != "rb":
            # Closing a buffered object-store file uploads it (s3fs completes its multipart upload), and so
            # would garbage collection: abort it instead and mark it closed. fsspec offers no public "abort"
            # that also stops close(); `closed` is its public, settable property (its own close() sets it),
            # and setting it is what keeps close() and __del__ from publishing the unfinished file.
            with contextlib.suppress(Exception):
                file.discard()
            file.closed = True
            return
        with contextlib.suppress(Exception):
            file.close()
