"""
Run the Wavy sandbox from the command line: ``python -m airflow_provider_wavy.sandbox --help``.

It serves until SIGINT or SIGTERM, then exits 0.
"""

from __future__ import annotations

import argparse
import contextlib
import json
import logging
import os
import shlex
import signal
import sys
import threading
from typing import TYPE_CHECKING, Any

from airflow_provider_wavy import CONN_FIELDS, HOOK_NAME, UI_FIELD_BEHAVIOUR
from airflow_provider_wavy.sandbox.lists import LIST_TYPES
from airflow_provider_wavy.sandbox.scenario import Scenario
from airflow_provider_wavy.sandbox.server import (
    DEFAULT_CUSTOMER_ID,
    DEFAULT_TOKEN,
    DEFAULT_USERNAME,
    WavySandbox,
)

if TYPE_CHECKING:
    from collections.abc import Sequence
    from types import FrameType


def build_parser() -> argparse.ArgumentParser:
    """Return the command-line parser."""
    parser = argparse.ArgumentParser(
        prog="python -m airflow_provider_wavy.sandbox",
        description="Run a local emulator of the Wavy sessions and lists API (and its CDN) until Ctrl-C.",
    )
    parser.add_argument(
        "--host", default="127.0.0.1", help="interface for both origins (default: %(default)s)"
    )
    parser.add_argument(
        "--port", type=int, default=8765, help="API port, 0 = any free port (default: %(default)s)"
    )
    parser.add_argument(
        "--cdn-port", type=int, default=8766, help="CDN port, 0 = any free port (default: %(default)s)"
    )
    parser.add_argument(
        "--username", default=DEFAULT_USERNAME, help="accepted UserName (default: %(default)s)"
    )
    parser.add_argument(
        "--token", default=DEFAULT_TOKEN, help="accepted authenticationToken (default: %(default)s)"
    )
    parser.add_argument(
        "--customer-id",
        default=DEFAULT_CUSTOMER_ID,
        help="customer id in the printed connection (default: %(default)s)",
    )
    parser.add_argument("--rows", type=int, help="data rows per file (default: 25)")
    parser.add_argument(
        "--ready-after", type=int, help="calls answered 'nothing yet' before the file URL (default: 0)"
    )
    parser.add_argument("--delimiter", choices=[";", ","], metavar="{;|,}", help="CSV delimiter (default: ;)")
    parser.add_argument(
        "--scenario-json",
        metavar="JSON",
        help='any other scenario knobs as a JSON object, e.g. \'{"rate_limited_calls": 2, "gzip": true}\'',
    )
    parser.add_argument(
        "--print-env-file",
        metavar="PATH",
        help="once listening, write WAVY_SANDBOX_BASE_URL=... and AIRFLOW_CONN_WAVY_DEFAULT=... lines "
        "to PATH (shell-quoted; removed again on exit)",
    )
    parser.add_argument("-v", "--verbose", action="store_true", help="log every request on stderr")
    return parser


def scenario_from_args(args: argparse.Namespace) -> Scenario:
    """
    Build the scenario from ``--scenario-json`` and the dedicated flags (which win).

    :param args: Parsed arguments.
    """
    knobs: dict[str, Any] = {}
    if args.scenario_json:
        try:
            knobs = json.loads(args.scenario_json)
        except json.JSONDecodeError as error:
            raise ValueError(f"--scenario-json is not valid JSON: {error}") from None
        if not isinstance(knobs, dict):
            raise ValueError("--scenario-json must be a JSON object of scenario knobs")
    for flag in ("rows", "ready_after", "delimiter"):
        if getattr(args, flag) is not None:
            knobs[flag] = getattr(args, flag)
    return Scenario.from_dict(knobs)


def write_env_file(path: str, env: dict[str, str]) -> None:
    """
    Write shell-quoted ``NAME=value`` lines atomically: a script polling for the file never reads half of it.

    :param path: Destination file.
    :param env: Variables to write.
    """
    temporary = f"{path}.{os.getpid()}.tmp"
    with open(temporary, "w", encoding="utf-8") as handle:
        handle.writelines(f"{name}={shlex.quote(value)}\n" for name, value in env.items())
    os.replace(temporary, path)


