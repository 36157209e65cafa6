"""WavyOpenSessionsOperator against the sandbox and real storage: local files, memory://, S3 (moto server)."""

from __future__ import annotations

import csv
import hashlib
import io
import json
import os
import subprocess
import sys
from collections import defaultdict
from dataclasses import dataclass
from types import SimpleNamespace
from typing import TYPE_CHECKING, Any

import pytest

from airflow_provider_wavy import pipeline as pipeline_module
from airflow_provider_wavy.exceptions import WavyDownloadError
from airflow_provider_wavy.operators import wavy as operator_module
from airflow_provider_wavy.operators.wavy import DEFAULT_MAX_XCOM_ROWS, WavyOpenSessionsOperator
from airflow_provider_wavy.sandbox import Scenario, WavySandbox
from tests.conftest import REPO_ROOT, S3_CONN_ID, SANDBOX_CUSTOMER, SANDBOX_TOKEN, set_conn

if TYPE_CHECKING:
    from collections.abc import Callable
    from pathlib import Path

    from fsspec import AbstractFileSystem

LOGICAL_DS = "2026-11-23"
DEFAULT_NAME = f"wavy_open_sessions_{SANDBOX_CUSTOMER}_{LOGICAL_DS}.csv"


# -- fixtures -----------------------------------------------------------------------------------------------


@dataclass
class Place:
    """A destination under test: what to pass to the operator and how to look at what it left."""

    destination: Any
    conn_id: str | None
    final: str
    listing: Callable[[], list[str]]
    read: Callable[[], bytes]
    uri: str


@pytest.fixture(
    params=[
        "local-path",
        "local-folder",
        "file-url",
        "object-storage-path",
        "memory",
        "s3",
        "s3-object-storage-path",
    ]
)
def place(request: pytest.FixtureRequest, tmp_path: Path, memory_fs: AbstractFileSystem) -> Place:
    """Return one kind of destination, empty."""
    kind = request.param
    folder = tmp_path / "out"
    folder.mkdir()

    def local_listing() -> list[str]:
        return sorted(p.name for p in folder.iterdir())

    if kind in ("local-path", "local-folder", "file-url", "object-storage-path"):
        final = folder / ("sessions.csv" if kind != "local-folder" else DEFAULT_NAME)
        destination: Any = {
            "local-path": str(final),
            "local-folder": f"{folder}/",
            "file-url": f"file://{final}",
            "object-storage-path": None,
        }[kind]
        if kind == "object-storage-path":
            from airflow.providers.common.compat.sdk import ObjectStoragePath

            destination = ObjectStoragePath(f"file://{final}")
        return Place(destination, None, final.name, local_listing, final.read_bytes, f"file://{final}")
    if kind == "memory":
        return Place(
            "memory://wavy/out/",
            None,
            DEFAULT_NAME,
            lambda: sorted(p.rsplit("/", 1)[-1] for p in memory_fs.find("/wavy")),
            lambda: memory_fs.cat_file(f"/wavy/out/{DEFAULT_NAME}"),
            f"memory:///wavy/out/{DEFAULT_NAME}",
        )
    fs, bucket = request.getfixturevalue("s3")
    destination = f"s3://{bucket}/exports/sessions.csv"
    conn_id: str | None = S3_CONN_ID
    if kind == "s3-object-storage-path":
        from airflow.providers.common.compat.sdk import ObjectStoragePath

        destination, conn_id = ObjectStoragePath(destination, conn_id=S3_CONN_ID), None
    return Place(
        destination,
        conn_id,
        "sessions.csv",
        lambda: sorted(p.rsplit("/", 1)[-1] for p in fs.find(bucket, refresh=True)),
        lambda: fs.cat_file(f"{bucket}/exports/sessions.csv"),
        f"s3://{bucket}/exports/sessions.csv",
    )


