"""Destinations: what ``destination`` resolves to, and atomic writes to local files, memory:// and S3."""

from __future__ import annotations

import os
import re
from dataclasses import dataclass
from pathlib import Path
from typing import TYPE_CHECKING, Any

import pytest
from airflow.providers.common.compat.sdk import ObjectStoragePath
from fsspec.implementations.memory import MemoryFileSystem

from airflow_provider_wavy._destination import AtomicWriter, Target, resolve_target, safe_name_part
from tests.conftest import S3_BLOCK_SIZE, S3_CONN_ID

if TYPE_CHECKING:
    from collections.abc import Callable

    from fsspec import AbstractFileSystem

FILE_NAME = "wavy_open_sessions_42_2026-11-23.csv"


class Boom(Exception):
    """The failure of a download in the middle of writing it."""


# -- fixtures -----------------------------------------------------------------------------------------------


# memory:// and s3fs copy what they are given into a BytesIO at once, so neither can show that AtomicWriter
# hands an object store a memoryview the caller is about to reuse; a file that queues by reference can.
class QueuedPartsFile:
    """A file that holds on to what ``write`` is given, by reference, until it is closed."""

    def __init__(self, fs: AbstractFileSystem, path: str) -> None:
        self.fs = fs
        self.path = path
        self.parts: list[bytes | memoryview] = []
        self.closed = False

    def write(self, data: bytes | memoryview) -> int:
        """Queue the data as given, the way an upload client queues parts."""
        self.parts.append(data)
        return len(data)

    def close(self) -> None:
        """Store what was queued."""
        if not self.closed:
            self.closed = True
            self.fs.pipe_file(self.path, b"".join(self.parts))


class QueuedPartsFileSystem(MemoryFileSystem):  # type: ignore[misc]
    """An in-memory object store whose files keep written buffers until close, as upload clients may."""

    protocol = "wavy-queued-parts"

    def _open(self, path: str, mode: str = "rb", **kwargs: Any) -> Any:
        # pipe_file opens with the whole content as ``data``: that one is stored at once.
        if "w" in mode and "data" not in kwargs:
            return QueuedPartsFile(self, self._strip_protocol(path))
        return super()._open(path, mode, **kwargs)


@dataclass
class Place:
    """A file in an empty folder on one kind of storage, and how to look at that folder."""

    target: Target
    listing: Callable[[], list[str]]
    read: Callable[[], bytes]


def _make_place(kind: str, request: pytest.FixtureRequest) -> Place:
    if kind == "local":
        # A folder that does not exist yet: the writer has to create it.
        folder: Path = request.getfixturevalue("tmp_path") / "out" / "nested"
        target = resolve_target(str(folder / "sessions.csv"), None, FILE_NAME)
        return Place(
            target,
            lambda: sorted(p.name for p in folder.iterdir()) if folder.exists() else [],
            Path(target.path).read_bytes,
        )
    if kind == "memory":
        memory: AbstractFileSystem = request.getfixturevalue("memory_fs")
        target = resolve_target("memory://wavy/out/sessions.csv", None, FILE_NAME)
        return Place(
            target,
            lambda: sorted(p.rsplit("/", 1)[-1] for p in memory.find("/wavy/out")),
            lambda: memory.cat_file("/wavy/out/sessions.csv"),
        )
    if kind == "s3":
        fs, bucket = request.getfixturevalue("s3")
        # Through the connection, as the operator does: Airflow builds the s3fs file system from it.
        target = resolve_target(f"s3://{bucket}/out/sessions.csv", S3_CONN_ID, FILE_NAME)
        return Place(
            target,
            lambda: sorted(p.rsplit("/", 1)[-1] for p in fs.find(f"{bucket}/out", refresh=True)),
            lambda: fs.cat_file(f"{bucket}/out/sessions.csv"),
        )
    assert kind == "queued-parts"
    queued = QueuedPartsFileSystem(global_store=False, skip_instance_cache=True)
    path = "/wavy/out/sessions.csv"
    return Place(
        Target(uri=f"wavy-queued-parts://{path}", path=path, fs=queued, scheme="wavy-queued-parts"),
        lambda: sorted(p.rsplit("/", 1)[-1] for p in queued.find("/wavy/out")),
        lambda: queued.cat_file(path),
    )


@pytest.fixture(params=["local", "memory", "s3"])
def place(request: pytest.FixtureRequest) -> Place:
    """Return an empty place on each real kind of storage."""
    return _make_place(request.param, request)


