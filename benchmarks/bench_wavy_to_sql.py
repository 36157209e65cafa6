"""
Benchmark WavyToSqlOperator loading a sessions file into PostgreSQL against ``curl`` + ``psql \\copy``
and pandas.

Sessions files of 1,000,000 and 10,000,000 rows are generated once into ``benchmarks/.data/``
(git-ignored) with the sandbox's generator, served on loopback by nginx (as ``bench_download.py`` does) and
loaded into a throwaway PostgreSQL cluster started here from Debian's binaries (the test suite's
``tests/pg_server.py``). Every load runs in a fresh subprocess against an empty table of the same shape.
Contenders, alternating within each round:

- ``curl+psql`` (the floor): ``curl -sS -o FILE URL`` then ``psql -c "\\copy t (phone, created_at) FROM
  FILE (FORMAT csv, HEADER, DELIMITER ';')"`` into a table whose other columns have defaults; PostgreSQL
  parses the timestamps itself;
- ``operator``: ``WavyToSqlOperator(file_url=URL, table=..., sql_conn_id=...).execute()``: download,
  verification (header, rows, sha256, length), timestamps normalised to UTC, ``COPY ... FROM STDIN`` in one
  transaction with the delete of the same snapshot;
- ``pandas``: ``pandas.read_csv(URL, sep=";", dtype=str)``, ``pandas.to_datetime(..., utc=True)`` and
  ``DataFrame.to_sql(..., if_exists="append")`` through SQLAlchemy and psycopg, as the public script does;
- ``pandas-multi``: the same with ``to_sql(method="multi", chunksize=1000)``.

Reported per contender (medians): wall seconds, rows per second, the client's CPU seconds (user+sys of the
contender's processes), the server's CPU seconds (the postmaster's reaped children, i.e. the backends that
served the load), and the client's peak RSS (``VmHWM``; for curl+psql the larger of the two).

Needs nginx (``apt-get install nginx``), Debian's ``postgresql`` and pandas + SQLAlchemy (the ``bench``
dependency group): ``bash -c 'source scripts/_env.sh; ensure_venv bench 3.3.2 test,distributed,bench'``.

Run: ``.venv/bench/bin/python benchmarks/bench_wavy_to_sql.py [--rows 1000000,10000000] [--repeat 3]
[--pandas-max-rows 1000000]``
"""

from __future__ import annotations

import argparse
import json
import os
import resource
import statistics
import subprocess
import sys
import tempfile
import time
from pathlib import Path
from typing import Any

HERE = Path(__file__).resolve().parent
ROOT = HERE.parent
DATA = HERE / ".data"
sys.path.insert(0, str(ROOT))

from benchmarks.bench_download import Nginx, peak_rss_mib  # noqa: E402

CONTENDERS = ("curl+psql", "operator", "pandas", "pandas-multi")
TABLE = "bench_sessions"
#: The operator's table, with defaults for the columns the file does not carry (curl+psql fills only
#: phone and created_at); pandas writes the same two columns.
TABLE_DDL = f"""
DROP TABLE IF EXISTS {TABLE};
CREATE TABLE {TABLE} (
    customer_id text NOT NULL DEFAULT '1001',
    sub_account_id text,
    list_type text NOT NULL DEFAULT 'OPEN_SESSIONS',
    snapshot_at timestamptz NOT NULL DEFAULT '2026-11-23T00:00:00Z',
    phone text NOT NULL,
    created_at timestamptz,
    extra jsonb
);
CREATE INDEX ON {TABLE} (customer_id, sub_account_id, list_type, snapshot_at);
"""


def ensure_file(rows: int) -> Path:
    """Generate (once) a sessions CSV of ``rows`` rows with the sandbox's generator."""
    from airflow_provider_wavy.sandbox import Scenario, iter_csv_chunks

    path = DATA / f"sessions_{rows}rows.csv"
    if path.exists():
        return path
    DATA.mkdir(parents=True, exist_ok=True)
    print(f"generating {path.name} ...", flush=True)
    partial = path.with_suffix(".partial")
    with partial.open("wb") as out:
        for chunk in iter_csv_chunks("1001", None, Scenario(rows=rows)):
            out.write(chunk)
    partial.replace(path)
    return path