def make_context(**extra: Any) -> dict[str, Any]:
    """Return the part of a task context the operator reads (ds names files; outlet_events for assets)."""
    events: defaultdict[Any, SimpleNamespace] = defaultdict(lambda: SimpleNamespace(extra={}))
    return {"ds": LOGICAL_DS, "run_id": "manual__2026-11-23", "outlet_events": events, **extra}


def run(**kwargs: Any) -> Any:
    operator = WavyOpenSessionsOperator(task_id="download", **kwargs)
    return operator.execute(make_context())  # type: ignore[arg-type]


# -- destinations: the happy path ---------------------------------------------------------------------------


@pytest.mark.parametrize(
    "scenario",
    [
        pytest.param({}, id="default"),
        pytest.param({"rows": 0}, id="header-only"),
        pytest.param({"delimiter": ",", "bom": True, "crlf": True, "phone_column": "origin"}, id="comma-bom"),
        pytest.param({"gzip": True, "rows": 20_000}, id="gzip"),
        pytest.param({"chunked": True, "rows": 60_000}, id="chunked-several-chunks"),
    ],
)
def test_writes_exact_bytes_to_each_destination(
    sandbox: WavySandbox, place: Place, scenario: dict[str, Any]
) -> None:
    sandbox.scenario = Scenario(**scenario)
    expected = sandbox.expected_bytes()

    summary = run(destination=place.destination, destination_conn_id=place.conn_id)

    assert place.read() == expected
    assert place.listing() == [place.final]
    rows = scenario.get("rows", 25)
    assert summary == {
        "destination": place.uri,
        "rows": rows,
        "bytes": len(expected),
        "sha256": hashlib.sha256(expected).hexdigest(),
        "delimiter": scenario.get("delimiter", ";"),
        "columns": [scenario.get("phone_column", "source"), "session_created_at"],
    }
    assert not sandbox.cdn_saw_credentials
    assert SANDBOX_TOKEN not in json.dumps(summary)
    assert "file_url" not in summary


def test_rerun_overwrites_same_path(sandbox: WavySandbox, place: Place) -> None:
    sandbox.scenario = Scenario(rows=40)
    first = run(destination=place.destination, destination_conn_id=place.conn_id)
    sandbox.scenario = Scenario(rows=7)
    second = run(destination=place.destination, destination_conn_id=place.conn_id)

    assert first["destination"] == second["destination"]
    assert place.listing() == [place.final]
    assert place.read() == sandbox.expected_bytes()
    assert second["rows"] == 7


# -- faults: a clear failure and nothing left at the destination --------------------------------------------

FAULTS = [
    pytest.param({"file_body": "html"}, "HTML page", id="html"),
    pytest.param({"file_body": "json-error"}, "JSON", id="json-error"),
    pytest.param({"file_body": "missing-column"}, "missing", id="missing-column"),
    pytest.param({"file_body": "empty"}, "empty", id="empty"),
    pytest.param({"rows": 150_000, "truncate_at": 3_000_000}, "cut short", id="truncated-after-chunks"),
    pytest.param({"rows": 200, "truncate_at": 100}, "cut short", id="truncated-in-first-chunk"),
    pytest.param(
        {"cdn_not_found_calls": 99, "cdn_status": 404}, "WavyOpenSessionsSensor", id="cdn-404-expired-link"
    ),
]


@pytest.mark.parametrize(("scenario", "message"), FAULTS)
def test_fault_fails_clearly_and_leaves_nothing(
    sandbox: WavySandbox, place: Place, scenario: dict[str, Any], message: str
) -> None:
    sandbox.scenario = Scenario(**scenario)

    with pytest.raises(WavyDownloadError, match=message) as raised:
        run(destination=place.destination, destination_conn_id=place.conn_id)

    assert place.listing() == []
    assert SANDBOX_TOKEN not in str(raised.value)
    assert not sandbox.cdn_saw_credentials