@pytest.fixture(params=["local", "memory", "s3", "queued-parts"])
def any_place(request: pytest.FixtureRequest) -> Place:
    """Return an empty place on each kind of storage, including one that keeps written buffers."""
    return _make_place(request.param, request)


def _commit(target: Target, *chunks: bytes | memoryview) -> None:
    with AtomicWriter(target) as writer:
        for chunk in chunks:
            writer.write(chunk)
        writer.commit()


def _write_then_fail(target: Target, *chunks: bytes | memoryview) -> None:
    with AtomicWriter(target) as writer:
        for chunk in chunks:
            writer.write(chunk)
        raise Boom("download failed")


# -- resolve_target -----------------------------------------------------------------------------------------

LOCAL_DESTINATIONS = [
    pytest.param(lambda root: str(root / "out.csv"), "out.csv", id="local-path"),
    pytest.param(lambda root: f"  {root / 'out.csv'}\n", "out.csv", id="surrounding-whitespace"),
    pytest.param(lambda root: f"file://{root / 'out.csv'}", "out.csv", id="file-url"),
    pytest.param(lambda root: f"FILE://{root / 'out.csv'}", "out.csv", id="file-url-upper-case"),
    pytest.param(lambda root: f"local://{root / 'out.csv'}", "out.csv", id="local-url"),
    pytest.param(lambda root: f"{root / 'new'}/", f"new/{FILE_NAME}", id="folder-trailing-slash"),
    pytest.param(lambda root: f"file://{root / 'new'}/", f"new/{FILE_NAME}", id="file-url-folder"),
    pytest.param(lambda root: str(root / "existing"), f"existing/{FILE_NAME}", id="existing-dir-no-slash"),
    pytest.param(lambda root: root / "out.csv", "out.csv", id="pathlike"),
    pytest.param(lambda root: root / "existing", f"existing/{FILE_NAME}", id="pathlike-existing-dir"),
    pytest.param(lambda root: "relative.csv", "cwd/relative.csv", id="relative-to-cwd"),
    pytest.param(lambda root: "~/in-home.csv", "home/in-home.csv", id="home-directory"),
    pytest.param(
        lambda root: ObjectStoragePath(f"file://{root / 'out.csv'}"), "out.csv", id="object-storage-path"
    ),
    pytest.param(
        lambda root: ObjectStoragePath(f"file://{root / 'existing'}"),
        f"existing/{FILE_NAME}",
        id="object-storage-path-existing-dir",
    ),
]


@pytest.mark.parametrize(("destination", "expected"), LOCAL_DESTINATIONS)
def test_resolve_local_destination(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch, destination: Callable[[Path], Any], expected: str
) -> None:
    for name in ("cwd", "home", "existing"):
        (tmp_path / name).mkdir()
    monkeypatch.chdir(tmp_path / "cwd")
    monkeypatch.setenv("HOME", str(tmp_path / "home"))

    target = resolve_target(destination(tmp_path), None, FILE_NAME)

    path = str(tmp_path / expected)
    assert target == Target(uri=f"file://{path}", path=path, fs=None, scheme="file")
    assert target.is_local
    assert (target.lineage_namespace, target.lineage_name) == ("file", path)


@pytest.mark.parametrize(
    ("destination", "expected"),
    [
        pytest.param("memory://wavy/out.csv", "/wavy/out.csv", id="file"),
        pytest.param("memory://wavy/out/", f"/wavy/out/{FILE_NAME}", id="folder"),
        pytest.param("memory:///wavy/out.csv", "/wavy/out.csv", id="rooted"),
    ],
)
def test_resolve_fsspec_only_scheme(memory_fs: AbstractFileSystem, destination: str, expected: str) -> None:
    target = resolve_target(destination, None, FILE_NAME)

    assert target.fs is memory_fs
    assert (target.path, target.scheme, target.uri) == (expected, "memory", f"memory://{expected}")
    assert not target.is_local


