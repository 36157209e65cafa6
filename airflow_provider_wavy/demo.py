"""
The first thing to run: the daily example DAG in a real Airflow, against the local Wavy sandbox.

``python -m airflow_provider_wavy.demo`` (or ``scripts/demo.sh``, which also sets up the environment) starts
the sandbox, creates a private Airflow home under ``.demo/``, points ``wavy_default`` at the sandbox, runs
``airflow dags test example_wavy_daily`` and shows where the CSV landed, its row count and its first rows.
Airflow's own output goes to ``.demo/airflow.log`` and is shown only when something fails.
"""

from __future__ import annotations

import argparse
import contextlib
import csv
import datetime as dt
import io
import os
import shutil
import signal
import sqlite3
import subprocess
import sys
import time
from dataclasses import dataclass
from importlib.metadata import PackageNotFoundError, version
from pathlib import Path
from typing import TYPE_CHECKING, Any

if TYPE_CHECKING:
    from collections.abc import Callable, Sequence

DAG_ID = "example_wavy_daily"
DAG_FILE = "example_wavy_daily.py"
#: Where the wheel carries the daily example (pyproject's force-include): a pip install has no checkout.
PACKAGED_DAGS = Path(__file__).resolve().parent / "_demo"
SHOWN_ROWS = 5
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


def _shown(path: Path) -> str:
    """Return a path relative to the working directory when it is below it (shorter to read)."""
    try:
        return str(path.resolve().relative_to(Path.cwd().resolve()))
    except ValueError:
        return str(path)


def _find_example_dags(given: str | None) -> Path:
    """
    Return the folder holding the daily example: the one given, the installed package's, or a checkout's.

    :param given: a folder from ``--dags-folder``, if any.
    """
    if given:
        candidates = [Path(given)]
    else:
        checkout = Path(__file__).resolve().parents[1] / "example_dags"
        candidates = [PACKAGED_DAGS, checkout, Path.cwd() / "example_dags"]
    for folder in candidates:
        if (folder / DAG_FILE).is_file():
            return folder
    raise DemoError(
        f"Cannot find {DAG_FILE}: looked in {', '.join(str(c) for c in candidates)}. Reinstall "
        "airflow-provider-wavy (its wheel carries the file), or pass --dags-folder with a folder holding "
        f"{DAG_FILE} (example_dags/ in a checkout)."
    )


def _airflow_version() -> str:
    """Return the installed Airflow version, or explain how to get one."""
    try:
        return version("apache-airflow")
    except PackageNotFoundError:
        raise DemoError(
            f"Apache Airflow is not installed for {sys.executable}. Install it there "
            '(pip install "apache-airflow>=2.11"), or run scripts/demo.sh from a checkout: it sets up an '
            "environment with Airflow first."
        ) from None


def _airflow_env(paths: DemoPaths, dags_folder: Path, extra: dict[str, str]) -> dict[str, str]:
    """
    Return the environment of the ``airflow`` commands: a private home, never the user's own.

    :param paths: the demo's folders.
    :param dags_folder: the folder holding the daily example.
    :param extra: sandbox variables (the ``wavy_default`` connection).
    """
    bin_dir = str(Path(sys.executable).parent)
    # Drop the user's Airflow settings: the demo must not touch (or be broken by) another installation.
    env = {k: v for k, v in os.environ.items() if not k.startswith(("AIRFLOW_", "AIRFLOW__"))}
    major = int(_airflow_version().split(".")[0])
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


def _run_airflow(
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
                        f"`airflow {' '.join(args)}` did not finish within {timeout:.0f}s.{_log_tail(log)}"
                    )
        finally:
            _stop(process)


def _stop(process: subprocess.Popen[bytes]) -> None:
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


def _log_tail(log: Path, lines: int = LOG_TAIL_LINES) -> str:
    """Return the end of Airflow's output, indented, with the log's path."""
    try:
        text = log.read_text(encoding="utf-8", errors="replace")
    except OSError:
        return ""
    tail = "\n".join("    " + line for line in text.splitlines()[-lines:])
    return f"\n  Last lines of {_shown(log)}:\n{tail}\n  Full output: {_shown(log)}"


def _task_error(log: Path) -> str | None:
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