@pytest.mark.parametrize(("scenario", "message"), FAULTS)
def test_fault_keeps_previous_good_file(
    sandbox: WavySandbox, tmp_path: Path, scenario: dict[str, Any], message: str
) -> None:
    final = tmp_path / "sessions.csv"
    run(destination=str(final))
    good = final.read_bytes()
    sandbox.scenario = Scenario(**scenario)

    with pytest.raises(WavyDownloadError, match=message):
        run(destination=str(final))

    assert final.read_bytes() == good
    assert [p.name for p in tmp_path.iterdir()] == ["sessions.csv"]


def test_stalled_download_times_out_and_leaves_nothing(
    sandbox: WavySandbox, place: Place, monkeypatch: pytest.MonkeyPatch
) -> None:
    """A file host that goes silent mid-body fails the task with the read timeout, not "cut short"."""
    set_conn(monkeypatch, sandbox.connection_json(), extra={"timeout": 0.5, "max_retries": 0})
    sandbox.scenario = Scenario(rows=200_000, truncate_at=5_000_000, truncate_stall=3.0)

    # The count is of whole buffers read: a buffer the timeout interrupted is not in it.
    with pytest.raises(
        WavyDownloadError, match=r"failed after at least [\d,]+ of 7,000,026 bytes: no answer from"
    ):
        run(destination=place.destination, destination_conn_id=place.conn_id)

    assert place.listing() == []


# -- source of the file URL ---------------------------------------------------------------------------------


def test_file_url_given_skips_the_api(sandbox: WavySandbox, tmp_path: Path) -> None:
    from airflow_provider_wavy.hooks.wavy import WavyHook

    file_url = WavyHook().get_open_sessions_file_url()
    assert file_url
    sandbox.reset()

    summary = run(file_url=file_url, destination=str(tmp_path / "s.csv"), include_file_url=True)

    assert sandbox.api_calls == 0
    assert summary["file_url"] == file_url
    assert SANDBOX_TOKEN not in json.dumps(summary)


def test_no_file_yet_points_to_the_sensor(sandbox: WavySandbox, tmp_path: Path) -> None:
    sandbox.scenario = Scenario(ready_after=5)

    with pytest.raises(WavyDownloadError, match=r"no open-sessions file yet.*WavyOpenSessionsSensor"):
        run(destination=str(tmp_path / "s.csv"))

    assert list(tmp_path.iterdir()) == []


def test_sub_account_names_the_file(sandbox: WavySandbox, tmp_path: Path) -> None:
    summary = run(sub_account_id="77", destination=f"{tmp_path}/")

    name = f"wavy_open_sessions_{SANDBOX_CUSTOMER}_77_{LOGICAL_DS}.csv"
    assert summary["destination"] == f"file://{tmp_path / name}"
    assert (tmp_path / name).read_bytes() == sandbox.expected_bytes(SANDBOX_CUSTOMER, "77")


# -- XCom mode ----------------------------------------------------------------------------------------------


@pytest.mark.parametrize(
    "scenario",
    [
        pytest.param({}, id="default"),
        pytest.param({"rows": 0}, id="header-only"),
        pytest.param({"delimiter": ",", "bom": True, "crlf": True, "phone_column": "origin"}, id="comma-bom"),
        pytest.param(
            {"quote": True, "extra_columns": ("x",), "final_newline": False}, id="quoted-extra-no-newline"
        ),
        pytest.param({"gzip": True, "rows": 500}, id="gzip"),
    ],
)
def test_xcom_mode_returns_rows_like_dictreader(sandbox: WavySandbox, scenario: dict[str, Any]) -> None:
    sandbox.scenario = Scenario(**scenario)
    text = sandbox.expected_bytes().decode("utf-8-sig")
    expected = list(csv.DictReader(io.StringIO(text, newline=""), delimiter=scenario.get("delimiter", ";")))

    rows = run()

    assert rows == expected
    assert len(rows) == scenario.get("rows", 25)
    assert SANDBOX_TOKEN not in json.dumps(rows)
    assert not sandbox.cdn_saw_credentials