@pytest.mark.parametrize(
    ("destination", "conn_id", "key"),
    [
        pytest.param(lambda b: f"s3://{b}/exports/s.csv", S3_CONN_ID, "exports/s.csv", id="url"),
        pytest.param(lambda b: f"s3://{b}/exports/", S3_CONN_ID, f"exports/{FILE_NAME}", id="url-folder"),
        pytest.param(
            lambda b: ObjectStoragePath(f"s3://{b}/exports/s.csv", conn_id=S3_CONN_ID),
            None,
            "exports/s.csv",
            id="object-storage-path",
        ),
        pytest.param(
            lambda b: ObjectStoragePath(f"s3://{b}/existing", conn_id=S3_CONN_ID),
            None,
            f"existing/{FILE_NAME}",
            id="object-storage-path-existing-prefix",
        ),
    ],
)
def test_resolve_s3_through_connection(
    s3: tuple[AbstractFileSystem, str], destination: Callable[[str], Any], conn_id: str | None, key: str
) -> None:
    fs, bucket = s3
    fs.pipe_file(f"{bucket}/existing/old.csv", b"old")

    target = resolve_target(destination(bucket), conn_id, FILE_NAME)

    assert (target.uri, target.path, target.scheme) == (f"s3://{bucket}/{key}", f"{bucket}/{key}", "s3")
    assert (target.lineage_namespace, target.lineage_name) == (f"s3://{bucket}", key)
    # Only the connection knows the moto endpoint: a file system built without it could not write here.
    assert target.fs is not None
    target.fs.pipe_file(target.path, b"via the connection")
    assert fs.cat_file(f"{bucket}/{key}") == b"via the connection"


@pytest.mark.parametrize(
    ("destination", "conn_id", "message"),
    [
        pytest.param(lambda root: "", None, "destination must be a local path", id="empty"),
        pytest.param(lambda root: " \t", None, "destination must be a local path", id="blank"),
        pytest.param(lambda root: None, None, "destination must be a local path", id="none"),
        pytest.param(lambda root: 42, None, "destination must be a local path", id="not-a-path"),
        pytest.param(
            lambda root: str(root / "x.csv"),
            "aws_default",
            r"destination_conn_id='aws_default' was given for the local destination",
            id="conn-for-local-path",
        ),
        pytest.param(
            lambda root: f"file://{root}/x.csv",
            "aws_default",
            r"destination_conn_id='aws_default' was given for the local destination",
            id="conn-for-file-url",
        ),
        pytest.param(
            lambda root: root / "x.csv",
            "aws_default",
            r"destination_conn_id='aws_default' was given for the local destination",
            id="conn-for-pathlike",
        ),
        pytest.param(
            lambda root: ObjectStoragePath("s3://bucket/exports/"),
            "aws_default",
            r"destination_conn_id='aws_default' was given with an ObjectStoragePath destination, which "
            r"carries its own connection: give conn_id='aws_default' to the ObjectStoragePath",
            id="conn-for-object-storage-path",
        ),
        pytest.param(
            lambda root: ObjectStoragePath(f"file://{root}/x.csv", conn_id="fs_default"),
            "aws_default",
            r"destination_conn_id='aws_default' was given with an ObjectStoragePath destination",
            id="conn-for-local-object-storage-path",
        ),
        pytest.param(
            lambda root: "nosuchfs://bucket/x.csv",
            None,
            r"No Airflow file system is registered for nosuchfs://.*Install the provider.*"
            r"apache-airflow-providers-",
            id="unknown-scheme",
        ),
        pytest.param(
            lambda root: "gs://bucket/x.csv",
            None,
            r"No Airflow file system is registered for gs://.*apache-airflow-providers-google",
            id="scheme-of-a-provider-not-installed",
        ),
        pytest.param(
            lambda root: "memory://wavy/x.csv",
            "aws_default",
            r"No Airflow file system is registered for memory://",
            id="conn-for-fsspec-only-scheme",
        ),
    ],
)
def test_resolve_rejects(
    tmp_path: Path, destination: Callable[[Path], Any], conn_id: str | None, message: str
) -> None:
    with pytest.raises(ValueError, match=message):
        resolve_target(destination(tmp_path), conn_id, FILE_NAME)

    assert list(tmp_path.iterdir()) == []


@pytest.mark.parametrize(
    ("path", "scheme", "namespace", "name"),
    [
        pytest.param("/data/wavy/s.csv", "file", "file", "/data/wavy/s.csv", id="local"),
        pytest.param("bkt/s.csv", "s3", "s3://bkt", "s.csv", id="s3-top-level-key"),
        pytest.param("bkt/a/b/s.csv", "s3", "s3://bkt", "a/b/s.csv", id="s3-nested-key"),
        pytest.param("bkt/exports/s.csv", "gs", "gs://bkt", "exports/s.csv", id="gcs"),
    ],
)
def test_lineage_names_follow_openlineage(
    memory_fs: AbstractFileSystem, path: str, scheme: str, namespace: str, name: str
) -> None:
    fs = None if scheme == "file" else memory_fs
    target = Target(uri=f"{scheme}://{path}", path=path, fs=fs, scheme=scheme)

    assert (target.lineage_namespace, target.lineage_name) == (namespace, name)


