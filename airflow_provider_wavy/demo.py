"""
The first thing to run: the daily example DAG in a real Airflow, against the local Wavy sandbox.

``python -m airflow_provider_wavy.demo`` (or ``scripts/demo.sh``, which also sets up the environment) starts
the sandbox, creates a private Airflow home under ``.demo/``, points ``wavy_default`` at the sandbox, runs
``airflow dags test example_wavy_daily`` and shows where the CSV landed, its row count and its first rows.
Airflow's own output goes to ``.demo/airflow.log`` and is shown only when something fails.
"""

from __future__ import annotations

import argparse
import csv
import datetime as dt
import io
import shutil
import signal
import sys
import time
from pathlib import Path
from typing import TYPE_CHECKING, Any

from airflow_provider_wavy._demo_airflow import (
    DAG_ID,
    DemoError,
    DemoPaths,
    airflow_env,
    failure_watch,
    installed_airflow_version,
    log_tail,
    read_task_states,
    run_airflow,
    shown,
)

if TYPE_CHECKING:
    from collections.abc import Sequence

DAG_FILE = "example_wavy_daily.py"
#: Where the wheel carries the daily example (pyproject's force-include): a pip install has no checkout.
PACKAGED_DAGS = Path(__file__).resolve().parent / "_demo"
SHOWN_ROWS = 5


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
        code = run_airflow(args, env, paths.log, **kwargs)
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
        raise DemoError(f"Expected one CSV under {shown(folder)}, found {len(files)}.{log_tail(paths.log)}")
    header, first_rows, count = _read_csv(files[0])
    print()
    print(f"CSV:   {shown(files[0])}")
    print(f"Rows:  {count} open session(s), {files[0].stat().st_size:,} bytes")
    print(f"First {len(first_rows)} row(s):")
    print(_table(header, first_rows))
    print()
    print(f"Airflow's output: {shown(paths.log)}. Next: point wavy_default at Wavy (README, Example DAGs).")


def run_demo(args: argparse.Namespace) -> int:
    """
    Run the demo; return the exit status.

    :param args: the parsed command line.
    """
    from airflow_provider_wavy.sandbox import Scenario, WavySandbox

    airflow_version = installed_airflow_version()
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
        env = airflow_env(paths, dags_folder, {"AIRFLOW_CONN_WAVY_DEFAULT": sandbox.connection_json()})
        label = f"1/2 Creating a private Airflow home in {shown(paths.airflow_home)}"
        if _step(label, ["db", "migrate"], env, paths, timeout=300) != 0:
            raise DemoError(f"`airflow db migrate` failed.{log_tail(paths.log)}")
        label = f"2/2 Running {DAG_ID} for {args.date}"
        command = ["dags", "test", DAG_ID, args.date]
        code = _step(label, command, env, paths, timeout=args.timeout, watch=failure_watch(paths))
        run_state, task_states = read_task_states(paths)
        if code != 0 or run_state != "success":
            not_ok = sorted(f"{task}: {state}" for task, state in task_states.items() if state != "success")
            raise DemoError(
                f"The DAG run ended {run_state or 'without a run'} (exit code {code})"
                f"{'; ' + ', '.join(not_ok) if not_ok else ''}.{log_tail(paths.log)}"
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