def form_values(sandbox: WavySandbox) -> list[tuple[str, str]]:
    """
    Return what to type into Airflow's connection form for this sandbox, field label by field label.

    The labels are the form's own (``UI_FIELD_BEHAVIOUR`` and ``CONN_FIELDS``), with Airflow's field name
    beside each relabelled one, so that they match on every Airflow version.

    :param sandbox: The running sandbox.
    """
    labels = UI_FIELD_BEHAVIOUR["relabeling"]
    return [
        ("Connection Id", "wavy_default"),
        ("Connection Type", HOOK_NAME),
        (f"{labels['host']} (Host)", sandbox.base_url),
        (f"{labels['login']} (Login)", sandbox.username),
        (f"{labels['password']} (Password)", sandbox.token),
        (CONN_FIELDS["customer_id"]["label"], sandbox.customer_id),
    ]


def banner(sandbox: WavySandbox) -> str:
    """
    Return the friendly block printed at start-up.

    :param sandbox: The running sandbox.
    """
    curl = (
        f"curl -H {shlex.quote('UserName: ' + sandbox.username)} "
        f"-H {shlex.quote('authenticationToken: ' + sandbox.token)} "
        f"{shlex.quote(sandbox.base_url + '/v1/session?customerId=' + sandbox.customer_id)}"
    )
    return "\n".join(
        [
            "Wavy sandbox running (Ctrl-C to stop)",
            f"  API base URL: {sandbox.base_url}",
            f"  CDN URL:      {sandbox.cdn_url}",
            f"  Try:          {curl}",
            "  Lists (same headers as the session call):",
            *(f"    {list_type:<10} {sandbox.list_url(list_type)}" for list_type in LIST_TYPES),
            "",
            "Point Airflow at it:",
            f"  export AIRFLOW_CONN_WAVY_DEFAULT={shlex.quote(sandbox.connection_json())}",
            "or add the connection in the UI (Admin > Connections > Add), leaving the other fields empty:",
            *(f"  {label + ':':<36} {value}" for label, value in form_values(sandbox)),
        ]
    )


def _serve(sandbox: WavySandbox, args: argparse.Namespace, stop: threading.Event) -> bool:
    """
    Start the sandbox, print the banner and serve until ``stop`` is set; return False if it cannot listen.

    :param sandbox: The sandbox to run.
    :param args: Parsed arguments.
    :param stop: Set by the signal handler.
    """
    try:
        sandbox.start()
    except OSError as error:
        print(
            f"Cannot listen on {args.host} (ports {args.port}, {args.cdn_port}): {error}. "
            "Pick other ports, or --port 0 --cdn-port 0 for free ones.",
            file=sys.stderr,
        )
        return False
    print(banner(sandbox), flush=True)
    if args.print_env_file:
        write_env_file(args.print_env_file, sandbox.env())
    # A timeout keeps the main thread responsive to signals on every platform.
    while not stop.wait(0.5):
        pass
    return True


def main(argv: Sequence[str] | None = None) -> int:
    """
    Run the sandbox until SIGINT or SIGTERM; return the exit status.

    :param argv: Arguments (default: ``sys.argv[1:]``).
    """
    parser = build_parser()
    args = parser.parse_args(argv)
    try:
        scenario = scenario_from_args(args)
    except (TypeError, ValueError) as error:
        parser.error(str(error))
    logging.basicConfig(
        level=logging.DEBUG if args.verbose else logging.WARNING, format="%(asctime)s %(message)s"
    )
    sandbox = WavySandbox(
        args.username,
        args.token,
        scenario=scenario,
        customer_id=args.customer_id,
        host=args.host,
        port=args.port,
        cdn_port=args.cdn_port,
    )
    stop = threading.Event()

    def on_signal(signum: int, frame: FrameType | None) -> None:
        stop.set()

    previous = {sig: signal.signal(sig, on_signal) for sig in (signal.SIGINT, signal.SIGTERM)}
    try:
        if not _serve(sandbox, args, stop):
            return 1
    finally:
        sandbox.stop()
        if args.print_env_file:
            with contextlib.suppress(FileNotFoundError):
                os.remove(args.print_env_file)
        for sig, handler in previous.items():
            signal.signal(sig, handler)
    print("Wavy sandbox stopped.", flush=True)
    return 0


if __name__ == "__main__":
    sys.exit(main())