@pytest.mark.parametrize(
    ("value", "expected"),
    [
        pytest.param("1001", "1001", id="digits-unchanged"),
        pytest.param("2026-11-23", "2026-11-23", id="date-unchanged"),
        pytest.param("a_b.c-d", "a_b.c-d", id="safe-punctuation-unchanged"),
        pytest.param("a/b", "a_b", id="slash"),
        pytest.param("../../etc/passwd", "etc_passwd", id="path-traversal"),
        pytest.param("a  //  b", "a_b", id="unsafe-run-is-one-underscore"),
        pytest.param("a b\tc\nd", "a_b_c_d", id="whitespace"),
        pytest.param("café", "caf", id="non-ascii"),
        pytest.param("{{ ds }}", "ds", id="unrendered-template"),
        pytest.param(".hidden", "hidden", id="no-leading-dot"),
        pytest.param("", "_", id="empty"),
        pytest.param("...", "_", id="dots-only"),
        pytest.param("///", "_", id="unsafe-only"),
    ],
)
def test_safe_name_part(value: str, expected: str) -> None:
    result = safe_name_part(value)

    assert result == expected
    assert re.fullmatch(r"[A-Za-z0-9]([A-Za-z0-9._-]*[A-Za-z0-9])?|_", result)
    assert safe_name_part(result) == result


# -- AtomicWriter -------------------------------------------------------------------------------------------


def test_commit_publishes_exact_bytes_and_removes_temp(place: Place) -> None:
    chunks: list[bytes | memoryview] = [
        b"source;session_created_at\n",
        memoryview(b"5511999990000;2026-11-23T10:00:00\n" * 2_000),
        b"",
        memoryview(bytearray(b"5511999990001;2026-11-23T10:00:01\n")),
    ]

    with AtomicWriter(place.target) as writer:
        for chunk in chunks:
            writer.write(chunk)
        during = place.listing()
        writer.commit()

    temp_name = writer.temp_path.rsplit("/", 1)[-1]
    assert set(during) <= {temp_name}, "nothing but the temporary file exists before the commit"
    assert place.listing() == ["sessions.csv"]
    assert place.read() == b"".join(bytes(chunk) for chunk in chunks)


def test_temp_file_is_a_hidden_sibling_unique_per_writer(place: Place) -> None:
    first, second = AtomicWriter(place.target), AtomicWriter(place.target)

    for writer in (first, second):
        parent, _, name = writer.temp_path.rpartition("/")
        assert parent == place.target.path.rpartition("/")[0]
        assert re.fullmatch(r"\.sessions\.csv\.partial-[0-9a-f]{32}", name)
    assert first.temp_path != second.temp_path


@pytest.mark.parametrize(
    ("path", "expected_folder"),
    [
        pytest.param("/sessions.csv", "/", id="root-of-a-local-disk"),
        pytest.param("bucket/sessions.csv", "bucket/", id="top-of-a-bucket"),
        pytest.param("sessions.csv", "", id="no-folder-at-all"),
    ],
)
def test_temp_file_stays_in_the_target_folder(path: str, expected_folder: str) -> None:
    """The rename must not cross file systems: the temp file lives where the target does, even at a root."""
    writer = AtomicWriter(Target(uri=f"file://{path}", path=path, fs=None, scheme="file"))
    folder, name = writer.temp_path[: len(expected_folder)], writer.temp_path[len(expected_folder) :]
    assert folder == expected_folder
    assert re.fullmatch(r"\.sessions\.csv\.partial-[0-9a-f]{32}", name)


@pytest.mark.parametrize(
    "failure",
    [
        pytest.param("error-after-writes", id="error-after-writes"),
        pytest.param("error-before-writes", id="error-before-writes"),
        pytest.param("no-commit", id="block-left-without-commit"),
    ],
)
def test_unfinished_write_leaves_nothing(place: Place, failure: str) -> None:
    error = Boom("download failed")

    def body() -> None:
        with AtomicWriter(place.target) as writer:
            if failure == "error-before-writes":
                raise error
            writer.write(b"source;session_created_at\n" * 1_000)
            writer.write(memoryview(b"5511999990000;2026-11-23T10:00:00\n"))
            if failure == "error-after-writes":
                raise error

    if failure == "no-commit":
        body()
    else:
        with pytest.raises(Boom) as raised:
            body()
        assert raised.value is error
    assert place.listing() == []