@pytest.mark.parametrize(
    ("rows", "limit", "fails"),
    [
        pytest.param(10, 10, False, id="at-the-limit"),
        pytest.param(11, 10, True, id="one-over"),
        pytest.param(0, 0, False, id="zero-limit-empty-file"),
        pytest.param(50_000, 100, True, id="far-over-stops-early"),
    ],
)
def test_xcom_mode_limit_never_truncates(sandbox: WavySandbox, rows: int, limit: int, fails: bool) -> None:
    sandbox.scenario = Scenario(rows=rows)
    if fails:
        with pytest.raises(WavyDownloadError, match=r"above max_xcom_rows=.*never truncates.*destination="):
            run(max_xcom_rows=limit)
    else:
        assert len(run(max_xcom_rows=limit)) == rows


def test_xcom_default_limit_fits_default_backend(sandbox: WavySandbox) -> None:
    sandbox.scenario = Scenario(rows=DEFAULT_MAX_XCOM_ROWS)

    rows = run()

    assert len(rows) == DEFAULT_MAX_XCOM_ROWS
    assert len(json.dumps(rows)) < 1_000_000


@pytest.mark.parametrize(
    ("scenario", "message"),
    [
        pytest.param({"file_body": "html"}, "HTML page", id="html"),
        pytest.param({"file_body": "missing-column"}, "missing", id="missing-column"),
        pytest.param({"rows": 200, "truncate_at": 500}, "cut short", id="truncated"),
    ],
)
def test_xcom_mode_faults(sandbox: WavySandbox, scenario: dict[str, Any], message: str) -> None:
    sandbox.scenario = Scenario(**scenario)
    with pytest.raises(WavyDownloadError, match=message):
        run()


# -- arguments ----------------------------------------------------------------------------------------------


@pytest.mark.parametrize(
    ("kwargs", "message"),
    [
        pytest.param({"destination_conn_id": "aws_default"}, "without a destination", id="conn-without-dest"),
        pytest.param({"max_xcom_rows": -1}, "max_xcom_rows", id="negative-limit"),
    ],
)
def test_bad_arguments_raise_value_error(kwargs: dict[str, Any], message: str) -> None:
    with pytest.raises(ValueError, match=message):
        WavyOpenSessionsOperator(task_id="t", **kwargs)


@pytest.mark.parametrize(
    ("kwargs", "message"),
    [
        pytest.param(
            {"destination": "/tmp/x.csv", "destination_conn_id": "aws"}, "local", id="conn-for-local"
        ),
        pytest.param({"file_url": "ftp://host/file"}, "absolute http", id="bad-file-url"),
        pytest.param({"destination": "nosuchfs://b/k.csv"}, "No Airflow file system", id="unknown-scheme"),
        pytest.param({"destination": "  "}, "destination must be a local path", id="blank-destination"),
        pytest.param(
            {"destination": "memory://wavy/", "destination_conn_id": "aws"},
            "No Airflow file system is registered for memory://",
            id="conn-for-fsspec-only-scheme",
        ),
    ],
)
def test_bad_arguments_at_run_time(sandbox: WavySandbox, kwargs: dict[str, Any], message: str) -> None:
    with pytest.raises(ValueError, match=message):
        run(**kwargs)

    # A bad destination fails before the API is asked (the file URL check needs no request either).
    assert sandbox.api_calls == 0


def test_object_storage_path_with_destination_conn_id_fails_before_any_request(sandbox: WavySandbox) -> None:
    from airflow.providers.common.compat.sdk import ObjectStoragePath

    with pytest.raises(ValueError, match="carries its own connection"):
        run(destination=ObjectStoragePath("memory://wavy/exports/"), destination_conn_id="aws")

    assert sandbox.api_calls == 0


