"""
The demo's Airflow side: its private home and environment, the ``airflow`` processes it runs and watches,
and what their output and database say when something fails (``python -m airflow_provider_wavy.demo``).
"""

from __future__ import annotations

import contextlib
import os
import signal
import sqlite3
import subprocess
import sys
import time
from dataclasses import dataclass
from importlib.metadata import PackageNotFoundError, version
from pathlib import Path
from typing import TYPE_CHECKING

if TYPE_CHECKING:
    from collections.abc import Callable, Sequence

DAG_ID = "example_wavy_daily"
LOG_TAIL_LINES = 25


class DemoError(Exception):
    """A problem the user can fix, explained in plain words (no traceback)."""


@dataclass(frozen=True)
class DemoPaths:
    """Where the demo keeps its things (all under one git-ignored folder)."""

    root: Path

    @property
    def airflow_home(self) -> Path:
        """The private ``AIRFLOW_HOME`` (rebuilt on every run)."""
        return self.root / "airflow"

    @property
    def data_dir(self) -> Path:
        """The ``wavy_data_dir`` Variable: where the DAG writes the files."""
        return self.root / "data"

    @property
    def log(self) -> Path:
        """Airflow's combined output."""
        return self.root / "airflow.log"


def shown(path: Path) -> str:
    """Return a path relative to the working directory when it is below it (shorter to read)."""
    try:
        return str(path.resolve().relative_to(Path.cwd().resolve()))
    except ValueError:
        return str(path)


def installed_airflow_version() -> str:
    """Return the installed Airflow version, or explain how to get one."""
    try:
        return version("apache-airflow")
    except PackageNotFoundError:
        raise DemoError(
            f"Apache Airflow is not installed for {sys.executable}. Install it there "
            '(pip install "apache-airflow>=2.11"), or run scripts/demo.sh from a checkout: it sets up an '
            "environment with Airflow first."
        ) from None


def airflow_env(paths: DemoPaths, dags_folder: Path, extra: dict[str, str]) -> dict[str, str]:
    """
    Return the environment of the ``airflow`` commands: a private home, never the user's own.

    :param paths: the demo's folders.
    :param dags_folder: the folder holding the daily example.
    :param extra: sandbox variables (the ``wavy_default`` connection).
    """
    bin_dir = str(Path(sys.executable).parent)
    # Drop the user's Airflow settings: the demo must not touch (or be broken by) another installation.
    env = {k: v for k, v in os.environ.items() if not k.startswith(("AIRFLOW_", "AIRFLOW__"))}
    major = int(installed_airflow_version().split(".")[0])
    env.update(
        {
            "AIRFLOW_HOME": str(paths.airflow_home),
            "AIRFLOW__CORE__DAGS_FOLDER": str(dags_folder),
            "AIRFLOW__CORE__LOAD_EXAMPLES": "False",
            "AIRFLOW__DATABASE__SQL_ALCHEMY_CONN": f"sqlite:///{paths.airflow_home / 'airflow.db'}",
            "AIRFLOW__CORE__EXECUTOR": "SequentialExecutor" if major == 2 else "LocalExecutor",
            "AIRFLOW_VAR_WAVY_DATA_DIR": str(paths.data_dir),
            # The sandbox has the file on the second poll: poll every second instead of every 5 minutes.
            "WAVY_POKE_INTERVAL": "1",
            "PATH": f"{bin_dir}{os.pathsep}{env.get('PATH', '')}",
            "PYTHONWARNINGS": "ignore",
        }
    )
    env.update(extra)
    return env


