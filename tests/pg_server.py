"""
A throwaway PostgreSQL on loopback for tests: initdb in a temporary folder, a free port, its socket there too.

The session fixture ``pg_server`` (registered in tests/conftest.py) starts one server for the whole run and
stops it at the end; each user makes its own database with :meth:`PgServer.create_database`. When the
machine has no PostgreSQL the fixture skips, naming the Debian package, except under ``CI=true`` where it
fails (:func:`skip_or_fail`, the rule the distributed test follows too).
"""

from __future__ import annotations

import contextlib
import glob
import os
import shutil
import signal
import socket
import subprocess
import tempfile
import time
from pathlib import Path
from typing import TYPE_CHECKING

import pytest

if TYPE_CHECKING:
    from collections.abc import Iterator

#: The Debian package that brings ``initdb`` and ``postgres``.
PG_PACKAGE = "postgresql"


def free_port() -> int:
    """Return a TCP port free on loopback right now."""
    with socket.socket(socket.AF_INET, socket.SOCK_STREAM) as sock:
        sock.bind(("127.0.0.1", 0))
        return int(sock.getsockname()[1])


def postgres_bin() -> Path | None:
    """Return the directory of Debian's PostgreSQL server programs (the newest), or None."""
    found = sorted(glob.glob("/usr/lib/postgresql/*/bin/initdb"), key=lambda p: int(p.split("/")[4]))
    return Path(found[-1]).parent if found else None


def skip_or_fail(message: str) -> None:
    """Skip the test for a missing requirement; under ``CI=true`` fail instead (CI must run everything)."""
    if os.environ.get("CI") == "true":
        pytest.fail(message)
    pytest.skip(message)


class PgServer:
    """
    One PostgreSQL cluster owned by a test run: superuser ``user`` (trust authentication), TCP on loopback.

    As root, the cluster belongs to Debian's ``postgres`` user (initdb refuses root), in a folder it can
    reach. :meth:`start` returns once the server accepts connections; :meth:`stop` never raises.

    :param user: the superuser's name.
    :param max_connections: the server's ``max_connections``.
    """

    host = "127.0.0.1"

    def __init__(self, *, user: str = "airflow", max_connections: int = 100) -> None:
        self.user = user
        self.max_connections = max_connections
        self.port = 0
        self.dir: Path | None = None
        self._bin = postgres_bin()
        self._process: subprocess.Popen[bytes] | None = None

    @property
    def log(self) -> Path:
        """The server's output."""
        assert self.dir is not None
        return self.dir / "postgres.log"

    def start(self, timeout: float = 120) -> PgServer:
        """Create the cluster, start the server, wait until it answers (bounded)."""
        self.launch()
        self.wait_ready(timeout)
        return self

    def launch(self) -> None:
        """Create the cluster and start the server without waiting for it (see :meth:`wait_ready`)."""
        assert self._bin is not None, f"no PostgreSQL here (Debian package {PG_PACKAGE})"
        os_user = "postgres" if os.geteuid() == 0 else None
        self.dir = Path(tempfile.mkdtemp(prefix="wavy-pg-"))
        if os_user:
            shutil.chown(self.dir, os_user)
        data = self.dir / "data"
        init = subprocess.run(
            [str(self._bin / "initdb"), "-D", str(data), "-U", self.user, "--auth=trust", "-E", "UTF8"],
            capture_output=True, text=True, timeout=180, check=False, user=os_user, cwd=self.dir,
        )  # fmt: skip
        assert init.returncode == 0, f"initdb failed:\n{init.stdout[-2000:]}{init.stderr[-2000:]}"
        self.port = free_port()
        argv = [
            str(self._bin / "postgres"), "-D", str(data), "-h", self.host, "-p", str(self.port),
            "-k", str(self.dir), "-c", "fsync=off", "-c", "synchronous_commit=off",
            "-c", "full_page_writes=off", "-c", f"max_connections={self.max_connections}",
        ]  # fmt: skip
        env = {"PATH": os.environ.get("PATH", ""), "LANG": "C.UTF-8"}
        with self.log.open("ab") as out:
            self._process = subprocess.Popen(
                argv, env=env, cwd=self.dir, stdout=out, stderr=subprocess.STDOUT,
                stdin=subprocess.DEVNULL, start_new_session=True, user=os_user,
            )  # fmt: skip

    def wait_ready(self, timeout: float = 120) -> None:
        """Return once the launched server accepts connections (bounded)."""
        deadline = time.monotonic() + timeout
        while time.monotonic() < deadline:
            ready = self._run("pg_isready", "-d", "postgres")
            if ready.returncode == 0:
                return
            assert self.alive(), f"PostgreSQL exited:\n{self.tail()}"
            time.sleep(0.2)
        raise AssertionError(f"PostgreSQL did not accept connections within {timeout:.0f} s:\n{self.tail()}")

    def _run(self, program: str, *args: str) -> subprocess.CompletedProcess[str]:
        assert self._bin is not None
        base = ["-h", self.host, "-p", str(self.port), "-U", self.user]
        return subprocess.run(
            [str(self._bin / program), *base, *args], capture_output=True, text=True, timeout=60, check=False
        )

    def create_database(self, name: str) -> str:
        """Create a database (kept if it exists); return its ``postgresql://`` URI."""
        created = self._run("createdb", name)
        assert created.returncode == 0 or "already exists" in created.stderr, created.stderr
        return self.uri(name)

    def uri(self, database: str) -> str:
        """Return the URI of a database, as an Airflow ``postgres`` connection takes it."""
        return f"postgresql://{self.user}@{self.host}:{self.port}/{database}"

    def alive(self) -> bool:
        """Whether the server process is still running."""
        return self._process is not None and self._process.poll() is None

    def tail(self, lines: int = 40) -> str:
        """The end of the server's output, for failure messages."""
        text = self.log.read_text(errors="replace") if self.dir and self.log.exists() else ""
        return "---- postgres ----\n" + "\n".join(text.splitlines()[-lines:])

    def stop(self) -> None:
        """Stop the server (fast shutdown, then SIGKILL, bounded) and remove its folder; never raises."""
        process = self._process
        if process is not None and process.poll() is None:
            with contextlib.suppress(ProcessLookupError):
                os.killpg(process.pid, signal.SIGINT)  # PostgreSQL's "fast" shutdown
            try:
                process.wait(timeout=20)
            except subprocess.TimeoutExpired:
                with contextlib.suppress(ProcessLookupError):
                    os.killpg(process.pid, signal.SIGKILL)
                with contextlib.suppress(subprocess.TimeoutExpired):
                    process.wait(timeout=10)
        if self.dir is not None:
            shutil.rmtree(self.dir, ignore_errors=True)


@pytest.fixture(scope="session")
def pg_server() -> Iterator[PgServer]:
    """Start one throwaway PostgreSQL for the session (skip without one, fail under CI=true)."""
    if postgres_bin() is None:
        skip_or_fail(
            f"no PostgreSQL server here: install the Debian package {PG_PACKAGE} "
            "(/usr/lib/postgresql/*/bin/initdb)"
        )
    server = PgServer()
    try:
        yield server.start()
    finally:
        server.stop()


__all__ = ["PG_PACKAGE", "PgServer", "free_port", "pg_server", "postgres_bin", "skip_or_fail"]