def children_cpu() -> float:
    usage = resource.getrusage(resource.RUSAGE_CHILDREN)
    return usage.ru_utime + usage.ru_stime


def self_cpu() -> float:
    usage = resource.getrusage(resource.RUSAGE_SELF)
    return usage.ru_utime + usage.ru_stime


# -- one load, in a fresh process ----------------------------------------------------------------------------


def load_curl_psql(url: str, dsn: str, scratch: str) -> dict[str, Any]:
    start = time.perf_counter()
    subprocess.run(["curl", "-sS", "-o", scratch, url], check=True)
    copy = f"\\copy {TABLE} (phone, created_at) FROM '{scratch}' (FORMAT csv, HEADER, DELIMITER ';')"
    subprocess.run(["psql", "-X", "-q", "-v", "ON_ERROR_STOP=1", dsn, "-c", copy], check=True)
    seconds = time.perf_counter() - start
    os.unlink(scratch)
    return {
        "seconds": seconds,
        "cpu_seconds": children_cpu(),
        "peak_rss_mib": resource.getrusage(resource.RUSAGE_CHILDREN).ru_maxrss / 1024,
    }


def load_operator(url: str) -> dict[str, Any]:
    # Imported before the clock starts: module imports are not the load.
    from airflow.providers.common.compat.sdk import BaseHook
    from airflow.providers.postgres.hooks.postgres import PostgresHook  # noqa: F401

    import airflow_provider_wavy.csv.counter
    import airflow_provider_wavy.hooks.wavy  # noqa: F401
    from airflow_provider_wavy.transfers.wavy_to_sql import WavyToSqlOperator

    BaseHook.get_connection("wavy_default")
    BaseHook.get_connection("bench_pg")
    operator = WavyToSqlOperator(
        task_id="bench",
        file_url=url,
        table=TABLE,
        sql_conn_id="bench_pg",
        customer_id="1001",
        snapshot_at="2026-11-23T00:00:00Z",
        create_table=False,
    )
    cpu_before = self_cpu()
    start = time.perf_counter()
    summary = operator.execute({"ds": "2026-11-23", "run_id": "bench"})  # type: ignore[arg-type]
    return {
        "seconds": time.perf_counter() - start,
        "cpu_seconds": self_cpu() - cpu_before,
        "peak_rss_mib": peak_rss_mib(),
        "rows": summary["rows"],
    }


def load_pandas(url: str, dsn: str, multi: bool) -> dict[str, Any]:
    import pandas
    import sqlalchemy

    engine = sqlalchemy.create_engine(dsn.replace("postgresql://", "postgresql+psycopg://", 1))
    with engine.connect():
        pass  # connection set up before the clock, as the other contenders' imports are
    cpu_before = self_cpu()
    start = time.perf_counter()
    frame = pandas.read_csv(url, sep=";", dtype=str, keep_default_na=False)
    loaded = pandas.DataFrame(
        {
            "phone": frame["source"],
            "created_at": pandas.to_datetime(frame["session_created_at"], utc=True, format="ISO8601"),
        }
    )
    options: dict[str, Any] = {"method": "multi", "chunksize": 1000} if multi else {}
    loaded.to_sql(TABLE, engine, if_exists="append", index=False, **options)
    return {
        "seconds": time.perf_counter() - start,
        "cpu_seconds": self_cpu() - cpu_before,
        "peak_rss_mib": peak_rss_mib(),
        "rows": len(loaded),
    }


def worker(contender: str, url: str, dsn: str, scratch: str) -> dict[str, Any]:
    if contender == "curl+psql":
        return load_curl_psql(url, dsn, scratch)
    if contender == "operator":
        return load_operator(url)
    if contender in ("pandas", "pandas-multi"):
        return load_pandas(url, dsn, multi=contender == "pandas-multi")
    raise SystemExit(f"unknown contender {contender!r}")


