"""
Benchmark WavyOpenSessionsOperator's download (verification on) against curl and plain ``requests``.

Sessions files of 100 MiB and 1 GiB are generated once into ``benchmarks/.data/`` (git-ignored) and served
on loopback by nginx, started here with a temporary configuration. Every download runs in a fresh
subprocess, so that each peak RSS is that run's own (read from ``/proc/self/status`` ``VmHWM`` for Python
contenders, from ``getrusage(RUSAGE_CHILDREN)`` of a one-shot wrapper for curl). Contenders, in the same run:

- ``curl``: ``curl -sS -o FILE URL``;
- ``requests-loop``: a bare ``requests`` streaming loop (``iter_content(1 MiB)``) writing the same file;
- ``requests-naive``: ``requests.get(url).content`` then one write;
- ``http-hook``: the official HTTP provider, ``HttpHook.run(extra_options={"stream": True})`` + iter_content;
- ``operator``: ``WavyOpenSessionsOperator(file_url=..., destination=FILE).execute()``, verifying the CSV,
  counting rows and hashing (sha256) while it streams, then renaming into place (NumPy installed, as with
  the ``numpy`` extra);
- ``operator-no-numpy``: the same as a plain install runs it, rows counted by the pure-Python scans;
- ``operator-bytearray``: the operator with plain ``bytearray`` buffers instead of huge-page mappings.

Times cover the transfer only (interpreter and Airflow imports excluded), except curl's, which includes
its process start (a few milliseconds). nginx is not installed by this script: ``apt-get install nginx``.

Run: ``.venv/af3/bin/python benchmarks/bench_download.py [--sizes 100,1024] [--repeat 3]``
"""

from __future__ import annotations

import argparse
import json
import os
import resource
import shutil
import socket
import statistics
import subprocess
import sys
import tempfile
import time
from pathlib import Path
from typing import Any

HERE = Path(__file__).resolve().parent
DATA = HERE / ".data"
CONTENDERS = (
    "curl",
    "requests-loop",
    "requests-naive",
    "http-hook",
    "operator",
    "operator-no-numpy",
    "operator-bytearray",
)
CHUNK = 1024 * 1024

NGINX_CONF = """
worker_processes 1;
{user}
pid {tmp}/nginx.pid;
error_log {tmp}/error.log warn;
events {{ worker_connections 1024; }}
http {{
    access_log off;
    sendfile on;
    tcp_nopush on;
    default_type text/csv;
    client_body_temp_path {tmp}/body;
    proxy_temp_path {tmp}/proxy;
    fastcgi_temp_path {tmp}/fastcgi;
    uwsgi_temp_path {tmp}/uwsgi;
    scgi_temp_path {tmp}/scgi;
    server {{
        listen 127.0.0.1:{port};
        root {root};
    }}
}}
"""


# -- data and server ----------------------------------------------------------------------------------------


def ensure_file(size_mib: int) -> Path:
    """Generate (once) a sessions CSV of about ``size_mib`` MiB with the sandbox's generator."""
    from airflow_provider_wavy.sandbox import Scenario, csv_size, iter_csv_chunks

    path = DATA / f"sessions_{size_mib}mib.csv"
    if path.exists():
        return path
    DATA.mkdir(parents=True, exist_ok=True)
    per_row = csv_size("1001", None, Scenario(rows=1000)) / 1000
    rows = int(size_mib * 2**20 / per_row)
    print(f"generating {path.name} ({rows:,} rows) ...", flush=True)
    partial = path.with_suffix(".partial")
    with partial.open("wb") as out:
        for chunk in iter_csv_chunks("1001", None, Scenario(rows=rows)):
            out.write(chunk)
    partial.replace(path)
    return path


def free_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return int(sock.getsockname()[1])