def _failure_watch(paths: DemoPaths) -> Callable[[], str | None]:
    """
    Return a check that reports a failed task at once.

    The example retries failed tasks after 5 minutes, and ``airflow dags test`` waits for those retries:
    a demo should say what went wrong now instead.

    :param paths: the demo's folders.
    """

    def check() -> str | None:
        try:
            _state, tasks = _task_states(paths)
        except sqlite3.Error:  # Airflow is writing: look again in half a second
            return None
        failed = sorted(task for task, state in tasks.items() if state in {"failed", "up_for_retry"})
        if not failed:
            return None
        time.sleep(0.5)  # let Airflow finish writing the traceback to the log
        error = _task_error(paths.log)
        detail = f": {error}" if error else f".{_log_tail(paths.log)}"
        return f"Task {', '.join(failed)} failed{detail}\n  Airflow's full output: {_shown(paths.log)}"

    return check


def _task_states(paths: DemoPaths) -> tuple[str | None, dict[str, str]]:
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


def _read_csv(path: Path) -> tuple[list[str], list[list[str]], int]:
    """
    Return the header, the first rows and the row count of a sessions file.

    :param path: the downloaded CSV.
    """
    text = path.read_text(encoding="utf-8-sig")
    first_line = text.split("\n", 1)[0]
    delimiter = ";" if first_line.count(";") >= first_line.count(",") else ","
    reader = csv.reader(io.StringIO(text, newline=""), delimiter=delimiter)
    header = next(reader, [])
    rows = [row for row in reader if row]
    return header, rows[:SHOWN_ROWS], len(rows)


def _table(header: list[str], rows: list[list[str]]) -> str:
    """Return rows as an aligned, indented text table."""
    widths = [
        max(len(str(cells[i])) for cells in [header, *rows] if i < len(cells)) for i in range(len(header))
    ]
    lines = [
        "  ".join(cell.ljust(width) for cell, width in zip(cells, widths, strict=False))
        for cells in [header, *rows]
    ]
    return "\n".join("    " + line.rstrip() for line in lines)


def _step(label: str, args: Sequence[str], env: dict[str, str], paths: DemoPaths, **kwargs: Any) -> int:
    """
    Run one ``airflow`` command as a numbered step: one line of progress, ``done`` or ``failed``.

    :param label: what the step does, for the user.
    :param args: the command's arguments after ``airflow``.
    :param env: its environment.
    :param paths: the demo's folders.
    :param kwargs: passed to ``_run_airflow`` (timeout, watch).
    """
    started = time.monotonic()
    print(f"  {label} ...", end="", flush=True)
    try:
        code = _run_airflow(args, env, paths.log, **kwargs)
    except BaseException:
        print(" failed" if sys.exc_info()[0] is DemoError else "")
        raise
    print(f" {'done' if code == 0 else 'failed'} ({time.monotonic() - started:.0f}s)")
    return code


def _prepare(paths: DemoPaths, example_dags: Path, logical_date: str, airflow_version: str) -> Path:
    """
    Create a fresh private Airflow home holding only the daily example; return its dags folder.

    :param paths: the demo's folders.
    :param example_dags: the checkout's example folder.
    :param logical_date: the run's date (its earlier output is removed).
    :param airflow_version: for the log's first line.
    """
    # A fresh home every time: a new database (3 s) is simpler than reasoning about earlier runs.
    shutil.rmtree(paths.airflow_home, ignore_errors=True)
    shutil.rmtree(paths.data_dir / "open_sessions" / logical_date, ignore_errors=True)
    dags_folder = paths.airflow_home / "dags"
    dags_folder.mkdir(parents=True)
    shutil.copyfile(example_dags / DAG_FILE, dags_folder / DAG_FILE)
    paths.log.write_text(
        f"Wavy demo, Airflow {airflow_version}, {dt.datetime.now(dt.UTC):%Y-%m-%d %H:%M:%S} UTC\n"
    )
    return dags_folder


def _show_result(paths: DemoPaths, logical_date: str) -> None:
    """
    Print where the CSV landed, its row count and its first rows.

    :param paths: the demo's folders.
    :param logical_date: the run's date (the partition folder).
    """
    folder = paths.data_dir / "open_sessions" / logical_date
    files = sorted(p for p in folder.rglob("*") if p.is_file())
    if len(files) != 1:
        raise DemoError(f"Expected one CSV under {_shown(folder)}, found {len(files)}.{_log_tail(paths.log)}")
    header, first_rows, count = _read_csv(files[0])
    print()
    print(f"CSV:   {_shown(files[0])}")
    print(f"Rows:  {count} open session(s), {files[0].stat().st_size:,} bytes")
    print(f"First {len(first_rows)} row(s):")
    print(_table(header, first_rows))
    print()
    print(f"Airflow's output: {_shown(paths.log)}. Next: point wavy_default at Wavy (README, Example DAGs).")


