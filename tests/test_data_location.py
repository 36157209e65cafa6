"""The example DAGs' data folder: a local one is refused where tasks run on several machines."""

from __future__ import annotations

from typing import TYPE_CHECKING

import pytest

from airflow_provider_wavy.data_location import DEFAULT_DATA_DIR, data_location, open_data_file
from airflow_provider_wavy.exceptions import WavyDataLocationError, WavyFatalError
from tests.conftest import S3_CONN_ID

if TYPE_CHECKING:
    from pathlib import Path

    from fsspec import AbstractFileSystem

CELERY = "airflow.providers.celery.executors.celery_executor.CeleryExecutor"


@pytest.mark.parametrize(
    ("executor", "variables", "expected"),
    [
        pytest.param("LocalExecutor", {}, DEFAULT_DATA_DIR, id="local-executor-default"),
        pytest.param("SequentialExecutor", {"wavy_data_dir": "/data/wavy/"}, "/data/wavy", id="sequential"),
        pytest.param("CeleryExecutor", {"wavy_data_dir": "s3://b/wavy"}, "s3://b/wavy", id="celery-s3"),
        pytest.param(CELERY, {"wavy_data_dir": "gs://b/w/"}, "gs://b/w", id="celery-dotted-gcs"),
        pytest.param(
            "KubernetesExecutor",
            {"wavy_data_dir": "/mnt/nfs/wavy", "wavy_data_dir_shared": "true"},
            "/mnt/nfs/wavy",
            id="kubernetes-declared-shared-mount",
        ),
    ],
)
def test_allowed_locations(
    monkeypatch: pytest.MonkeyPatch, executor: str, variables: dict[str, str], expected: str
) -> None:
    monkeypatch.setenv("AIRFLOW__CORE__EXECUTOR", executor)
    assert data_location(variables) == expected


@pytest.mark.parametrize(
    ("executor", "variables"),
    [
        pytest.param("CeleryExecutor", {}, id="celery-default-tmp"),
        pytest.param(CELERY, {"wavy_data_dir": "/srv/wavy"}, id="celery-dotted-local"),
        pytest.param("KubernetesExecutor", {"wavy_data_dir": "file:///srv/wavy"}, id="kubernetes-file-url"),
        pytest.param("LocalExecutor,CeleryExecutor", {"wavy_data_dir": "/srv/wavy"}, id="local-and-celery"),
    ],
)
def test_local_location_is_refused_on_multi_machine_executors(
    monkeypatch: pytest.MonkeyPatch, executor: str, variables: dict[str, str]
) -> None:
    monkeypatch.setenv("AIRFLOW__CORE__EXECUTOR", executor)
    with pytest.raises(WavyDataLocationError) as raised:
        data_location(variables)
    message = str(raised.value)
    assert "several machines" in message
    assert "s3://" in message
    assert "wavy_data_dir_shared" in message
    assert isinstance(raised.value, WavyFatalError)  # no retry can fix it


def test_open_data_file_reads_local_paths_and_file_urls(tmp_path: Path) -> None:
    path = tmp_path / "sessions.csv"
    path.write_bytes(b"a;b\n1;2\n")
    for uri in (str(path), f"file://{path}"):
        with open_data_file(uri) as file:
            assert file.read() == b"a;b\n1;2\n"


def test_open_data_file_reads_object_storage_with_its_connection(s3: tuple[AbstractFileSystem, str]) -> None:
    fs, bucket = s3
    fs.pipe(f"{bucket}/wavy/sessions.csv", b"a;b\n")
    with open_data_file(f"s3://{bucket}/wavy/sessions.csv", S3_CONN_ID) as file:
        assert file.read() == b"a;b\n"
