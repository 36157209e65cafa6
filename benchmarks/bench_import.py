"""
Measure what importing the provider's operator and sensor modules costs on top of ``airflow.sdk``.

Each sample is a fresh interpreter that imports the base (``airflow.sdk`` on Airflow 3, ``airflow`` on 2),
then times the import of the modules under test. The reference is the official HTTP provider's operator
and sensor modules, measured the same way in the same run; samples alternate between the two.

Run: ``.venv/af3/bin/python benchmarks/bench_import.py [--repeat 30]``
"""

from __future__ import annotations

import argparse
import importlib.util
import os
import statistics
import subprocess
import sys
import tempfile

OURS = ("airflow_provider_wavy.operators.wavy", "airflow_provider_wavy.sensors.wavy")
PYCACHE = os.path.join(tempfile.gettempdir(), "wavy-bench-pycache")
THEIRS = ("airflow.providers.http.operators.http", "airflow.providers.http.sensors.http")

PROBE = """
import sys, time, warnings
warnings.simplefilter("ignore")
import {base}
# What the base already pulls in is not the modules' cost.
start = time.perf_counter()
{imports}
elapsed = time.perf_counter() - start
print(elapsed * 1000, len(sys.modules))
"""


def base_module() -> str:
    from importlib.metadata import version

    return "airflow.sdk" if int(version("apache-airflow").split(".")[0]) >= 3 else "airflow"


def sample(modules: tuple[str, ...], base: str) -> tuple[float, int]:
    code = PROBE.format(base=base, imports="\n".join(f"import {m}" for m in modules))
    env = {**os.environ, "PYTHONWARNINGS": "ignore", "AIRFLOW__CORE__LOAD_EXAMPLES": "False"}
    # Byte-code cached (privately), as in any deployment: otherwise every sample compiles every module.
    env.pop("PYTHONDONTWRITEBYTECODE", None)
    env["PYTHONPYCACHEPREFIX"] = PYCACHE
    out = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, check=True, env=env)
    millis, count = out.stdout.split()[-2:]
    return float(millis), int(count)


def main() -> None:
    parser = argparse.ArgumentParser(
        description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter
    )
    parser.add_argument("--repeat", type=int, default=30, help="fresh interpreters per contender")
    args = parser.parse_args()
    base = base_module()
    ours = tuple(m for m in OURS if importlib.util.find_spec(m) is not None)
    missing = sorted(set(OURS) - set(ours))
    if missing:
        print(f"note: {', '.join(missing)} not found: measuring {', '.join(ours)} only")
    results: dict[str, list[tuple[float, int]]] = {"wavy": [], "http": []}
    sample(ours, base), sample(THEIRS, base)  # warm the byte-code cache
    baseline = [sample((), base) for _ in range(3)]
    for _ in range(args.repeat):
        results["wavy"].append(sample(ours, base))
        results["http"].append(sample(THEIRS, base))
    base_modules = statistics.median(c for _, c in baseline)
    print(f"base: import {base} ({base_modules:.0f} modules); {args.repeat} fresh interpreters each, median")
    print("| modules | median ms | min ms | modules added |")
    print("|---|---:|---:|---:|")
    medians = {}
    for name, modules in (("wavy", ours), ("http", THEIRS)):
        times = [t for t, _ in results[name]]
        added = statistics.median(c for _, c in results[name]) - base_modules
        medians[name] = statistics.median(times)
        print(f"| {', '.join(modules)} | {medians[name]:.1f} | {min(times):.1f} | {added:.0f} |")
    ratio = medians["wavy"] / medians["http"]
    print(f"\nwavy / http = {ratio:.2f} (target <= 0.50: {'met' if ratio <= 0.5 else 'NOT met'})")


if __name__ == "__main__":
    main()
