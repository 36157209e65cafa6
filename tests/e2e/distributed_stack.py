"""
A distributed Airflow on loopback, started and stopped by a test: PostgreSQL, Redis, moto, the control plane
(api-server, scheduler, dag-processor, triggerer) and Celery workers that each see their own private disk.

Each worker runs in its own mount and PID namespace (``unshare``): a private tmpfs over its data directory
(also its ``TMPDIR``) stands for its machine's local disk, invisible to the other worker, and killing the
namespace's first process ends every process of that "machine" at once, task processes included.
"""

from __future__ import annotations

import contextlib
import glob
import os
import secrets
import shutil
import signal
import socket
import subprocess
import time
from dataclasses import dataclass, field
from pathlib import Path

from tests.e2e.airflow_runner import BIN_DIR
from tests.pg_server import PgServer, free_port, postgres_bin

#: What the distributed test needs from the machine, and the Debian package that brings it.
NEEDS = {"initdb": "postgresql", "redis-server": "redis-server", "unshare": "util-linux"}


def missing_requirements() -> list[str]:
    """Name what is missing to run the distributed stack here (empty when everything is there)."""
    missing = []
    if postgres_bin() is None:
        missing.append("postgresql (Debian package: /usr/lib/postgresql/*/bin/initdb)")
    for program in ("redis-server", "unshare"):
        if shutil.which(program) is None:
            missing.append(f"{program} (Debian package {NEEDS[program]})")
    if os.geteuid() != 0:
        missing.append("root (mount namespaces with a private tmpfs per worker)")
    elif not missing:
        probe = subprocess.run(
            ["unshare", "--mount", "--propagation", "private", "sh", "-c", "mount -t tmpfs probe /mnt"],
            capture_output=True,
            text=True,
            timeout=30,
            check=False,
        )
        if probe.returncode != 0:
            missing.append(f"mount namespaces (unshare --mount failed: {probe.stderr.strip()[:200]})")
    return missing


def _descendants(pid: int) -> list[int]:
    """Return every live descendant of a process (from /proc), deepest last."""
    children: dict[int, list[int]] = {}
    for stat in glob.glob("/proc/[0-9]*/stat"):
        with contextlib.suppress(OSError, ValueError, IndexError):
            text = Path(stat).read_text()
            ppid = int(text.rpartition(")")[2].split()[1])
            children.setdefault(ppid, []).append(int(stat.split("/")[2]))
    found, todo = [], [pid]
    while todo:
        for child in children.get(todo.pop(), []):
            found.append(child)
            todo.append(child)
    return found


@dataclass
class Proc:
    """One started server or Airflow component, in its own process group, its output in a file."""

    name: str
    argv: list[str]
    env: dict[str, str]
    cwd: Path
    log: Path
    user: str | None = None
    process: subprocess.Popen[bytes] | None = None
    starts: int = 0

    def start(self) -> Proc:
        """Start (or restart) it; its output is appended to its log file."""
        self.starts += 1
        with self.log.open("ab") as out:
            out.write(f"\n==== start {self.starts} ====\n".encode())
            out.flush()
            self.process = subprocess.Popen(
                self.argv,
                env=self.env,
                cwd=self.cwd,
                stdout=out,
                stderr=subprocess.STDOUT,
                stdin=subprocess.DEVNULL,
                start_new_session=True,
                user=self.user,
            )
        return self

    def alive(self) -> bool:
        """Whether the process is still running."""
        return self.process is not None and self.process.poll() is None

    def kill9(self) -> int:
        """SIGKILL it and every process under it at once (a machine lost); return how many were killed."""
        assert self.process is not None
        victims = [self.process.pid, *_descendants(self.process.pid)]
        for pid in victims:
            with contextlib.suppress(ProcessLookupError):
                os.kill(pid, signal.SIGKILL)
        self.process.wait(timeout=30)
        return len(victims)

    def stop(self) -> None:
        """SIGTERM its group, then SIGKILL whatever is left of it (bounded); never raises."""
        process = self.process
        if process is None or process.poll() is not None:
            return
        with contextlib.suppress(ProcessLookupError):
            os.killpg(process.pid, signal.SIGTERM)
        with contextlib.suppress(subprocess.TimeoutExpired):
            process.wait(timeout=20)
        rest = _descendants(process.pid)
        with contextlib.suppress(ProcessLookupError):
            os.killpg(process.pid, signal.SIGKILL)
        for pid in rest:
            with contextlib.suppress(ProcessLookupError):
                os.kill(pid, signal.SIGKILL)
        with contextlib.suppress(subprocess.TimeoutExpired):
            process.wait(timeout=10)

    def tail(self, lines: int = 40) -> str:
        """The end of its output, for failure messages."""
        text = self.log.read_text(errors="replace") if self.log.exists() else ""
        return f"---- {self.name} ----\n" + "\n".join(text.splitlines()[-lines:])