class Nginx:
    """nginx on 127.0.0.1 serving ``root``, with a throw-away configuration and prefix."""

    def __init__(self, root: Path) -> None:
        binary = shutil.which("nginx") or next(
            (p for p in ("/usr/sbin/nginx", "/usr/local/sbin/nginx") if os.path.exists(p)), None
        )
        if binary is None:
            sys.exit(
                "nginx is not installed. On Debian/Ubuntu: sudo apt-get update && "
                "sudo apt-get install -y nginx "
                "(this script starts its own instance on 127.0.0.1; the system service is not needed)."
            )
        self.binary = binary
        self.root = root
        self.tmp = Path(tempfile.mkdtemp(prefix="wavy-bench-nginx-"))
        self.port = free_port()
        self.process: subprocess.Popen[bytes] | None = None

    def __enter__(self) -> Nginx:
        user = "user root;" if os.geteuid() == 0 else ""  # workers must read files under /root or /work
        conf = self.tmp / "nginx.conf"
        conf.write_text(NGINX_CONF.format(user=user, tmp=self.tmp, port=self.port, root=self.root))
        self.process = subprocess.Popen(
            [self.binary, "-p", str(self.tmp), "-c", str(conf), "-g", "daemon off;"],
            stdout=subprocess.DEVNULL,
            stderr=subprocess.PIPE,
        )
        deadline = time.monotonic() + 10
        while time.monotonic() < deadline:
            try:
                socket.create_connection(("127.0.0.1", self.port), timeout=0.2).close()
                return self
            except OSError:
                if self.process.poll() is not None:
                    err = self.process.stderr.read().decode() if self.process.stderr else ""
                    sys.exit(f"nginx failed to start: {err}")
                time.sleep(0.05)
        sys.exit("nginx did not listen within 10 s")

    def __exit__(self, *exc: object) -> None:
        if self.process is not None:
            self.process.terminate()
            self.process.wait(timeout=10)
        shutil.rmtree(self.tmp, ignore_errors=True)

    def url(self, path: Path) -> str:
        return f"http://127.0.0.1:{self.port}/{path.name}"


# -- one download, in a fresh process -----------------------------------------------------------------------


def peak_rss_mib() -> float:
    with open("/proc/self/status") as status:
        for line in status:
            if line.startswith("VmHWM:"):
                return int(line.split()[1]) / 1024
    return resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024


def cpu_now() -> float:
    usage = resource.getrusage(resource.RUSAGE_SELF)
    return usage.ru_utime + usage.ru_stime


def worker(contender: str, url: str, out: str) -> dict[str, Any]:
    """Run one download in this process and return its time and peak RSS."""
    if contender == "curl":
        start = time.perf_counter()
        subprocess.run(["curl", "-sS", "-o", out, url], check=True)
        seconds = time.perf_counter() - start
        usage = resource.getrusage(resource.RUSAGE_CHILDREN)
        return {
            "seconds": seconds,
            "cpu_seconds": usage.ru_utime + usage.ru_stime,
            "peak_rss_mib": usage.ru_maxrss / 1024,
        }
    import requests

    if contender == "requests-loop":
        cpu_before = cpu_now()
        start = time.perf_counter()
        with requests.get(url, stream=True, timeout=60) as response, open(out, "wb") as file:
            response.raise_for_status()
            for chunk in response.iter_content(CHUNK):
                file.write(chunk)
        result: dict[str, Any] = {}
    elif contender == "requests-naive":
        cpu_before = cpu_now()
        start = time.perf_counter()
        data = requests.get(url, timeout=60).content
        with open(out, "wb") as file:
            file.write(data)
        del data
        result = {}
    elif contender == "http-hook":
        from airflow.providers.common.compat.sdk import BaseHook
        from airflow.providers.http.hooks.http import HttpHook

        hook = HttpHook(method="GET", http_conn_id="bench_http")
        # Airflow imports its connection-lookup modules on the first lookup: warmed for both hooks alike.
        BaseHook.get_connection("bench_http")
        cpu_before = cpu_now()
        start = time.perf_counter()
        response = hook.run(endpoint=url.rsplit("/", 1)[1], extra_options={"stream": True})
        with response, open(out, "wb") as file:
            for chunk in response.iter_content(CHUNK):
                file.write(chunk)
        result = {}
    elif contender in ("operator", "operator-no-numpy", "operator-bytearray"):
        # Imported before the clock starts, as HttpHook is above: module imports are not the transfer.
        # That includes NumPy, which the checker otherwise imports at the first large chunk.
        import airflow_provider_wavy.csv.counter
        import airflow_provider_wavy.hooks.wavy
        from airflow_provider_wavy.operators.wavy import WavyOpenSessionsOperator

        if contender == "operator-bytearray":
            # The same download with plain zero-filled buffers instead of huge-page mappings.
            import airflow_provider_wavy.pipeline

            airflow_provider_wavy.pipeline.anonymous_buffer = bytearray  # type: ignore[assignment]
        if contender != "operator-no-numpy":
            assert airflow_provider_wavy.csv.counter.vector_module() is not None, "NumPy is not installed"
        else:
            airflow_provider_wavy.csv.counter.vector_module = lambda: None  # type: ignore[assignment]
        # Airflow imports its connection-lookup modules on the first lookup: warmed for both hooks alike.
        from airflow.providers.common.compat.sdk import BaseHook

        BaseHook.get_connection("wavy_default")

        operator = WavyOpenSessionsOperator(task_id="bench", file_url=url, destination=out)
        cpu_before = cpu_now()
        start = time.perf_counter()
        summary = operator.execute({"ds": "2026-11-23", "run_id": "bench"})  # type: ignore[arg-type]
        result = {"rows": summary["rows"], "sha256": summary["sha256"]}
    else:
        raise SystemExit(f"unknown contender {contender!r}")
    seconds = time.perf_counter() - start
    usage = resource.getrusage(resource.RUSAGE_SELF)
    cpu = usage.ru_utime + usage.ru_stime - cpu_before
    return {"seconds": seconds, "cpu_seconds": cpu, "peak_rss_mib": peak_rss_mib(), **result}