def run_airflow(
    args: Sequence[str],
    env: dict[str, str],
    log: Path,
    timeout: float,
    watch: Callable[[], str | None] | None = None,
) -> int:
    """
    Run one ``airflow`` command with its output appended to the log; stop it cleanly on Ctrl-C.

    :param args: the command's arguments after ``airflow``.
    :param env: its environment.
    :param log: the file collecting Airflow's output.
    :param timeout: seconds before giving up.
    :param watch: called every half second; a message it returns stops the command as failed.
    """
    airflow = Path(sys.executable).parent / "airflow"
    if not airflow.exists():
        raise DemoError(f"No airflow command next to {sys.executable}. Run scripts/demo.sh to set it up.")
    with log.open("a", encoding="utf-8") as out:
        out.write(f"\n$ airflow {' '.join(args)}\n")
        out.flush()
        # Its own session: Ctrl-C reaches only the demo, which then stops the whole command group itself.
        process = subprocess.Popen(
            [str(airflow), *args],
            env=env,
            stdout=out,
            stderr=subprocess.STDOUT,
            stdin=subprocess.DEVNULL,
            start_new_session=True,
        )
        deadline = time.monotonic() + timeout
        try:
            while True:
                try:
                    return process.wait(timeout=0.5)
                except subprocess.TimeoutExpired:
                    pass
                problem = watch() if watch else None
                if problem:
                    raise DemoError(problem)
                if time.monotonic() > deadline:
                    raise DemoError(
                        f"`airflow {' '.join(args)}` did not finish within {timeout:.0f}s.{log_tail(log)}"
                    )
        finally:
            stop(process)


def stop(process: subprocess.Popen[bytes]) -> None:
    """Stop a command and everything it started."""
    for sig, wait in ((signal.SIGTERM, 10.0), (signal.SIGKILL, 5.0)):
        if process.poll() is not None:
            return
        try:
            os.killpg(process.pid, sig)
        except ProcessLookupError:
            return
        try:
            process.wait(timeout=wait)
        except subprocess.TimeoutExpired:
            continue


def log_tail(log: Path, lines: int = LOG_TAIL_LINES) -> str:
    """Return the end of Airflow's output, indented, with the log's path."""
    try:
        text = log.read_text(encoding="utf-8", errors="replace")
    except OSError:
        return ""
    tail = "\n".join("    " + line for line in text.splitlines()[-lines:])
    return f"\n  Last lines of {shown(log)}:\n{tail}\n  Full output: {shown(log)}"


def task_error(log: Path) -> str | None:
    """Return the exception line of the last task failure in Airflow's output (``WavyError: ...``), if any."""
    try:
        lines = log.read_text(encoding="utf-8", errors="replace").splitlines()
    except OSError:
        return None
    starts = [i for i, line in enumerate(lines) if "Task failed with exception" in line]
    if not starts:
        return None
    # After the marker comes a traceback (indented lines); the first flush-left line after it is the error.
    seen_traceback = False
    for line in lines[starts[-1] + 1 :]:
        if line.startswith("Traceback"):
            seen_traceback = True
        elif seen_traceback and line and not line[0].isspace():
            return line.strip()
    return None


def failure_watch(paths: DemoPaths) -> Callable[[], str | None]:
    """
    Return a check that reports a failed task at once.

    The example retries failed tasks after 5 minutes, and ``airflow dags test`` waits for those retries:
    a demo should say what went wrong now instead.

    :param paths: the demo's folders.
    """

    def check() -> str | None:
        try:
            _state, tasks = read_task_states(paths)
        except sqlite3.Error:  # Airflow is writing: look again in half a second
            return None
        failed = sorted(task for task, state in tasks.items() if state in {"failed", "up_for_retry"})
        if not failed:
            return None
        time.sleep(0.5)  # let Airflow finish writing the traceback to the log
        error = task_error(paths.log)
        detail = f": {error}" if error else f".{log_tail(paths.log)}"
        return f"Task {', '.join(failed)} failed{detail}\n  Airflow's full output: {shown(paths.log)}"

    return check


def read_task_states(paths: DemoPaths) -> tuple[str | None, dict[str, str]]:
    """Return the last run's state and its task states, read from the demo's SQLite database."""
    database = paths.airflow_home / "airflow.db"
    if not database.exists():
        return None, {}
    with contextlib.closing(sqlite3.connect(f"file:{database}?mode=ro", uri=True, timeout=1)) as db:
        row = db.execute(
            "SELECT run_id, state FROM dag_run WHERE dag_id = ? ORDER BY id DESC LIMIT 1", (DAG_ID,)
        ).fetchone()
        if row is None:
            return None, {}
        run_id, state = row
        tasks = dict(
            db.execute(
                "SELECT task_id, state FROM task_instance WHERE dag_id = ? AND run_id = ?", (DAG_ID, run_id)
            ).fetchall()
        )
    return str(state), {str(k): str(v) for k, v in tasks.items()}