# -- download buffers ---------------------------------------------------------------------------------------


@pytest.mark.skipif(not sys.platform.startswith("linux"), reason="anonymous private mappings: Linux here")
def test_buffers_are_anonymous_mappings() -> None:
    import mmap

    buffer = pipeline_module.anonymous_buffer(4 * 1024 * 1024)

    assert isinstance(buffer, mmap.mmap)
    assert len(buffer) == 4 * 1024 * 1024
    buffer[-1:] = b"x"  # private and writable


@pytest.mark.parametrize("failure", ["no-map-private", "mmap-fails"])
def test_buffers_fall_back_to_bytearray(
    sandbox: WavySandbox, tmp_path: Path, monkeypatch: pytest.MonkeyPatch, failure: str
) -> None:
    """Where anonymous mappings are missing (Windows) or refused, downloads still work, from bytearrays."""
    import mmap

    if failure == "no-map-private":
        monkeypatch.delattr(mmap, "MAP_PRIVATE", raising=False)
    else:

        def refuse(*args: Any, **kwargs: Any) -> mmap.mmap:
            raise OSError(12, "Cannot allocate memory")

        monkeypatch.setattr(mmap, "mmap", refuse)
    assert isinstance(pipeline_module.anonymous_buffer(1024), bytearray)
    sandbox.scenario = Scenario(rows=300_000)  # several buffers' worth

    summary = run(destination=str(tmp_path / "s.csv"))

    assert (tmp_path / "s.csv").read_bytes() == sandbox.expected_bytes()
    assert summary["sha256"] == hashlib.sha256(sandbox.expected_bytes()).hexdigest()


# -- logging, outlets, lineage, import cost -----------------------------------------------------------------


def test_progress_is_logged(
    sandbox: WavySandbox, tmp_path: Path, monkeypatch: pytest.MonkeyPatch, all_logs: Callable[[], str]
) -> None:
    monkeypatch.setattr(pipeline_module, "PROGRESS_INTERVAL", 0.0)
    sandbox.scenario = Scenario(rows=60_000)

    run(destination=str(tmp_path / "s.csv"))

    logs = all_logs()
    assert "Downloaded" in logs
    assert "MiB/s" in logs
    assert "%)" in logs  # the share done: the sandbox announces the size
    assert SANDBOX_TOKEN not in logs


def test_outlet_asset_gets_the_summary(sandbox: WavySandbox, tmp_path: Path) -> None:
    from airflow.providers.common.compat.sdk import Asset

    asset = Asset(f"file://{tmp_path}/s.csv")
    operator = WavyOpenSessionsOperator(task_id="t", destination=str(tmp_path / "s.csv"), outlets=[asset])
    context = make_context()

    summary = operator.execute(context)  # type: ignore[arg-type]

    assert context["outlet_events"][asset].extra == {
        "destination": summary["destination"],
        "rows": 25,
        "sha256": summary["sha256"],
    }


def test_openlineage_input_and_output(sandbox: WavySandbox, s3: tuple[AbstractFileSystem, str]) -> None:
    _fs, bucket = s3
    operator = WavyOpenSessionsOperator(
        task_id="t", destination=f"s3://{bucket}/exports/", destination_conn_id=S3_CONN_ID
    )
    operator.execute(make_context())  # type: ignore[arg-type]

    lineage = operator.get_openlineage_facets_on_complete(None)

    (source,) = lineage.inputs
    assert source.namespace == sandbox.cdn_url
    assert source.name.startswith("/")
    assert "?" not in source.name
    (target,) = lineage.outputs
    assert (target.namespace, target.name) == (f"s3://{bucket}", f"exports/{DEFAULT_NAME}")


