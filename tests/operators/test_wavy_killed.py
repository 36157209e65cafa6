"""A WavyOpenSessionsOperator task SIGKILLed mid-download, then tried again: one complete file, no debris."""

from __future__ import annotations

import os
import signal
import subprocess
import sys
import time
from typing import TYPE_CHECKING

import pytest

from airflow_provider_wavy.sandbox import Scenario, WavySandbox
from tests.conftest import REPO_ROOT, set_conn
from tests.operators.test_wavy import DEFAULT_NAME, LOGICAL_DS, run

if TYPE_CHECKING:
    from pathlib import Path

#: The task process: the operator as a worker runs it, with the least of a context it reads before writing.
TASK = f"""
import sys
from airflow_provider_wavy.operators.wavy import WavyOpenSessionsOperator
operator = WavyOpenSessionsOperator(task_id="download", destination=sys.argv[1])
operator.execute({{"ds": "{LOGICAL_DS}", "run_id": "manual__{LOGICAL_DS}"}})
"""
ROWS = 200_000
#: The file host sends this much, then stays silent (longer than the test waits): the task is mid-download.
SENT_BEFORE_STALL = 5_000_000


@pytest.mark.slow
def test_killed_task_leaves_no_debris_for_its_next_try(
    sandbox: WavySandbox, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    folder = tmp_path / "out"
    # The read timeout outlasts the test: the task is still alive and writing when it is killed.
    set_conn(monkeypatch, sandbox.connection_json(), extra={"timeout": 120, "max_retries": 0})
    sandbox.scenario = Scenario(rows=ROWS, truncate_at=SENT_BEFORE_STALL, truncate_stall=120.0)
    task = subprocess.Popen([sys.executable, "-c", TASK, f"{folder}/"], cwd=REPO_ROOT, env=dict(os.environ))
    try:
        partial = _wait_for_partial(folder, task)
    finally:
        os.kill(task.pid, signal.SIGKILL)
        assert task.wait(timeout=60) == -signal.SIGKILL
    assert partial.exists()
    # The next try comes after the task's retry delay (minutes): age the file rather than wait.
    old = time.time() - 3600
    os.utime(partial, (old, old))

    sandbox.scenario = Scenario(rows=ROWS)
    summary = run(destination=f"{folder}/")

    assert sorted(p.name for p in folder.iterdir()) == [DEFAULT_NAME]
    assert (folder / DEFAULT_NAME).read_bytes() == sandbox.expected_bytes()
    assert summary["rows"] == ROWS


def _wait_for_partial(folder: Path, task: subprocess.Popen[bytes]) -> Path:
    """Return the task's temporary file once it holds data, bounded by a deadline."""
    deadline = time.monotonic() + 60
    while time.monotonic() < deadline:
        assert task.poll() is None, "the task ended before it could be killed mid-download"
        partials = list(folder.glob(f".{DEFAULT_NAME}.partial-*")) if folder.exists() else []
        if partials and partials[0].stat().st_size > 0:
            return partials[0]
        time.sleep(0.05)
    raise AssertionError("the task wrote nothing within 60 s")
