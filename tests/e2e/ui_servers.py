"""
A real Airflow web UI and a real browser for tests/e2e/test_ui_browser.py.

Airflow 3: ``airflow standalone`` (SQLite) with the simple auth manager letting everyone in as admin.
Airflow 2.11: ``airflow webserver`` (SQLite) with an admin user created by ``airflow users create``.
The browser is Debian's Chromium driven by Playwright (``playwright install`` is never needed).
"""

from __future__ import annotations

import contextlib
import os
import signal
import socket
import subprocess
import time
from dataclasses import dataclass
from pathlib import Path
from typing import TYPE_CHECKING, Any

import httpx
import pytest

from tests.e2e.airflow_runner import AIRFLOW, BIN_DIR, airflow_major

if TYPE_CHECKING:
    from collections.abc import Iterator

CHROMIUM = Path("/usr/bin/chromium")
#: Checked with the 3.3.2 React UI and the 2.11.2 FAB UI (/work notes): no GPU, no network but loopback.
CHROMIUM_FLAGS = [
    "--headless",
    "--no-sandbox",
    "--disable-gpu",
    "--disable-quic",
    "--no-first-run",
    "--disable-background-networking",
    "--disable-component-update",
    "--disable-sync",
]
STARTUP_TIMEOUT = 240.0
ADMIN_USER = "admin"
ADMIN_PASSWORD = "admin-ui-test"
ADMIN_NAMES = ["-f", "Ada", "-l", "Admin", "-e", "admin@example.com"]


def require_browser() -> None:
    """Skip (fail under CI=true) when Chromium or Playwright is missing, naming what to install."""
    missing = []
    if not CHROMIUM.exists():
        missing.append(
            "the Debian package `chromium` (apt-get install chromium; scripts/test.sh does it as root)"
        )
    try:
        import playwright.sync_api  # noqa: F401
    except ImportError:
        missing.append("the Python package `playwright` (the `test` dependency group)")
    if missing:
        message = "the browser test needs " + " and ".join(missing)
        if os.environ.get("CI") == "true":
            pytest.fail(message)
        pytest.skip(message)


def free_port() -> int:
    """Return a TCP port free on loopback right now."""
    with socket.socket(socket.AF_INET, socket.SOCK_STREAM) as sock:
        sock.bind(("127.0.0.1", 0))
        return int(sock.getsockname()[1])


@dataclass
class WebUI:
    """A running Airflow web UI: its base URL, its output log and how long it took to answer."""

    url: str
    log: Path
    startup_seconds: float

    def tail(self, lines: int = 40) -> str:
        """Return the end of the server's output, for failure messages."""
        text = self.log.read_text(errors="replace") if self.log.exists() else ""
        return "\n".join(text.splitlines()[-lines:])


def _env(home: Path, port: int) -> dict[str, str]:
    env = {k: v for k, v in os.environ.items() if not k.startswith(("AIRFLOW_", "AIRFLOW__"))}
    env.update(
        {
            "AIRFLOW_HOME": str(home),
            "AIRFLOW__CORE__LOAD_EXAMPLES": "False",
            "AIRFLOW__CORE__DAGS_FOLDER": str(home / "dags"),
            "AIRFLOW__DATABASE__SQL_ALCHEMY_CONN": f"sqlite:///{home / 'airflow.db'}",
            # The Test button is off by default (a security choice of Airflow's).
            "AIRFLOW__CORE__TEST_CONNECTION": "Enabled",
            # Never the fixed default ports: other Airflow processes may run on this machine.
            "AIRFLOW__LOGGING__WORKER_LOG_SERVER_PORT": str(free_port()),
            "AIRFLOW__LOGGING__TRIGGER_LOG_SERVER_PORT": str(free_port()),
            "PATH": f"{BIN_DIR}{os.pathsep}{os.environ.get('PATH', '')}",
            "PYTHONWARNINGS": "ignore",
        }
    )
    if airflow_major() >= 3:
        url = f"http://127.0.0.1:{port}"
        env.update(
            {
                "AIRFLOW__CORE__AUTH_MANAGER": (
                    "airflow.api_fastapi.auth.managers.simple.simple_auth_manager.SimpleAuthManager"
                ),
                "AIRFLOW__CORE__SIMPLE_AUTH_MANAGER_ALL_ADMINS": "True",
                "AIRFLOW__API__HOST": "127.0.0.1",
                "AIRFLOW__API__PORT": str(port),
                "AIRFLOW__API__BASE_URL": url,
                "AIRFLOW__CORE__EXECUTION_API_SERVER_URL": f"{url}/execution/",
            }
        )
    return env


