"""Sweeping what killed writers left beside a destination: real SIGKILLs, real locks, real S3 (moto)."""

from __future__ import annotations

import os
import signal
import subprocess
import sys
import threading
import time
import uuid
from dataclasses import dataclass
from pathlib import Path
from typing import TYPE_CHECKING, Any

import pytest
from fsspec.implementations.memory import MemoryFileSystem

from airflow_provider_wavy._destination import AtomicWriter, Target, writer_id
from tests.conftest import REPO_ROOT
from tests.writer_child import MIB, child_bytes

if TYPE_CHECKING:
    from collections.abc import Callable, Iterator

    from fsspec import AbstractFileSystem

#: Bounds every wait on a child, so that a stuck child fails the test instead of hanging it.
CHILD_TIMEOUT = 60.0


@dataclass
class Child:
    """A writer process (tests/writer_child.py) that has written its data and waits for a word."""

    process: subprocess.Popen[str]
    temp_path: str

    def kill(self) -> None:
        """SIGKILL it, as the OOM killer or a lost node would: no handler, no clean-up runs."""
        os.kill(self.process.pid, signal.SIGKILL)
        assert self.process.wait(timeout=CHILD_TIMEOUT) == -signal.SIGKILL

    def commit(self) -> None:
        """Let it finish its file and publish it."""
        assert self.process.stdin is not None
        assert self.process.stdout is not None
        self.process.stdin.write("commit\n")
        self.process.stdin.flush()
        assert self.process.stdout.readline().strip() == "committed"
        assert self.process.wait(timeout=CHILD_TIMEOUT) == 0


@pytest.fixture
def start_child() -> Iterator[Callable[..., Child]]:
    """Return a function that starts a writer child and waits for its ``ready``; kills what is left."""
    started: list[subprocess.Popen[str]] = []

    def start(*args: str) -> Child:
        process = subprocess.Popen(
            [sys.executable, "-m", "tests.writer_child", *args],
            cwd=REPO_ROOT,
            stdin=subprocess.PIPE,
            stdout=subprocess.PIPE,
            text=True,
        )
        started.append(process)
        watchdog = threading.Timer(CHILD_TIMEOUT, process.kill)
        watchdog.start()
        try:
            assert process.stdout is not None
            word, _, temp_path = process.stdout.readline().strip().partition(" ")
        finally:
            watchdog.cancel()
        assert word == "ready", f"the writer child did not start (exit status {process.poll()})"
        return Child(process, temp_path)

    yield start
    for process in started:
        if process.poll() is None:
            process.kill()
            process.wait(timeout=CHILD_TIMEOUT)


def backdate(path: Path | str) -> None:
    """Age a file by an hour: the next try of a task comes after its retry delay, not at once."""
    old = time.time() - 3600
    os.utime(path, (old, old))


def _commit(target: Target, data: bytes, **kwargs: Any) -> None:
    with AtomicWriter(target, **kwargs) as writer:
        writer.write(data)
        writer.commit()


def _local(folder: Path) -> Target:
    path = str(folder / "sessions.csv")
    return Target(uri=f"file://{path}", path=path, fs=None, scheme="file")


def _partial_name() -> str:
    return f".sessions.csv.partial-{uuid.uuid4().hex}"


# -- local files: the lock tells a dead writer from a live one -----------------------------------------------


def test_killed_local_writer_is_swept_by_the_next_try(
    tmp_path: Path, start_child: Callable[..., Child], all_logs: Callable[[], str]
) -> None:
    folder = tmp_path / "out"
    target = _local(folder)
    child = start_child("local", target.path, "8")
    child.kill()
    partial = Path(child.temp_path)
    assert partial.stat().st_size == 8 * MIB, "the killed writer's file stays: nothing else removes it"
    backdate(partial)

    _commit(target, b"fresh\n")  # the arguments the operator uses

    assert sorted(p.name for p in folder.iterdir()) == ["sessions.csv"]
    assert Path(target.path).read_bytes() == b"fresh\n"
    logs = all_logs()
    assert f"Removed {partial}" in logs
    assert "8,388,608 bytes" in logs