def run_demo(args: argparse.Namespace) -> int:
    """
    Run the demo; return the exit status.

    :param args: the parsed command line.
    """
    from airflow_provider_wavy.sandbox import Scenario, WavySandbox

    airflow_version = _airflow_version()
    example_dags = _find_example_dags(args.dags_folder)
    paths = DemoPaths(Path(args.workdir).resolve())
    dags_folder = _prepare(paths, example_dags, args.date, airflow_version)

    # The file is ready on the sensor's second poll, so the run shows a real wait (one second long).
    sandbox = WavySandbox(scenario=Scenario(rows=args.rows, ready_after=1))
    try:
        sandbox.start()
    except OSError as error:
        raise DemoError(f"Cannot start the Wavy sandbox on 127.0.0.1: {error}.") from None
    try:
        print(f"Wavy demo on Airflow {airflow_version}, sandbox API at {sandbox.base_url}")
        env = _airflow_env(paths, dags_folder, {"AIRFLOW_CONN_WAVY_DEFAULT": sandbox.connection_json()})
        label = f"1/2 Creating a private Airflow home in {_shown(paths.airflow_home)}"
        if _step(label, ["db", "migrate"], env, paths, timeout=300) != 0:
            raise DemoError(f"`airflow db migrate` failed.{_log_tail(paths.log)}")
        label = f"2/2 Running {DAG_ID} for {args.date}"
        command = ["dags", "test", DAG_ID, args.date]
        code = _step(label, command, env, paths, timeout=args.timeout, watch=_failure_watch(paths))
        run_state, task_states = _task_states(paths)
        if code != 0 or run_state != "success":
            not_ok = sorted(f"{task}: {state}" for task, state in task_states.items() if state != "success")
            raise DemoError(
                f"The DAG run ended {run_state or 'without a run'} (exit code {code})"
                f"{'; ' + ', '.join(not_ok) if not_ok else ''}.{_log_tail(paths.log)}"
            )
    finally:
        sandbox.stop()
    _show_result(paths, args.date)
    return 0


def build_parser() -> argparse.ArgumentParser:
    """Return the command-line parser."""
    yesterday = (dt.datetime.now(dt.UTC) - dt.timedelta(days=1)).date().isoformat()
    parser = argparse.ArgumentParser(
        prog="python -m airflow_provider_wavy.demo",
        description="Run the daily example DAG in a real Airflow against a local Wavy sandbox.",
    )
    parser.add_argument("--date", default=yesterday, help="logical date of the run (default: %(default)s)")
    parser.add_argument(
        "--rows", type=int, default=25, help="open sessions in the file (default: %(default)s)"
    )
    parser.add_argument(
        "--workdir", default=".demo", help="folder for Airflow and the data (default: %(default)s)"
    )
    parser.add_argument(
        "--dags-folder",
        help="folder holding example_wavy_daily.py (default: the one installed with the package)",
    )
    parser.add_argument(
        "--timeout", type=float, default=300, help="seconds to allow the DAG run (default: %(default)s)"
    )
    return parser


def _interrupt(signum: int, frame: object) -> None:
    """Turn SIGTERM into KeyboardInterrupt, so that the same clean-up runs."""
    raise KeyboardInterrupt


def main(argv: Sequence[str] | None = None) -> int:
    """
    Run the demo from the command line; return the exit status.

    :param argv: the arguments (default: ``sys.argv[1:]``).
    """
    args = build_parser().parse_args(argv)
    try:
        dt.date.fromisoformat(args.date)
    except ValueError:
        print(f"error: --date must look like 2026-11-23, got {args.date!r}", file=sys.stderr)
        return 2
    if args.rows < 0:
        print("error: --rows must be 0 or more", file=sys.stderr)
        return 2
    # SIGTERM (a closed terminal, a CI timeout) cleans up like Ctrl-C: Airflow stopped, sandbox stopped.
    signal.signal(signal.SIGTERM, _interrupt)
    try:
        return run_demo(args)
    except DemoError as error:
        print(f"\nerror: {error}", file=sys.stderr)
        return 1
    except KeyboardInterrupt:
        print("\nInterrupted: the sandbox and Airflow were stopped.", file=sys.stderr)
        return 130


if __name__ == "__main__":
    sys.exit(main())