@pytest.mark.slow
def test_module_imports_cheaply() -> None:
    # What Airflow itself loads (it may pull requests or fsspec) is not the operator's cost: diff against it.
    code = (
        "import sys; from airflow.providers.common.compat.sdk import BaseOperator; "
        "before = set(sys.modules); import airflow_provider_wavy.operators.wavy; "
        "new = set(sys.modules) - before; "
        "heavy = sorted(n for n in new "
        "if n.split('.')[0] in ('requests', 'fsspec', 'urllib3', 'csv', 'httpx') "
        "or n in ('airflow_provider_wavy.hooks.wavy', 'airflow_provider_wavy.sessions_csv', "
        "'airflow_provider_wavy.csv.checker', 'airflow_provider_wavy.csv.header', "
        "'airflow_provider_wavy.csv.counter', 'airflow_provider_wavy.protocol') "
        "or n.startswith('airflow.providers.openlineage')); "
        "print(heavy)"
    )
    env = {**os.environ, "PYTHONWARNINGS": "ignore"}
    result = subprocess.run(
        [sys.executable, "-c", code], capture_output=True, text=True, check=True, cwd=REPO_ROOT, env=env
    )
    assert result.stdout.strip().splitlines()[-1] == "[]"


@pytest.mark.parametrize(
    ("data", "expected"),
    [
        pytest.param(
            b"source;session_created_at\n1;a\n\n2;b\n",
            [{"source": "1", "session_created_at": "a"}, {"source": "2", "session_created_at": "b"}],
            id="blank-line-skipped",
        ),
        pytest.param(
            b"source;session_created_at\n1\n",
            [{"source": "1", "session_created_at": None}],
            id="short-row-padded-like-dictreader",
        ),
        pytest.param(
            b'source;session_created_at\n"1;2";"x\ny"\n',
            [{"source": "1;2", "session_created_at": "x\ny"}],
            id="quoted-delimiter-and-newline",
        ),
    ],
)
def test_parse_rows(data: bytes, expected: list[dict[str, str | None]]) -> None:
    assert operator_module.parse_rows(data, ";", ("source", "session_created_at"), False) == expected


def test_parse_rows_rejects_long_rows() -> None:
    with pytest.raises(ValueError, match="data row 2 has more fields than the header"):
        operator_module.parse_rows(
            b"source;session_created_at\n1;a\n2;b;c\n", ";", ("source", "session_created_at"), False
        )


@pytest.mark.parametrize(
    "rows",
    [
        pytest.param(100_000, id="fails-on-the-last-buffer"),
        pytest.param(1_500_000, id="fails-while-more-buffers-download"),
    ],
)
def test_destination_write_failure_is_one_clear_error(
    sandbox: WavySandbox, tmp_path: Path, monkeypatch: pytest.MonkeyPatch, rows: int
) -> None:
    from airflow_provider_wavy import _destination

    writes: list[int] = []

    def disk_full(self: Any, chunk: bytes) -> None:
        writes.append(len(chunk))
        raise OSError(28, "No space left on device")

    # The file system's own write, under the writer's error handling, is what fails on a full disk.
    monkeypatch.setattr(_destination.AtomicWriter, "_write", disk_full)
    sandbox.scenario = Scenario(rows=rows)

    with pytest.raises(WavyDownloadError, match=r"Cannot write .* No space left on device"):
        run(destination=str(tmp_path / "s.csv"))

    assert len(writes) == 1, "after the first failed write, nothing more is written"
    assert list(tmp_path.iterdir()) == []


def test_missing_bucket_is_one_clear_error(sandbox: WavySandbox, s3: tuple[AbstractFileSystem, str]) -> None:
    _fs, bucket = s3
    with pytest.raises(
        WavyDownloadError, match=r"to s3://.*-missing/x.csv \(FileNotFoundError: The specified bucket"
    ):
        run(destination=f"s3://{bucket}-missing/x.csv", destination_conn_id=S3_CONN_ID)