# -- the comparison ------------------------------------------------------------------------------------------


def postmaster_cpu(pid: int) -> float:
    """CPU seconds of the backends the postmaster has reaped (cutime + cstime)."""
    fields = Path(f"/proc/{pid}/stat").read_text().rsplit(")", 1)[1].split()
    return (int(fields[13]) + int(fields[14])) / os.sysconf("SC_CLK_TCK")


def psql(dsn: str, sql: str) -> str:
    done = subprocess.run(
        ["psql", "-X", "-q", "-At", "-v", "ON_ERROR_STOP=1", dsn, "-c", sql],
        capture_output=True,
        text=True,
        check=True,
    )
    return done.stdout.strip()


def run_one(contender: str, url: str, dsn: str, env: dict[str, str], pid: int) -> dict[str, Any]:
    psql(dsn, TABLE_DDL)
    psql(dsn, "CHECKPOINT")  # the previous load's dirty pages are not written during this one
    server_before = postmaster_cpu(pid)
    scratch = str(Path(tempfile.gettempdir()) / "wavy-bench-sql.csv")
    proc = subprocess.run(
        [sys.executable, __file__, "--worker", contender, url, dsn, scratch],
        capture_output=True,
        text=True,
        env=env,
        check=False,
    )
    if proc.returncode != 0:
        raise RuntimeError(f"{contender} failed:\n{proc.stdout[-2000:]}\n{proc.stderr[-4000:]}")
    result: dict[str, Any] = json.loads(proc.stdout.strip().splitlines()[-1])
    result["server_cpu_seconds"] = postmaster_cpu(pid) - server_before
    result["rows_in_table"] = int(psql(dsn, f"SELECT count(*) FROM {TABLE}"))
    return result


def bench_env(nginx_port: int, dsn: str) -> dict[str, str]:
    env = {k: v for k, v in os.environ.items() if not k.startswith("AIRFLOW_CONN_")}
    env.pop("PYTHONDONTWRITEBYTECODE", None)
    env.update(
        {
            "PYTHONPYCACHEPREFIX": str(Path(tempfile.gettempdir()) / "wavy-bench-pycache"),
            "PYTHONWARNINGS": "ignore",
            "AIRFLOW__CORE__LOAD_EXAMPLES": "False",
            "AIRFLOW_HOME": env.get("AIRFLOW_HOME") or tempfile.mkdtemp(prefix="wavy-bench-home-"),
            # The API is not called (file_url given); the connection gives the timeouts.
            "AIRFLOW_CONN_WAVY_DEFAULT": json.dumps(
                {"conn_type": "wavy", "host": f"http://127.0.0.1:{nginx_port}", "login": "b", "password": "b"}
            ),
            "AIRFLOW_CONN_BENCH_PG": dsn,
        }
    )
    return env


def main() -> None:
    parser = argparse.ArgumentParser(
        description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter
    )
    parser.add_argument("--rows", default="1000000,10000000", help="file sizes in rows, comma-separated")
    parser.add_argument("--repeat", type=int, default=3, help="rounds per size (median reported)")
    parser.add_argument("--only", default=",".join(CONTENDERS), help="contenders to run, comma-separated")
    parser.add_argument(
        "--pandas-max-rows",
        type=int,
        default=1_000_000,
        help="pandas runs only on files up to this many rows",
    )
    parser.add_argument(
        "--worker", nargs=4, metavar=("CONTENDER", "URL", "DSN", "SCRATCH"), help=argparse.SUPPRESS
    )
    args = parser.parse_args()
    if args.worker:
        print(json.dumps(worker(*args.worker)))
        return

    # The checkout's tests package (sys.path[0]), not an installed one of that name.
    from tests.pg_server import PgServer  # type: ignore[import-untyped]

    sizes = [int(s) for s in args.rows.split(",")]
    files = {rows: ensure_file(rows) for rows in sizes}
    pg = PgServer().start()
    try:
        dsn = pg.create_database("bench")
        assert pg.dir is not None
        pid = int((pg.dir / "data" / "postmaster.pid").read_text().split()[0])
        with Nginx(DATA) as nginx:
            summary = compare(nginx, dsn, pid, files, args)
    finally:
        pg.stop()
    report(summary, sizes)