def run_worker(contender: str, url: str, out: Path, env: dict[str, str]) -> dict[str, Any]:
    out.unlink(missing_ok=True)
    proc = subprocess.run(
        [sys.executable, __file__, "--worker", contender, url, str(out)],
        capture_output=True,
        text=True,
        env=env,
        check=False,
    )
    if proc.returncode != 0:
        raise RuntimeError(f"{contender} failed:\n{proc.stdout[-2000:]}\n{proc.stderr[-4000:]}")
    result: dict[str, Any] = json.loads(proc.stdout.strip().splitlines()[-1])
    result["bytes_ok"] = out.stat().st_size
    out.unlink(missing_ok=True)
    return result


# -- the comparison -----------------------------------------------------------------------------------------


def main() -> None:
    parser = argparse.ArgumentParser(
        description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter
    )
    parser.add_argument("--sizes", default="100,1024", help="file sizes in MiB, comma-separated")
    parser.add_argument("--repeat", type=int, default=3, help="rounds per size (median reported)")
    parser.add_argument("--only", default=",".join(CONTENDERS), help="contenders to run, comma-separated")
    parser.add_argument(
        "--out-dir",
        default="/dev/shm/wavy-bench-out" if os.path.isdir("/dev/shm") else str(DATA / "out"),
        help="where every contender writes (the same place for all); tmpfs by default, so that the disk's "
        "writeback of one run does not land on the next contender",
    )
    parser.add_argument("--worker", nargs=3, metavar=("CONTENDER", "URL", "OUT"), help=argparse.SUPPRESS)
    args = parser.parse_args()
    if args.worker:
        print(json.dumps(worker(*args.worker)))
        return

    sizes = [int(s) for s in args.sizes.split(",")]
    contenders = [c for c in CONTENDERS if c in args.only.split(",")]
    files = {size: ensure_file(size) for size in sizes}
    out_dir = Path(args.out_dir)
    out_dir.mkdir(parents=True, exist_ok=True)
    print(f"writing to {out_dir}", flush=True)
    summary: dict[int, dict[str, dict[str, float]]] = {}
    with Nginx(DATA) as nginx:
        env = {k: v for k, v in os.environ.items() if not k.startswith("AIRFLOW_CONN_")}
        # Byte-compiled modules cached privately, so that no contender compiles its imports on every run.
        env.pop("PYTHONDONTWRITEBYTECODE", None)
        env["PYTHONPYCACHEPREFIX"] = str(Path(tempfile.gettempdir()) / "wavy-bench-pycache")
        env.update(
            {
                "PYTHONWARNINGS": "ignore",
                "AIRFLOW__CORE__LOAD_EXAMPLES": "False",
                "AIRFLOW_HOME": env.get("AIRFLOW_HOME") or tempfile.mkdtemp(prefix="wavy-bench-home-"),
                # The operator reads timeouts from a wavy connection; the API is not called (file_url given).
                "AIRFLOW_CONN_WAVY_DEFAULT": json.dumps(
                    {"conn_type": "wavy", "host": "http://127.0.0.1:9", "login": "bench", "password": "bench"}
                ),
                "AIRFLOW_CONN_BENCH_HTTP": json.dumps(
                    {"conn_type": "http", "host": "127.0.0.1", "port": nginx.port, "schema": "http"}
                ),
            }
        )
        for size in sizes:
            path = files[size]
            url = nginx.url(path)
            expected = path.stat().st_size
            runs: dict[str, list[dict[str, Any]]] = {c: [] for c in contenders}
            for round_number in range(args.repeat):
                # Interleaved rounds: drift in the machine's load hits every contender alike.
                for contender in contenders:
                    result = run_worker(contender, url, out_dir / f"{contender}.csv", env)
                    if result["bytes_ok"] != expected:
                        raise RuntimeError(f"{contender} wrote {result['bytes_ok']} of {expected} bytes")
                    runs[contender].append(result)
                    print(
                        f"{size} MiB round {round_number + 1}: {contender:15s} {result['seconds']:7.3f} s  "
                        f"CPU {result.get('cpu_seconds', 0):6.2f} s  "
                        f"peak RSS {result['peak_rss_mib']:7.1f} MiB",
                        flush=True,
                    )
            summary[size] = {
                c: {
                    "seconds": statistics.median(r["seconds"] for r in rs),
                    "peak_rss_mib": statistics.median(r["peak_rss_mib"] for r in rs),
                    "cpu_seconds": statistics.median(r["cpu_seconds"] for r in rs),
                    "min_seconds": min(r["seconds"] for r in rs),
                    "mib_s": expected / 2**20 / statistics.median(r["seconds"] for r in rs),
                }
                for c, rs in runs.items()
            }
    report(summary, sizes)