def test_killed_writer_younger_than_the_minimum_age_waits_for_a_later_try(
    tmp_path: Path, start_child: Callable[..., Child]
) -> None:
    """Between creating its file and locking it a writer holds no lock: a file that young is left alone."""
    target = _local(tmp_path)
    child = start_child("local", target.path, "1")
    child.kill()

    _commit(target, b"first\n")
    assert Path(child.temp_path).exists()

    _commit(target, b"second\n", local_min_age=0)
    assert sorted(p.name for p in tmp_path.iterdir()) == ["sessions.csv"]
    assert Path(target.path).read_bytes() == b"second\n"


def test_live_local_writer_is_never_swept(tmp_path: Path, start_child: Callable[..., Child]) -> None:
    target = _local(tmp_path)
    child = start_child("local", target.path, "4")
    # Old enough to be swept if only its age counted: the live writer's lock is all that protects it.
    backdate(child.temp_path)

    with AtomicWriter(target, local_min_age=0, stale_after=0) as writer:
        writer.write(b"rival\n")
        assert Path(child.temp_path).stat().st_size == 4 * MIB
        writer.commit()
    assert Path(target.path).read_bytes() == b"rival\n"

    child.commit()  # last rename wins
    assert Path(target.path).read_bytes() == child_bytes(4)
    assert sorted(p.name for p in tmp_path.iterdir()) == ["sessions.csv"]


HEX = "0123456789abcdef" * 2
DECOYS = [
    pytest.param(f".sessions.csv.partial-{HEX[:31]}", id="hex-too-short"),
    pytest.param(f".sessions.csv.partial-{HEX}0", id="hex-too-long"),
    pytest.param(f".sessions.csv.partial-{HEX.upper()}", id="upper-case-hex"),
    pytest.param(f".sessions.csv.partial-{HEX}.bak", id="suffix-after-the-uuid"),
    pytest.param(f"sessions.csv.partial-{HEX}", id="no-leading-dot"),
    pytest.param(f".other.csv.partial-{HEX}", id="another-targets-partial"),
    pytest.param(f".x.sessions.csv.partial-{HEX}", id="longer-name-ending-alike"),
    pytest.param(f".sessionsXcsv.partial-{HEX}", id="dot-is-not-a-wildcard"),
    pytest.param(f"sub/.sessions.csv.partial-{HEX}", id="in-a-subfolder"),
    pytest.param("sessions.csv.bak", id="unrelated-file"),
]


@pytest.mark.parametrize("decoy", DECOYS)
def test_local_sweep_touches_only_this_targets_partials(tmp_path: Path, decoy: str) -> None:
    target = _local(tmp_path)
    kept, swept = tmp_path / decoy, tmp_path / _partial_name()
    kept.parent.mkdir(exist_ok=True)
    for path in (kept, swept):
        path.write_bytes(b"left by a killed writer\n")
        backdate(path)

    _commit(target, b"fresh\n", local_min_age=0, stale_after=0)

    assert kept.read_bytes() == b"left by a killed writer\n"
    assert not swept.exists(), "the sweep ran: the matching file went"


def test_local_sweep_leaves_what_is_not_a_regular_file(tmp_path: Path, all_logs: Callable[[], str]) -> None:
    outside = tmp_path / "elsewhere.csv"
    outside.write_bytes(b"not ours\n")
    folder = tmp_path / "out"
    folder.mkdir()
    (folder / _partial_name()).mkdir()
    (folder / _partial_name()).symlink_to(outside)

    _commit(_local(folder), b"fresh\n", local_min_age=0, stale_after=0)

    assert len(list(folder.iterdir())) == 3
    assert outside.read_bytes() == b"not ours\n"
    assert "Could not" not in all_logs(), "left alone, not tried and failed"


# -- object stores: age tells, and on S3 incomplete multipart uploads go too ---------------------------------