def test_write_failure_is_raised_even_inside_an_except_block(
    sandbox: WavySandbox, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    """A caller already handling an exception (a fallback path) must not hide the write error."""
    from airflow_provider_wavy import _destination

    def disk_full(self: Any, chunk: bytes) -> None:
        raise OSError(28, "No space left on device")

    # The file system's own write, under the writer's error handling, is what fails on a full disk.
    monkeypatch.setattr(_destination.AtomicWriter, "_write", disk_full)
    sandbox.scenario = Scenario(rows=1000)

    def fallback_download() -> None:
        try:
            raise KeyError("primary source missing")
        except KeyError:
            run(destination=str(tmp_path / "s.csv"))

    with pytest.raises(WavyDownloadError, match=r"No space left on device"):
        fallback_download()
    assert list(tmp_path.iterdir()) == []


# -- the buffer pipeline ------------------------------------------------------------------------------------


class _FailingDigest:
    """A sha256 stand-in that fails, as a MemoryError in the hashing thread would."""

    def update(self, data: object) -> None:
        raise MemoryError("no memory left to hash")

    def hexdigest(self) -> str:  # pragma: no cover - never reached
        return ""


@pytest.mark.timeout(20)
def test_pipeline_hash_failure_stops_the_download_instead_of_hanging() -> None:
    written: list[bytes] = []
    pipeline = pipeline_module.Pipeline(lambda view: written.append(bytes(view)), 2, 16)
    pipeline._digest = _FailingDigest()  # type: ignore[assignment]

    def feed_more_buffers_than_the_pool_holds() -> None:
        for _ in range(10):  # take() must raise, not wait forever for a buffer that never comes back
            buffer = pipeline.take()
            buffer[:] = b"x" * 16
            pipeline.submit(buffer, 16)

    with pytest.raises(MemoryError, match="no memory left to hash"):
        feed_more_buffers_than_the_pool_holds()
    with pytest.raises(MemoryError):
        pipeline.close()
    assert written == [], "nothing unhashed is written"


@pytest.mark.timeout(20)
def test_pipeline_abort_writes_nothing_more_and_waits_for_its_threads() -> None:
    import threading

    written: list[bytes] = []
    first_write_started, release_first_write = threading.Event(), threading.Event()

    def slow_write(view: memoryview) -> None:
        first_write_started.set()
        release_first_write.wait(10)
        written.append(bytes(view))

    pipeline = pipeline_module.Pipeline(slow_write, 4, 8)
    for byte in b"abcd":
        buffer = pipeline.take()
        buffer[:] = bytes([byte]) * 8
        pipeline.submit(buffer, 8)
    assert first_write_started.wait(10)
    threading.Timer(0.2, release_first_write.set).start()
    pipeline.abort()
    assert written == [b"a" * 8], "only the write already under way completes"
    assert not any(thread.is_alive() for thread in pipeline._threads)


def test_pipeline_hashes_and_writes_the_same_bytes_in_order() -> None:
    written = bytearray()
    pipeline = pipeline_module.Pipeline(written.extend, 3, 1000)
    data = bytes(range(256)) * 40
    for start in range(0, len(data), 1000):
        piece = data[start : start + 1000]
        buffer = pipeline.take()
        buffer[: len(piece)] = piece
        pipeline.submit(buffer, len(piece))
    assert pipeline.close() == hashlib.sha256(data).hexdigest()
    assert bytes(written) == data


def test_a_bug_is_not_reported_as_a_destination_failure(
    sandbox: WavySandbox, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    """Only the destination's own errors read "Cannot write ...": anything else passes as it is."""
    from airflow_provider_wavy.csv import checker

    def broken(self: Any, chunk: bytes) -> None:
        raise KeyError("a bug in the provider")

    monkeypatch.setattr(checker.CsvChecker, "feed", broken)
    with pytest.raises(KeyError, match="a bug in the provider"):
        run(destination=str(tmp_path / "s.csv"))
    assert list(tmp_path.iterdir()) == []