def test_failed_write_keeps_the_previous_file(place: Place) -> None:
    _commit(place.target, b"good file from yesterday\n")

    with pytest.raises(Boom):
        _write_then_fail(place.target, b"half of today's much longer file" * 100)

    assert place.read() == b"good file from yesterday\n"
    assert place.listing() == ["sessions.csv"]


def test_second_commit_overwrites(place: Place) -> None:
    _commit(place.target, b"x" * 50_000)
    _commit(place.target, b"short\n")

    assert place.read() == b"short\n"
    assert place.listing() == ["sessions.csv"]


def test_concurrent_writers_last_commit_wins(place: Place) -> None:
    with AtomicWriter(place.target) as first, AtomicWriter(place.target) as second:
        first.write(b"first " * 1_000)
        second.write(b"second\n")
        first.write(b"end of first\n")
        first.commit()
        assert place.read() == b"first " * 1_000 + b"end of first\n"
        second.commit()

    assert place.read() == b"second\n"
    assert place.listing() == ["sessions.csv"]


def test_memoryview_contents_are_fixed_at_write(any_place: Place) -> None:
    # The operator reuses its read buffers: what is stored is what write() saw, not the buffer's later bytes.
    buffer = bytearray(b"a" * 100_000)

    with AtomicWriter(any_place.target) as writer:
        writer.write(memoryview(buffer))
        buffer[:] = b"b" * len(buffer)
        writer.write(memoryview(buffer)[:10])
        buffer[:] = b"c" * len(buffer)
        writer.commit()

    assert any_place.read() == b"a" * 100_000 + b"b" * 10


# Garbage collection closes a file not marked closed: an abandoned one would try to upload again, and fail.
@pytest.mark.filterwarnings("error::pytest.PytestUnraisableExceptionWarning")
@pytest.mark.parametrize(
    ("size", "parts_sent"),
    [
        pytest.param(1024, 0, id="still-in-the-buffer"),
        pytest.param(S3_BLOCK_SIZE + 1024, 1, id="multipart-upload-started"),
    ],
)
def test_abandoned_s3_upload_publishes_nothing(
    s3: tuple[AbstractFileSystem, str], size: int, parts_sent: int
) -> None:
    fs, bucket = s3
    # A versioned bucket keeps every object ever stored: publishing the temp file and deleting it would show.
    fs.call_s3("put_bucket_versioning", Bucket=bucket, VersioningConfiguration={"Status": "Enabled"})
    path = f"{bucket}/out/big.csv"
    target = Target(uri=f"s3://{path}", path=path, fs=fs, scheme="s3")
    uploads_in_flight: list[Any] = []

    def body() -> None:
        with AtomicWriter(target) as writer:
            # Past one block, s3fs starts a multipart upload and sends a part before the download fails.
            writer.write(b"x" * size)
            uploads_in_flight.extend(fs.call_s3("list_multipart_uploads", Bucket=bucket).get("Uploads", []))
            raise Boom

    with pytest.raises(Boom):
        body()

    assert len(uploads_in_flight) == parts_sent, "the test must abandon the kind of upload it names"
    assert fs.find(bucket, refresh=True) == []
    assert not fs.call_s3("list_multipart_uploads", Bucket=bucket).get("Uploads")
    versions = fs.call_s3("list_object_versions", Bucket=bucket)
    assert not versions.get("Versions")
    assert not versions.get("DeleteMarkers")


def test_cleanup_failure_is_logged_and_the_download_error_raised(
    tmp_path: Path, all_logs: Callable[[], str]
) -> None:
    target = resolve_target(str(tmp_path / "sessions.csv"), None, FILE_NAME)
    writer = AtomicWriter(target)

    def body() -> None:
        with writer:
            writer.write(b"partial")
            # A directory where the temporary file was makes the clean-up's unlink fail, and not with ENOENT.
            os.unlink(writer.temp_path)
            os.mkdir(writer.temp_path)
            raise Boom("download failed")

    with pytest.raises(Boom, match="download failed"):
        body()

    logs = all_logs()
    assert "Could not delete the temporary file" in logs
    assert writer.temp_path in logs
    assert not os.path.exists(target.path)