@pytest.mark.parametrize("decoy", DECOYS)
def test_store_sweep_touches_only_this_targets_partials(memory_fs: AbstractFileSystem, decoy: str) -> None:
    target = Target(
        uri="memory:///wavy/sessions.csv", path="/wavy/sessions.csv", fs=memory_fs, scheme="memory"
    )
    kept, swept = f"/wavy/{decoy}", f"/wavy/{_partial_name()}"
    memory_fs.pipe({kept: b"left\n", swept: b"left\n"})

    _commit(target, b"fresh\n", stale_after=0)

    assert memory_fs.cat_file(kept) == b"left\n"
    assert not memory_fs.exists(swept)


def _uploads(fs: AbstractFileSystem, bucket: str) -> list[str]:
    answer = fs.call_s3("list_multipart_uploads", Bucket=bucket)
    return sorted(upload["Key"] for upload in answer.get("Uploads", []))


def test_killed_s3_writer_upload_is_aborted_once_stale(
    s3: tuple[AbstractFileSystem, str],
    moto_endpoint: str,
    start_child: Callable[..., Child],
    all_logs: Callable[[], str],
) -> None:
    fs, bucket = s3
    path = f"{bucket}/out/sessions.csv"
    target = Target(uri=f"s3://{path}", path=path, fs=fs, scheme="s3")
    child = start_child("s3", moto_endpoint, path, "6")  # past one 5 MiB part: a multipart upload started
    child.kill()
    killed_key = child.temp_path.partition("/")[2]
    # A move cut short (copied, not yet deleted) leaves a visible partial object; other names are decoys.
    visible = f"{bucket}/out/{_partial_name()}"
    decoy = f"{bucket}/out/.other.csv.partial-{HEX}"
    fs.pipe({visible: b"copied, not yet deleted\n", decoy: b"another target's\n"})
    for key in ("out/.other.csv.partial-" + HEX, "out/sessions.csv"):
        fs.call_s3("create_multipart_upload", Bucket=bucket, Key=key)
    assert _uploads(fs, bucket) == sorted([killed_key, "out/.other.csv.partial-" + HEX, "out/sessions.csv"])

    # moto reports every upload as started on 2010-11-10 (a fixed value in its answer): only a stale_after
    # longer than that makes it young enough to be a live writer's.
    _commit(target, b"first\n", stale_after=10**9)
    assert killed_key in _uploads(fs, bucket)
    assert fs.exists(visible)

    _commit(target, b"second\n", stale_after=0)
    assert _uploads(fs, bucket) == ["out/.other.csv.partial-" + HEX, "out/sessions.csv"]
    assert sorted(fs.find(f"{bucket}/out", refresh=True)) == [decoy, path]
    assert fs.cat_file(path) == b"second\n"
    logs = all_logs()
    assert f"Aborted the incomplete multipart upload of s3://{bucket}/{killed_key}" in logs
    assert f"Removed s3://{visible}" in logs


# -- a sweep that fails never fails the download -------------------------------------------------------------


class RefusingFileSystem(MemoryFileSystem):  # type: ignore[misc]
    """An in-memory store that refuses to delete one path, as a store without delete rights would."""

    protocol = "wavy-refusing"
    refused = "/wavy/.sessions.csv.partial-" + HEX

    def rm_file(self, path: str) -> None:
        if self._strip_protocol(path) == self.refused:
            raise PermissionError(f"Access Denied: {path}")
        super().rm_file(path)

    def rm(self, path: str | list[str], recursive: bool = False, maxdepth: int | None = None) -> None:
        if path == self.refused:
            raise PermissionError(f"Access Denied: {path}")
        super().rm(path, recursive, maxdepth)


def test_sweep_failure_is_a_warning(all_logs: Callable[[], str]) -> None:
    fs = RefusingFileSystem(global_store=False, skip_instance_cache=True)
    fs.pipe(RefusingFileSystem.refused, b"left\n")
    target = Target(uri="wavy-refusing:///wavy/sessions.csv", path="/wavy/sessions.csv", fs=fs, scheme="x")

    _commit(target, b"fresh\n", stale_after=0)

    assert fs.cat_file("/wavy/sessions.csv") == b"fresh\n"
    logs = all_logs()
    assert "WARNING" in logs
    assert "Could not remove" in logs
    assert RefusingFileSystem.refused in logs
    assert "Access Denied" in logs


