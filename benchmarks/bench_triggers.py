"""
Hold many deferred sensors in one event loop, as a triggerer does: memory per trigger and event-loop stalls.

Runs N concurrent ``WavyOpenSessionsTrigger.run()`` against a "never ready" Wavy sandbox, then N of the
HTTP provider's ``HttpSensorTrigger`` (polling a URL that answers 404, i.e. "not yet") the same way, each
kind in a fresh child process so that neither profits from the other's warm caches. The sandbox runs in a
process of its own so that its threads do not compete with the measured event loop.

Measured per kind:

- the worst lateness of a ticker coroutine sleeping 5 ms (event-loop stall), over the whole run and after
  the first second (start-up: every trigger reads its connection and opens its first request at once);
- peak RSS growth while the triggers run (sampled every 50 ms), divided by N;
- in a second child with ``tracemalloc`` (which slows the loop, so stalls are not taken from it), the peak
  of traced Python allocations, divided by N.

Usage::

    python benchmarks/bench_triggers.py                 # 1,000 triggers, 15 s each kind
    python benchmarks/bench_triggers.py -n 200 -s 8     # quicker
"""

from __future__ import annotations

import argparse
import asyncio
import gc
import json
import os
import shlex
import subprocess
import sys
import tempfile
import time
from pathlib import Path
from typing import Any

REPO_ROOT = Path(__file__).resolve().parents[1]
TICK = 0.005
KINDS = ("wavy", "http", "sleep")
TARGET_KIB = 100.0
TARGET_STALL_MS = 50.0


def rss_bytes() -> int:
    """Return this process's resident set size (Linux ``/proc``)."""
    with open("/proc/self/statm", encoding="ascii") as handle:
        return int(handle.read().split()[1]) * os.sysconf("SC_PAGE_SIZE")


def make_trigger(kind: str, poke_interval: float) -> Any:
    """Build one trigger of the given kind, polling every ``poke_interval`` seconds."""
    if kind == "sleep":
        from airflow.triggers.base import BaseTrigger

        class SleepOnlyTrigger(BaseTrigger):
            """The control: a deferred sensor that never does any I/O, it only sleeps between 'polls'."""

            def __init__(self) -> None:
                super().__init__()  # type: ignore[no-untyped-call]  # BaseTrigger.__init__ is untyped

            def serialize(self) -> tuple[str, dict[str, Any]]:
                return "SleepOnlyTrigger", {}

            async def run(self) -> Any:
                while True:
                    await asyncio.sleep(poke_interval)
                yield  # pragma: no cover - makes run() an async generator, as the triggerer expects

        return SleepOnlyTrigger()
    if kind == "wavy":
        from airflow_provider_wavy.triggers.wavy import WavyOpenSessionsTrigger

        return WavyOpenSessionsTrigger(poke_interval=poke_interval, deadline=time.time() + 3600)
    from airflow.providers.http.triggers.http import HttpSensorTrigger

    return HttpSensorTrigger(endpoint="not-ready-yet", method="GET", poke_interval=poke_interval)


async def drive(trigger: Any) -> None:
    """Run a trigger like the triggerer does; an event before the end means the set-up is wrong."""
    async for event in trigger.run():
        raise RuntimeError(f"{type(trigger).__name__} fired unexpectedly: {event.payload!r}")