def report(summary: dict[int, dict[str, dict[str, float]]], sizes: list[int]) -> None:
    print()
    print(
        "| file | contender | median s | min s | MiB/s (median) | CPU s (user+sys) | peak RSS MiB "
        "| operator speed ratio (t_ref / t_operator, medians) |"
    )
    print("|---|---|---:|---:|---:|---:|---:|---:|")
    for size in sizes:
        results = summary[size]
        op = results.get("operator")
        for contender, r in results.items():
            shown = f"{r['seconds'] / op['seconds']:.2f}x" if op and contender != "operator" else ""
            print(
                f"| {size} MiB | {contender} | {r['seconds']:.3f} | {r['min_seconds']:.3f} "
                f"| {r['mib_s']:.0f} | {r['cpu_seconds']:.2f} | {r['peak_rss_mib']:.1f} | {shown} |"
            )
    print()
    for size in sizes:
        results = summary[size]
        for name in ("operator", "operator-no-numpy"):
            if name not in results:
                continue
            op_seconds = results[name]["seconds"]
            if "curl" in results:
                ratio = results["curl"]["seconds"] / op_seconds
                verdict = "met" if ratio >= 1.0 else "NOT met"
                print(f"{size} MiB: {name} vs curl throughput {ratio:.2f}x (target >= 1.0x: {verdict})")
            if "requests-loop" in results:
                ratio = results["requests-loop"]["seconds"] / op_seconds
                verdict = "met" if ratio >= 0.7 else "NOT met"
                print(f"{size} MiB: {name} vs bare requests loop {ratio:.2f}x (target >= 0.7x: {verdict})")
    if len(sizes) >= 2 and all("operator" in summary[s] for s in sizes):
        small, large = min(sizes), max(sizes)
        growth = summary[large]["operator"]["peak_rss_mib"] - summary[small]["operator"]["peak_rss_mib"]
        verdict = "met" if growth <= 16 else "NOT met"
        print(
            f"operator peak RSS {large} MiB minus {small} MiB: {growth:+.1f} MiB "
            f"(target <= 16 MiB: {verdict})"
        )


if __name__ == "__main__":
    main()