@pytest.mark.parametrize(
    ("arguments", "message"),
    [
        pytest.param({"stale_after": -1}, "stale_after must be a number of seconds >= 0", id="negative"),
        pytest.param({"stale_after": float("nan")}, "stale_after must be", id="not-a-number"),
        pytest.param({"local_min_age": True}, "local_min_age must be", id="bool"),
        pytest.param({"local_min_age": "10"}, "local_min_age must be", id="text"),
    ],
)
def test_bad_ages_are_refused(tmp_path: Path, arguments: dict[str, Any], message: str) -> None:
    with pytest.raises(ValueError, match=message):
        AtomicWriter(_local(tmp_path), **arguments)


# -- an earlier try of the same task instance is dead, whatever the age of what it left --------------------


def test_store_sweep_takes_a_known_dead_writers_partial_at_once(memory_fs: AbstractFileSystem) -> None:
    """A young partial named by an earlier try goes at once; a young stranger's stays (it may be alive)."""
    target = Target(
        uri="memory:///wavy/sessions.csv", path="/wavy/sessions.csv", fs=memory_fs, scheme="memory"
    )
    dead_id, stranger_id = writer_id("dag", "task", "run", -1, 1), uuid.uuid4().hex
    dead, stranger = (f"/wavy/.sessions.csv.partial-{hex_id}" for hex_id in (dead_id, stranger_id))
    memory_fs.pipe({dead: b"killed mid-upload\n", stranger: b"a live rival\n"})

    _commit(target, b"fresh\n", stale_after=10**9, dead_writers=[dead_id])

    assert not memory_fs.exists(dead)
    assert memory_fs.cat_file(stranger) == b"a live rival\n"
    assert memory_fs.cat_file("/wavy/sessions.csv") == b"fresh\n"


def test_s3_upload_of_a_known_dead_writer_is_aborted_at_once(s3: tuple[AbstractFileSystem, str]) -> None:
    fs, bucket = s3
    path = f"{bucket}/out/sessions.csv"
    target = Target(uri=f"s3://{path}", path=path, fs=fs, scheme="s3")
    dead_key = f"out/.sessions.csv.partial-{writer_id('dag', 'task', 'run', -1, 1)}"
    stranger_key = f"out/.sessions.csv.partial-{uuid.uuid4().hex}"
    for key in (dead_key, stranger_key):
        fs.call_s3("create_multipart_upload", Bucket=bucket, Key=key)

    this_try = writer_id("dag", "task", "run", -1, 2)
    with AtomicWriter(
        target, stale_after=10**9, writer_id=this_try, dead_writers=[writer_id("dag", "task", "run", -1, 1)]
    ) as writer:
        assert writer.temp_path == f"{bucket}/out/.sessions.csv.partial-{this_try}"
        writer.write(b"second try\n")
        writer.commit()

    assert _uploads(fs, bucket) == [stranger_key]
    assert fs.cat_file(path) == b"second try\n"


def test_writer_ids_are_stable_and_distinct_per_try() -> None:
    first, second = writer_id("dag", "task", "run", 0, 1), writer_id("dag", "task", "run", 0, 2)
    assert first == writer_id("dag", "task", "run", 0, 1)
    assert len({first, second, writer_id("dag", "task", "run", 1, 1)}) == 3
    assert all(len(value) == 32 and int(value, 16) >= 0 for value in (first, second))


@pytest.mark.parametrize(
    "bad",
    [
        pytest.param("ABC", id="short"),
        pytest.param("g" * 32, id="not-hex"),
        pytest.param("A" * 32, id="upper"),
    ],
)
def test_bad_writer_id_is_refused(tmp_path: Path, bad: str) -> None:
    with pytest.raises(ValueError, match="writer_id must be 32 lowercase hex digits"):
        AtomicWriter(_local(tmp_path), writer_id=bad)