async def measure(
    kind: str, count: int, seconds: float, poke_interval: float, *, trace: bool, freeze: bool
) -> dict[str, Any]:
    """Run ``count`` triggers for ``seconds`` and return the measurements."""
    import tracemalloc

    loop = asyncio.get_running_loop()
    stalls: list[tuple[float, float]] = []
    rss_peak = 0
    stop = asyncio.Event()

    async def ticker() -> None:
        while not stop.is_set():
            before = loop.time()
            await asyncio.sleep(TICK)
            stalls.append((before, loop.time() - before - TICK))

    async def sampler() -> None:
        nonlocal rss_peak
        while not stop.is_set():
            rss_peak = max(rss_peak, rss_bytes())
            await asyncio.sleep(0.05)

    # Warm up as a running triggerer would be: modules imported, secrets backends and TLS set up. One
    # trigger of the kind runs for a moment first, for both kinds alike.
    warm_up = asyncio.create_task(drive(make_trigger(kind, poke_interval)))
    await asyncio.sleep(1.0)
    warm_up.cancel()
    await asyncio.gather(warm_up, return_exceptions=True)
    gc.collect()
    await asyncio.sleep(0.2)
    started = loop.time()  # set again when the triggers start
    gc_pauses: list[float] = []
    gc_at: list[float] = []
    gc_started = [0.0]

    def on_gc(phase: str, info: dict[str, int]) -> None:
        if phase == "start":
            gc_started[0] = time.perf_counter()
        elif info["generation"] == 2:
            gc_pauses.append(time.perf_counter() - gc_started[0])
            gc_at.append(loop.time() - started)

    gc.callbacks.append(on_gc)
    if freeze:
        # Importing Airflow leaves ~160,000 objects the collector tracks: without this, each full pass scans
        # them all and stalls the loop for about 100 ms on this machine, whatever the triggers do.
        gc.freeze()
    if trace:
        tracemalloc.start()
    traced_base = tracemalloc.get_traced_memory()[0] if trace else 0
    rss_base = rss_bytes()
    started = loop.time()
    helpers = [asyncio.create_task(ticker()), asyncio.create_task(sampler())]
    tasks = [asyncio.create_task(drive(make_trigger(kind, poke_interval))) for _ in range(count)]
    await asyncio.sleep(seconds)
    measured_until = loop.time()
    failed = [task for task in tasks if task.done() and task.exception() is not None]
    traced_peak = tracemalloc.get_traced_memory()[1] if trace else 0
    for task in tasks:
        task.cancel()
    await asyncio.gather(*tasks, return_exceptions=True)
    stop.set()
    await asyncio.gather(*helpers)
    if trace:
        tracemalloc.stop()
    gc.callbacks.remove(on_gc)
    # Cancelling a thousand tasks at once is the benchmark's doing, not the triggers'.
    stalls = [(at, lateness) for at, lateness in stalls if at + TICK + lateness <= measured_until]
    after_start = [lateness for at, lateness in stalls if at - started > 1.0]
    return {
        "kind": kind,
        "count": count,
        "seconds": seconds,
        "failed": len(failed),
        "first_error": repr(failed[0].exception())[:300] if failed else None,
        "worst_stall_ms": max((lateness for _, lateness in stalls), default=0.0) * 1000,
        "worst_stall_after_start_ms": max(after_start, default=0.0) * 1000,
        "p99_stall_ms": sorted(lateness for _, lateness in stalls)[int(len(stalls) * 0.99)] * 1000
        if stalls
        else 0.0,
        "worst_stalls": sorted(
            ((round(at - started, 2), round(lateness * 1000, 1)) for at, lateness in stalls),
            key=lambda item: -item[1],
        )[:5],
        "full_gc_pauses_ms": [round(pause * 1000, 1) for pause in gc_pauses],
        "full_gc_at_s": [round(at, 2) for at in gc_at],
        "tracked_objects": len(gc.get_objects()),
        "gc_frozen": freeze,
        "rss_kib_per_trigger": max(0, rss_peak - rss_base) / 1024 / count,
        "traced_kib_per_trigger": (traced_peak - traced_base) / 1024 / count if trace else None,
    }