def _run(args: list[str], env: dict[str, str], home: Path) -> None:
    result = subprocess.run(
        [AIRFLOW, *args], env=env, cwd=home, capture_output=True, text=True, timeout=180, check=False
    )
    assert result.returncode == 0, f"airflow {' '.join(args)}: {result.stdout[-1500:]}{result.stderr[-1500:]}"


def _stop_group(process: subprocess.Popen[bytes]) -> None:
    """Stop the server and every process it started (they share its process group), bounded."""
    if process.poll() is None:
        with contextlib.suppress(ProcessLookupError):
            os.killpg(process.pid, signal.SIGTERM)
        with contextlib.suppress(subprocess.TimeoutExpired):
            process.wait(timeout=20)
    # Whatever is left of the group (uvicorn or gunicorn workers) goes now.
    with contextlib.suppress(ProcessLookupError):
        os.killpg(process.pid, signal.SIGKILL)
    process.wait(timeout=10)


def _wait_answering(ui: WebUI, process: subprocess.Popen[bytes], probe: str) -> None:
    deadline = time.monotonic() + STARTUP_TIMEOUT
    last = "no answer"
    with httpx.Client(timeout=5) as client:
        while time.monotonic() < deadline:
            if process.poll() is not None:
                pytest.fail(f"the Airflow web server exited with {process.returncode}:\n{ui.tail()}")
            try:
                response = client.get(f"{ui.url}{probe}")
            except httpx.HTTPError as error:
                last = str(error)
            else:
                if response.status_code == 200:
                    return
                last = f"{response.status_code} {response.text[:200]}"
            time.sleep(0.5)
    pytest.fail(f"the Airflow web server did not answer in {STARTUP_TIMEOUT:.0f}s ({last}):\n{ui.tail()}")


@contextlib.contextmanager
def running_web_ui(home: Path) -> Iterator[WebUI]:
    """Start this venv's Airflow web UI on a free loopback port; stop it (its whole group) afterwards."""
    major = airflow_major()
    port = free_port()
    env = _env(home, port)
    (home / "dags").mkdir(parents=True, exist_ok=True)
    started = time.monotonic()
    _run(["db", "migrate"], env, home)
    if major >= 3:
        # What a new user runs: `airflow standalone` (API server with the UI, scheduler, DAG processor,
        # triggerer), on the port and auth manager set in the environment.
        command = [AIRFLOW, "standalone"]
        probe = "/api/v2/version"
    else:
        _run(
            ["users", "create", "-u", ADMIN_USER, "-p", ADMIN_PASSWORD, "-r", "Admin", *ADMIN_NAMES],
            env,
            home,
        )
        command = [AIRFLOW, "webserver", "-H", "127.0.0.1", "-p", str(port), "-w", "1"]
        probe = "/health"
    ui = WebUI(url=f"http://127.0.0.1:{port}", log=home / "web.log", startup_seconds=0.0)
    with ui.log.open("wb") as out:
        process = subprocess.Popen(
            command,
            env=env,
            cwd=home,
            stdout=out,
            stderr=subprocess.STDOUT,
            stdin=subprocess.DEVNULL,
            start_new_session=True,  # its own process group: one killpg stops every part it starts
        )
    try:
        _wait_answering(ui, process, probe)
        ui.startup_seconds = time.monotonic() - started
        yield ui
    finally:
        _stop_group(process)


@contextlib.contextmanager
def browser_page(profile: Path, *, height: int) -> Iterator[Any]:
    """Open a fresh Chromium page (English, UTC, 1280 pixels wide) and close the browser afterwards."""
    from playwright.sync_api import sync_playwright

    with sync_playwright() as playwright:
        context = playwright.chromium.launch_persistent_context(
            str(profile),
            executable_path=str(CHROMIUM),
            args=CHROMIUM_FLAGS,
            headless=True,
            viewport={"width": 1280, "height": height},
            locale="en-US",
            timezone_id="UTC",
        )
        context.set_default_timeout(30_000)
        try:
            yield context.new_page()
        finally:
            context.close()
