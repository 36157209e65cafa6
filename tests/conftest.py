"""Fixtures shared by the whole suite: an isolated Airflow home and a sandbox on loopback."""

from __future__ import annotations

import json
import logging
import os
import sys
import tempfile
from pathlib import Path

# Airflow reads its home and config when first imported, so isolate it before any test imports it.
if "AIRFLOW_HOME" not in os.environ:
    os.environ["AIRFLOW_HOME"] = tempfile.mkdtemp(prefix="wavy-airflow-home-")
os.environ.setdefault("AIRFLOW__CORE__LOAD_EXAMPLES", "False")

from typing import TYPE_CHECKING, Any

import pytest

from airflow_provider_wavy.sandbox import Scenario, WavySandbox
from tests.pg_server import pg_server  # noqa: F401 - the session fixture, for every test that asks for it

if TYPE_CHECKING:
    from collections.abc import Callable, Iterator

    from fsspec import AbstractFileSystem

REPO_ROOT = Path(__file__).resolve().parents[1]
SANDBOX_USER = "sandbox-user"
#: Distinctive, so that a leak anywhere (logs, files, XCom) is found by a plain substring search.
SANDBOX_TOKEN = "tok-7f3a9c-SECRET-e21b"
SANDBOX_CUSTOMER = "1001"
#: The Airflow connection the ``s3`` fixture defines for the moto server.
S3_CONN_ID = "wavy_test_s3"
#: s3fs's block (and multipart part) size in the ``s3`` fixture: the smallest S3 takes, so that a test can
#: start a multipart upload with a few MiB.
S3_BLOCK_SIZE = 5 * 2**20


def set_conn(monkeypatch: pytest.MonkeyPatch, base: str, **changes: Any) -> None:
    """
    Point ``wavy_default`` at a connection with some fields or extras changed.

    :param monkeypatch: undoes the change after the test.
    :param base: the connection as JSON, e.g. ``sandbox.connection_json()``.
    :param changes: fields to replace; ``extra`` is merged into the base's extras.
    """
    conn = json.loads(base)
    extra = {**conn.get("extra", {}), **changes.pop("extra", {})}
    conn.update(changes, extra=extra)
    monkeypatch.setenv("AIRFLOW_CONN_WAVY_DEFAULT", json.dumps(conn))


@pytest.fixture(scope="session")
def _sandbox_server() -> Iterator[WavySandbox]:
    with WavySandbox(username=SANDBOX_USER, token=SANDBOX_TOKEN, customer_id=SANDBOX_CUSTOMER) as server:
        yield server


@pytest.fixture
def sandbox(_sandbox_server: WavySandbox, monkeypatch: pytest.MonkeyPatch) -> Iterator[WavySandbox]:
    """Return the session's sandbox, reset to the happy path, with ``wavy_default`` pointing at it."""
    _sandbox_server.scenario = Scenario()
    _sandbox_server.list_scenarios = {}
    _sandbox_server.reset()
    monkeypatch.setenv("AIRFLOW_CONN_WAVY_DEFAULT", _sandbox_server.connection_json())
    yield _sandbox_server
    _sandbox_server.scenario = Scenario()


@pytest.fixture
def all_logs(
    caplog: pytest.LogCaptureFixture, capfd: pytest.CaptureFixture[str]
) -> Iterator[Callable[[], str]]:
    """Return a function giving everything logged or printed so far (stdlib logging and structlog)."""
    caplog.set_level(logging.DEBUG)
    loggers = [logging.getLogger(name) for name in ("airflow", "airflow.task", "urllib3", "requests")]
    for logger in loggers:
        logger.addHandler(caplog.handler)

    def text() -> str:
        out, err = capfd.readouterr()
        # readouterr consumes: keep what was read so that later calls still see it.
        sys.stdout.write(out)
        sys.stderr.write(err)
        return caplog.text + out + err

    yield text
    for logger in loggers:
        logger.removeHandler(caplog.handler)


@pytest.fixture(scope="session")
def moto_endpoint() -> Iterator[str]:
    """Start a real S3-compatible server (moto) on loopback for the whole session."""
    from moto.server import ThreadedMotoServer

    server = ThreadedMotoServer(ip_address="127.0.0.1", port=0, verbose=False)
    server.start()
    host, port = server.get_host_and_port()
    yield f"http://{host}:{port}"
    server.stop()


@pytest.fixture
def s3(moto_endpoint: str, monkeypatch: pytest.MonkeyPatch) -> tuple[AbstractFileSystem, str]:
    """Return an s3fs file system on the moto server and a fresh bucket, with an ``aws`` connection to it."""
    import uuid

    import s3fs

    monkeypatch.setenv("AWS_ACCESS_KEY_ID", "testing")
    monkeypatch.setenv("AWS_SECRET_ACCESS_KEY", "testing")
    monkeypatch.setenv("AWS_DEFAULT_REGION", "us-east-1")
    conn = {
        "conn_type": "aws",
        "login": "testing",
        "password": "testing",
        "extra": {"endpoint_url": moto_endpoint, "region_name": "us-east-1"},
    }
    monkeypatch.setenv(f"AIRFLOW_CONN_{S3_CONN_ID.upper()}", json.dumps(conn))
    fs = s3fs.S3FileSystem(
        key="testing",
        secret="testing",
        client_kwargs={"endpoint_url": moto_endpoint},
        skip_instance_cache=True,
        default_block_size=S3_BLOCK_SIZE,
    )
    bucket = f"wavy-{uuid.uuid4().hex[:12]}"
    fs.mkdir(bucket)
    return fs, bucket


@pytest.fixture
def memory_fs() -> Iterator[AbstractFileSystem]:
    """Return fsspec's process-wide memory file system (the one ``memory://`` resolves to), emptied."""
    import fsspec

    fs = fsspec.filesystem("memory")
    fs.store.clear()
    fs.pseudo_dirs[:] = [""]
    yield fs
    fs.store.clear()
    fs.pseudo_dirs[:] = [""]