def start_sandbox(folder: Path) -> tuple[subprocess.Popen[bytes], dict[str, str]]:
    """Start a never-ready sandbox in its own process; return it and its environment variables."""
    env_file = folder / "sandbox.env"
    process = subprocess.Popen(
        [
            sys.executable,
            "-m",
            "airflow_provider_wavy.sandbox",
            "--port",
            "0",
            "--cdn-port",
            "0",
            "--ready-after",
            str(10**9),
            "--print-env-file",
            str(env_file),
        ],
        cwd=REPO_ROOT,
        stdout=subprocess.DEVNULL,
    )
    deadline = time.monotonic() + 30
    while not env_file.exists():
        if process.poll() is not None or time.monotonic() > deadline:
            process.kill()
            raise RuntimeError("the sandbox did not start")
        time.sleep(0.05)
    env: dict[str, str] = {}
    for line in env_file.read_text().splitlines():
        name, _, value = line.partition("=")
        env[name] = shlex.split(value)[0]
    return process, env


def run_child(
    kind: str, args: argparse.Namespace, env: dict[str, str], *, trace: bool = False, freeze: bool = False
) -> dict[str, Any]:
    """Measure one kind in a fresh interpreter."""
    command = [
        sys.executable,
        __file__,
        "--child",
        kind,
        "-n",
        str(args.count),
        "-s",
        str(args.seconds),
        "--poke-interval",
        str(args.poke_interval),
    ]
    if trace:
        command.append("--trace")
    if freeze:
        command.append("--gc-freeze")
    result = subprocess.run(command, env=env, capture_output=True, text=True, check=False, cwd=REPO_ROOT)
    lines = [line for line in result.stdout.splitlines() if line.startswith("{")]
    if result.returncode != 0 or not lines:
        raise RuntimeError(f"the {kind} child failed:\n{result.stdout[-2000:]}\n{result.stderr[-3000:]}")
    measured: dict[str, Any] = json.loads(lines[-1])
    return measured


