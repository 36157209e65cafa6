"""
Where the example DAGs keep their files, and a clear refusal of a local folder that other workers cannot see.

A local path is one machine's disk. Under ``LocalExecutor`` every task runs on that machine, so it works;
under ``CeleryExecutor``, ``KubernetesExecutor`` and the like, the task that reads a file may run on another
machine than the one that wrote it, and fails with ``FileNotFoundError`` there. :func:`data_location` fails
before anything is written instead, naming the fix: object storage (``s3://bucket/wavy``), or a shared mount
declared as such.
"""

from __future__ import annotations

import contextlib
from typing import IO, TYPE_CHECKING, Any

from airflow_provider_wavy.exceptions import WavyDataLocationError

if TYPE_CHECKING:
    from collections.abc import Iterator

#: The example DAGs' default folder: fine on one machine (LocalExecutor, the demo), refused elsewhere.
DEFAULT_DATA_DIR = "/tmp/wavy"  # noqa: S108 - a demo default, refused where several machines run tasks
#: Executors that run every task on the scheduler's machine: a local folder is shared by all their tasks.
SINGLE_MACHINE_EXECUTORS = frozenset({"LocalExecutor", "SequentialExecutor", "DebugExecutor"})
_TRUE = frozenset({"1", "true", "yes", "on"})


def is_local(location: str) -> bool:
    """
    Tell whether a location is a path on this machine's disk (no scheme, or ``file://``).

    :param location: a path or a URL.
    """
    scheme, sep, _ = location.partition("://")
    return not sep or scheme.lower() in {"file", "local"}


def configured_executors() -> list[str]:
    """Return the class names of the executors this Airflow runs tasks with (``[core] executor``)."""
    from airflow.providers.common.compat.sdk import conf

    value = str(conf.get("core", "executor", fallback="LocalExecutor"))
    # "LocalExecutor", "airflow.providers.celery...CeleryExecutor", "alias:module.Class", or several (3.x).
    return [part.strip().rpartition(":")[2].rpartition(".")[2] for part in value.split(",") if part.strip()]


def data_location(variables: Any = None, *, location: str | None = None, shared: Any = None) -> str:
    """
    Return the folder the example DAGs write to, refusing a local one where tasks run on several machines.

    Used as a template macro, ``{{ wavy_data_location(var.value) }}``: read on the worker when the task
    runs. The location is the Variable ``wavy_data_dir`` (default ``/tmp/wavy``); a local path under an
    executor that spreads tasks over machines is refused unless the Variable ``wavy_data_dir_shared`` is
    ``true`` (an NFS or other mount that every worker sees at the same path).

    :param variables: Airflow's ``var.value`` accessor in a template (anything with ``get(name, default)``).
    :param location: the location, instead of the Variable.
    :param shared: whether a local location is a mount shared by every worker, instead of the Variable.
    """
    if location is None:
        location = str(variables.get("wavy_data_dir", DEFAULT_DATA_DIR)) if variables else DEFAULT_DATA_DIR
    if shared is None:
        shared = variables.get("wavy_data_dir_shared", "false") if variables else "false"
    location = location.strip().rstrip("/") or DEFAULT_DATA_DIR
    if not is_local(location) or str(shared).strip().lower() in _TRUE:
        return location
    spread = [name for name in configured_executors() if name not in SINGLE_MACHINE_EXECUTORS]
    if spread:
        raise WavyDataLocationError(
            f"The Airflow Variable wavy_data_dir is the local path {location!r}, but this Airflow runs tasks "
            f"with {', '.join(spread)}, on several machines: a file written there by one worker is not on "
            "the disk of the worker that reads it next. Set wavy_data_dir to object storage that every "
            "worker reaches (e.g. s3://my-bucket/wavy, with the Variable wavy_data_conn_id naming its "
            "connection), or, if the path is a mount shared by every worker (NFS), set the Variable "
            "wavy_data_dir_shared to true."
        )
    return location


@contextlib.contextmanager
def open_data_file(uri: str, conn_id: str | None = None) -> Iterator[IO[bytes]]:
    """
    Open a file the download wrote, for reading: a local path directly, anything else as ObjectStoragePath.

    :param uri: the ``destination`` the download task reported (a path or a URL).
    :param conn_id: the object store's connection (e.g. the Variable ``wavy_data_conn_id``); None for local.
    """
    if is_local(uri):
        # Plain files need no ObjectStoragePath: file:// paths fail on some Airflow/universal-pathlib pairs.
        with open(uri.partition("://")[2] if "://" in uri else uri, "rb") as file:
            yield file
        return
    from airflow.providers.common.compat.sdk import ObjectStoragePath

    with ObjectStoragePath(uri, conn_id=conn_id or None).open("rb") as file:  # type: ignore[no-untyped-call]
        yield file