def compare(
    nginx: Nginx, dsn: str, pid: int, files: dict[int, Path], args: argparse.Namespace
) -> dict[int, dict[str, dict[str, float]]]:
    """Load every file with every contender, in alternating rounds; return the medians."""
    summary: dict[int, dict[str, dict[str, float]]] = {}
    env = bench_env(nginx.port, dsn)
    contenders = [c for c in CONTENDERS if c in args.only.split(",")]
    for rows, path in files.items():
        url = nginx.url(path)
        runs: dict[str, list[dict[str, Any]]] = {}
        for round_number in range(args.repeat):
            # Interleaved rounds: drift in the machine's load hits every contender alike.
            for contender in contenders:
                if contender.startswith("pandas") and rows > args.pandas_max_rows:
                    continue
                result = run_one(contender, url, dsn, env, pid)
                if result["rows_in_table"] != rows:
                    raise RuntimeError(f"{contender} loaded {result['rows_in_table']:,} of {rows:,} rows")
                runs.setdefault(contender, []).append(result)
                print(
                    f"{rows:,} rows round {round_number + 1}: {contender:13s} "
                    f"{result['seconds']:8.2f} s  CPU {result['cpu_seconds']:7.2f} s  "
                    f"server CPU {result['server_cpu_seconds']:7.2f} s  "
                    f"peak RSS {result['peak_rss_mib']:7.1f} MiB",
                    flush=True,
                )
        summary[rows] = {
            contender: {
                key: statistics.median(r[key] for r in results)
                for key in ("seconds", "cpu_seconds", "server_cpu_seconds", "peak_rss_mib")
            }
            for contender, results in runs.items()
        }
    return summary


def report(summary: dict[int, dict[str, dict[str, float]]], sizes: list[int]) -> None:
    print()
    print(
        "| rows | contender | median s | rows/s | client CPU s | server CPU s | peak RSS MiB "
        "| operator speed ratio (t_ref / t_operator) |"
    )
    print("|---:|---|---:|---:|---:|---:|---:|---:|")
    for rows in sizes:
        results = summary[rows]
        op = results.get("operator")
        for contender, r in results.items():
            shown = f"{r['seconds'] / op['seconds']:.2f}x" if op and contender != "operator" else ""
            print(
                f"| {rows:,} | {contender} | {r['seconds']:.2f} | {rows / r['seconds']:,.0f} "
                f"| {r['cpu_seconds']:.2f} | {r['server_cpu_seconds']:.2f} "
                f"| {r['peak_rss_mib']:.1f} | {shown} |"
            )
    print()
    for rows in sizes:
        results = summary[rows]
        if "operator" not in results:
            continue
        op_seconds = results["operator"]["seconds"]
        for reference, target in (("curl+psql", 0.7), ("pandas", 10.0), ("pandas-multi", 10.0)):
            if reference in results:
                ratio = results[reference]["seconds"] / op_seconds
                verdict = "met" if ratio >= target else "NOT met"
                print(f"{rows:,} rows: operator vs {reference} {ratio:.2f}x (target >= {target}x: {verdict})")
    if len(sizes) >= 2 and all("operator" in summary[s] for s in sizes):
        small, large = min(sizes), max(sizes)
        growth = summary[large]["operator"]["peak_rss_mib"] - summary[small]["operator"]["peak_rss_mib"]
        verdict = "met" if growth <= 16 else "NOT met"
        print(
            f"operator peak RSS {large:,} rows minus {small:,} rows: {growth:+.1f} MiB "
            f"(target <= 16 MiB: {verdict})"
        )


if __name__ == "__main__":
    main()