def main() -> int:
    """Run the benchmark (or, with ``--child``, one measurement)."""
    parser = argparse.ArgumentParser(
        description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter
    )
    parser.add_argument("-n", "--count", type=int, default=1000, help="concurrent triggers (default 1000)")
    parser.add_argument("-s", "--seconds", type=float, default=15.0, help="seconds per kind (default 15)")
    parser.add_argument("--poke-interval", type=float, default=5.0, help="seconds between polls (default 5)")
    parser.add_argument("--child", choices=KINDS, help=argparse.SUPPRESS)
    parser.add_argument("--trace", action="store_true", help=argparse.SUPPRESS)
    parser.add_argument("--gc-freeze", action="store_true", help=argparse.SUPPRESS)
    args = parser.parse_args()

    if args.child:
        measured = asyncio.run(
            measure(
                args.child,
                args.count,
                args.seconds,
                args.poke_interval,
                trace=args.trace,
                freeze=args.gc_freeze,
            )
        )
        print(json.dumps(measured))
        return 0

    with tempfile.TemporaryDirectory(prefix="bench-triggers-") as folder:
        sandbox, sandbox_env = start_sandbox(Path(folder))
        try:
            base_url = sandbox_env["WAVY_SANDBOX_BASE_URL"]
            env = {
                **os.environ,
                "AIRFLOW_HOME": folder,
                "AIRFLOW__CORE__LOAD_EXAMPLES": "False",
                "AIRFLOW__LOGGING__LOGGING_LEVEL": "WARNING",
                "PYTHONWARNINGS": "ignore",
                "AIRFLOW_CONN_WAVY_DEFAULT": sandbox_env["AIRFLOW_CONN_WAVY_DEFAULT"],
                # The sandbox answers 404 off its API path: for HttpSensorTrigger, "not there yet".
                "AIRFLOW_CONN_HTTP_DEFAULT": json.dumps({"conn_type": "http", "host": base_url}),
            }
            results: dict[str, dict[str, Any]] = {}
            for kind in KINDS:
                print(f"measuring {kind}: {args.count} triggers for {args.seconds:g} s ...", flush=True)
                results[kind] = run_child(kind, args, env)
                frozen = run_child(kind, args, env, freeze=True)
                results[kind]["frozen_worst_stall_ms"] = frozen["worst_stall_ms"]
                results[kind]["frozen_worst_stalls"] = frozen["worst_stalls"]
                traced = run_child(kind, args, env, trace=True)
                results[kind]["traced_kib_per_trigger"] = traced["traced_kib_per_trigger"]
        finally:
            sandbox.terminate()
            sandbox.wait(10)

    print()
    print(
        f"{args.count} concurrent triggers, {args.seconds:g} s, poke_interval {args.poke_interval:g} s, "
        f"Python {sys.version.split()[0]}"
    )
    print(
        "| trigger | RSS KiB/trigger | traced KiB/trigger | worst stall ms | worst stall ms, gc.freeze() "
        "| full GC pauses ms | failed |"
    )
    print("|---|---:|---:|---:|---:|---|---:|")
    names = {
        "wavy": "WavyOpenSessionsTrigger",
        "http": "HttpSensorTrigger (http provider)",
        "sleep": "control: a trigger that only sleeps",
    }
    for kind in KINDS:
        r = results[kind]
        print(
            f"| {names[kind]} | {r['rss_kib_per_trigger']:.1f} | {r['traced_kib_per_trigger']:.1f} | "
            f"{r['worst_stall_ms']:.0f} | {r['frozen_worst_stall_ms']:.0f} | "
            f"{', '.join(f'{pause:.0f}' for pause in r['full_gc_pauses_ms']) or '-'} | {r['failed']} |"
        )
    print()
    for kind in KINDS:
        print(f"{kind}: five worst stalls (s into the run, ms): {results[kind]['worst_stalls']}")
        print(f"{kind}: the same with gc.freeze(): {results[kind]['frozen_worst_stalls']}")
        print(
            f"{kind}: full collections at (s into the run): {results[kind]['full_gc_at_s']}, "
            f"{results[kind]['tracked_objects']:,} objects tracked by the collector at the end"
        )
    ours, theirs = results["wavy"], results["http"]
    print()
    for key, label in (
        ("rss_kib_per_trigger", "RSS per trigger"),
        ("traced_kib_per_trigger", "traced memory per trigger"),
        ("worst_stall_ms", "worst stall"),
        ("frozen_worst_stall_ms", "worst stall with gc.freeze()"),
    ):
        ratio = ours[key] / theirs[key] if theirs[key] else float("inf")
        print(f"{label}: Wavy / HttpSensorTrigger = {ratio:.2f}")
    for r in results.values():
        if r["first_error"]:
            print(f"{r['kind']}: {r['failed']} triggers failed, first: {r['first_error']}")
    checks = {
        f"memory <= {TARGET_KIB:g} KiB/trigger": ours["rss_kib_per_trigger"] <= TARGET_KIB
        and ours["traced_kib_per_trigger"] <= TARGET_KIB,
        "memory no worse than HttpSensorTrigger": ours["rss_kib_per_trigger"]
        <= theirs["rss_kib_per_trigger"],
        f"worst stall <= {TARGET_STALL_MS:g} ms": ours["worst_stall_ms"] <= TARGET_STALL_MS,
        f"worst stall <= {TARGET_STALL_MS:g} ms with gc.freeze()": ours["frozen_worst_stall_ms"]
        <= TARGET_STALL_MS,
        "worst stall no worse than HttpSensorTrigger": ours["worst_stall_ms"] <= theirs["worst_stall_ms"],
        "no trigger failed": ours["failed"] == 0,
    }
    for label, met in checks.items():
        print(f"{'met    ' if met else 'NOT met'}  {label}")
    if not checks[f"worst stall <= {TARGET_STALL_MS:g} ms"] and ours["full_gc_pauses_ms"]:
        print(
            f"         (the longest full GC pass of this run took {max(ours['full_gc_pauses_ms']):.0f} ms: "
            "the interpreter scanning Airflow's own objects, whatever the triggers do)"
        )
    return 0


if __name__ == "__main__":
    sys.exit(main())