@dataclass
class Servers:
    """The throwaway PostgreSQL and Redis, and the moto S3 server, all on loopback."""

    base: Path
    procs: list[Proc] = field(default_factory=list)
    redis_port: int = 0
    s3_port: int = 0
    pg: PgServer = field(default_factory=lambda: PgServer(user="airflow", max_connections=300))

    @property
    def pg_port(self) -> int:
        """PostgreSQL's port."""
        return self.pg.port

    @property
    def sql_alchemy_conn(self) -> str:
        """The metadata database's URL."""
        return f"postgresql+psycopg2://airflow@127.0.0.1:{self.pg_port}/airflow"

    @property
    def s3_endpoint(self) -> str:
        """The moto server's URL."""
        return f"http://127.0.0.1:{self.s3_port}"

    def start(self) -> None:
        """Start the three servers and wait until each answers (bounded)."""
        self.pg.launch()
        self.redis_port = free_port()
        redis_dir = self.base / "redis"
        redis_dir.mkdir()
        self._spawn(
            "redis",
            ["redis-server", "--bind", "127.0.0.1", "--port", str(self.redis_port), "--save", "",
             "--appendonly", "no", "--dir", str(redis_dir)],
        )  # fmt: skip
        self.s3_port = free_port()
        self._spawn("moto", [str(BIN_DIR / "moto_server"), "-H", "127.0.0.1", "-p", str(self.s3_port)])
        for port in (self.redis_port, self.s3_port):
            _wait_port(port, self.procs)
        self.pg.wait_ready()
        self.pg.create_database("airflow")

    def _spawn(self, name: str, argv: list[str], user: str | None = None, cwd: Path | None = None) -> None:
        env = {"PATH": os.environ.get("PATH", ""), "LANG": "C.UTF-8"}
        self.procs.append(Proc(name, argv, env, cwd or self.base, self.base / f"{name}.log", user).start())

    def stop(self) -> None:
        """Stop every server (bounded); remove PostgreSQL's folder."""
        for proc in reversed(self.procs):
            proc.stop()
        self.pg.stop()


def _wait_port(port: int, procs: list[Proc], timeout: float = 60) -> None:
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        with contextlib.suppress(OSError), socket.create_connection(("127.0.0.1", port), timeout=1):
            return
        assert all(proc.alive() for proc in procs), "\n".join(p.tail() for p in procs)
        time.sleep(0.2)
    raise AssertionError(f"nothing listens on 127.0.0.1:{port} after {timeout:.0f} s")


def airflow_env(
    servers: Servers, home: Path, dags: Path, api_url: str, extra: dict[str, str]
) -> dict[str, str]:
    """
    Return the environment shared by every Airflow process, with ``home`` as its own ``AIRFLOW_HOME``.

    The settings that must agree on every machine are here once: the database, the broker, the secrets that
    sign and check task tokens, the dags folder, the Execution API's URL and the heartbeat timings.
    """
    env = {k: v for k, v in os.environ.items() if not k.startswith(("AIRFLOW_", "AIRFLOW__"))}
    env.update(
        {
            "AIRFLOW_HOME": str(home),
            "AIRFLOW__CORE__DAGS_FOLDER": str(dags),
            "AIRFLOW__CORE__LOAD_EXAMPLES": "False",
            "AIRFLOW__CORE__EXECUTOR": "CeleryExecutor",
            "AIRFLOW__DATABASE__SQL_ALCHEMY_CONN": servers.sql_alchemy_conn,
            "AIRFLOW__CELERY__BROKER_URL": f"redis://127.0.0.1:{servers.redis_port}/0",
            "AIRFLOW__CELERY__RESULT_BACKEND": "db+" + servers.sql_alchemy_conn.replace("+psycopg2", ""),
            "AIRFLOW__CELERY__WORKER_CONCURRENCY": "1",
            "AIRFLOW__SCHEDULER__USE_JOB_SCHEDULE": "False",
            "AIRFLOW__API__HOST": "127.0.0.1",
            "AIRFLOW__API__PORT": api_url.rpartition(":")[2],
            "AIRFLOW__API__BASE_URL": api_url,
            "AIRFLOW__CORE__EXECUTION_API_SERVER_URL": f"{api_url}/execution/",
            # A lost worker is noticed after the task heartbeat timeout: seconds here, 5 minutes by default.
            "AIRFLOW__SCHEDULER__TASK_INSTANCE_HEARTBEAT_TIMEOUT": "15",
            "AIRFLOW__SCHEDULER__TASK_INSTANCE_HEARTBEAT_TIMEOUT_DETECTION_INTERVAL": "2",
            "AIRFLOW__SCHEDULER__TASK_INSTANCE_HEARTBEAT_SEC": "2",
            "AIRFLOW__WORKERS__MIN_HEARTBEAT_INTERVAL": "2",
            # A killed triggerer's triggers go to a live one once it misses this many seconds of heartbeats.
            "AIRFLOW__TRIGGERER__JOB_HEARTBEAT_SEC": "2",
            "AIRFLOW__TRIGGERER__TRIGGERER_HEALTH_CHECK_THRESHOLD": "10",
            "AIRFLOW__DAG_PROCESSOR__REFRESH_INTERVAL": "5",
            "PATH": f"{BIN_DIR}{os.pathsep}{os.environ.get('PATH', '')}",
            "PYTHONWARNINGS": "ignore",
        }
    )
    env.update(extra)
    return env


def shared_secrets() -> dict[str, str]:
    """Fresh secrets that every process must share (task tokens signed by one are checked by another)."""
    from cryptography.fernet import Fernet

    return {
        "AIRFLOW__CORE__FERNET_KEY": Fernet.generate_key().decode(),
        "AIRFLOW__API_AUTH__JWT_SECRET": secrets.token_urlsafe(32),
        "AIRFLOW__API__SECRET_KEY": secrets.token_urlsafe(32),
    }


def worker_argv(name: str, private: Path) -> list[str]:
    """
    Return the command of one Celery worker in its own mount and PID namespaces.

    :param name: the worker's Celery name.
    :param private: its local data folder: a tmpfs only this worker sees (and its ``TMPDIR``).
    """
    script = 'mount -t tmpfs -o size=1g "wavy-$1" "$2" && shift 2 && exec "$@"'
    return [
        "unshare", "--mount", "--propagation", "private", "--pid", "--fork", "--mount-proc",
        "sh", "-c", script, "sh", name, str(private),
        str(BIN_DIR / "airflow"), "celery", "worker", "--celery-hostname", f"{name}@%h",
        "--concurrency", "1", "--skip-serve-logs", "--without-mingle", "--without-gossip",
    ]  # fmt: skip
