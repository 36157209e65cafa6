"""
The whole stack, the way a deployment runs it: ``airflow standalone`` (API server, scheduler, DAG processor,
triggerer; SQLite, LocalExecutor) on loopback, the example DAGs and the Wavy sandbox.

The daily example DAG is triggered through the REST API, like a user clicking "Trigger", and the test
checks what only a real deployment can show: the sensor deferred to the triggerer and was resumed, the
file is byte-identical to what Wavy served, the token is in no task log and no XCom, and the API server
gives the UI this provider's connection form.
"""

from __future__ import annotations

import contextlib
import json
import os
import shutil
import signal
import socket
import subprocess
import time
from dataclasses import dataclass, field
from typing import TYPE_CHECKING, Any

import httpx
import pytest

from airflow_provider_wavy import CONN_FIELDS, CONN_TYPE, HOOK_NAME, UI_FIELD_BEHAVIOUR
from airflow_provider_wavy.sandbox import Scenario, WavySandbox
from tests.conftest import REPO_ROOT, SANDBOX_CUSTOMER, SANDBOX_TOKEN, SANDBOX_USER
from tests.e2e.airflow_runner import AIRFLOW, BIN_DIR, airflow_major

if TYPE_CHECKING:
    from collections.abc import Iterator
    from pathlib import Path

pytestmark = [
    pytest.mark.e2e,
    pytest.mark.airflow3,
    pytest.mark.skipif(airflow_major() < 3, reason="the full-stack test runs on Airflow 3 (api-server)"),
    pytest.mark.timeout(420),
]

DAG_ID = "example_wavy_daily"
LOGICAL_DATE = "2026-11-23"
#: Polls answered "nothing yet" before the file URL: with the sensor's first poke on the worker, at least
#: two of them must come from the trigger, so the task really waited on the triggerer.
READY_AFTER = 2
ROWS = 40
POKE_INTERVAL = 8
STARTUP_TIMEOUT = 240.0
RUN_TIMEOUT = 180.0


def _free_port() -> int:
    """Return a TCP port free on loopback right now."""
    with socket.socket(socket.AF_INET, socket.SOCK_STREAM) as sock:
        sock.bind(("127.0.0.1", 0))
        return int(sock.getsockname()[1])


@dataclass
class Stack:
    """A running ``airflow standalone`` and the sandbox it talks to."""

    home: Path
    api_url: str
    data_dir: Path
    output_log: Path
    sandbox: WavySandbox
    client: httpx.Client
    startup_seconds: float
    timings: dict[str, float] = field(default_factory=dict)

    def api(self, method: str, path: str, **kwargs: Any) -> Any:
        """Call the public REST API and return the JSON answer, failing on an error status."""
        response = self.client.request(method, f"{self.api_url}{path}", **kwargs)
        assert response.status_code < 400, f"{method} {path}: {response.status_code} {response.text[:500]}"
        return response.json() if response.content else None

    def tail(self, lines: int = 60) -> str:
        """Return the end of standalone's output, for failure messages."""
        text = self.output_log.read_text(errors="replace") if self.output_log.exists() else ""
        return "\n".join(text.splitlines()[-lines:])


def _stop_group(process: subprocess.Popen[bytes]) -> None:
    """Stop standalone and every process it started (they share its process group), bounded."""
    if process.poll() is not None:
        return
    try:
        os.killpg(process.pid, signal.SIGTERM)
    except ProcessLookupError:
        return
    with contextlib.suppress(subprocess.TimeoutExpired):
        process.wait(timeout=30)
    # Whatever is left of the group (gunicorn/uvicorn workers, task runners) goes now.
    with contextlib.suppress(ProcessLookupError):
        os.killpg(process.pid, signal.SIGKILL)
    process.wait(timeout=10)


def _wait_healthy(client: httpx.Client, api_url: str, process: subprocess.Popen[bytes], log: Path) -> None:
    """Wait until the API server answers its health check and the scheduler and triggerer report healthy."""
    deadline = time.monotonic() + STARTUP_TIMEOUT
    last = "no answer"
    while time.monotonic() < deadline:
        if process.poll() is not None:
            tail = "\n".join(log.read_text(errors="replace").splitlines()[-40:])
            pytest.fail(f"airflow standalone exited with {process.returncode}:\n{tail}")
        try:
            health = client.get(f"{api_url}/api/v2/monitor/health", timeout=5).json()
        except (httpx.HTTPError, ValueError) as error:
            last = str(error)
        else:
            last = json.dumps(health)
            parts = ("metadatabase", "scheduler", "triggerer", "dag_processor")
            if all(health.get(part, {}).get("status") == "healthy" for part in parts):
                return
        time.sleep(1)
    tail = "\n".join(log.read_text(errors="replace").splitlines()[-40:])
    pytest.fail(f"airflow standalone not healthy after {STARTUP_TIMEOUT:.0f}s (last: {last}):\n{tail}")


def _token(client: httpx.Client, api_url: str, home: Path) -> str:
    """Log in as the generated admin user and return a bearer token."""
    password_file = home / "simple_auth_manager_passwords.json.generated"
    deadline = time.monotonic() + 30
    while not password_file.exists() and time.monotonic() < deadline:
        time.sleep(0.5)
    passwords = json.loads(password_file.read_text())
    username, password = next(iter(passwords.items()))
    response = client.post(f"{api_url}/auth/token", json={"username": username, "password": password})
    assert response.status_code == 201, response.text
    return str(response.json()["access_token"])


@pytest.fixture(scope="module")
def stack(tmp_path_factory: pytest.TempPathFactory) -> Iterator[Stack]:
    """Start the sandbox and ``airflow standalone`` on loopback; stop both whatever happens."""
    if shutil.which("airflow", path=str(BIN_DIR)) is None:
        pytest.skip(f"no airflow executable next to {BIN_DIR}")
    home = tmp_path_factory.mktemp("standalone-home")
    dags = home / "dags"
    shutil.copytree(REPO_ROOT / "example_dags", dags, ignore=shutil.ignore_patterns("__pycache__"))
    data_dir = home / "data"
    output_log = home / "standalone.log"
    scenario = Scenario(rows=ROWS, ready_after=READY_AFTER)
    sandbox = WavySandbox(
        username=SANDBOX_USER, token=SANDBOX_TOKEN, customer_id=SANDBOX_CUSTOMER, scenario=scenario
    )
    try:
        sandbox.start()
    except OSError as error:
        pytest.skip(f"cannot listen on loopback for the sandbox: {error}")
    port = _free_port()
    api_url = f"http://127.0.0.1:{port}"
    env = {k: v for k, v in os.environ.items() if not k.startswith(("AIRFLOW_", "AIRFLOW__"))}
    env.update(
        {
            "AIRFLOW_HOME": str(home),
            "AIRFLOW__CORE__DAGS_FOLDER": str(dags),
            "AIRFLOW__CORE__LOAD_EXAMPLES": "False",
            # Only the run the test triggers: unpausing a @daily DAG would otherwise start a scheduled run
            # too, and with max_active_runs=1 the triggered one would wait behind it.
            "AIRFLOW__SCHEDULER__USE_JOB_SCHEDULE": "False",
            "AIRFLOW__DATABASE__SQL_ALCHEMY_CONN": f"sqlite:///{home / 'airflow.db'}",
            "AIRFLOW__API__HOST": "127.0.0.1",
            "AIRFLOW__API__PORT": str(port),
            "AIRFLOW__API__BASE_URL": api_url,
            # Tasks reach the API server through this URL; the default port would be refused.
            "AIRFLOW__CORE__EXECUTION_API_SERVER_URL": f"{api_url}/execution/",
            "AIRFLOW_CONN_WAVY_DEFAULT": sandbox.connection_json(),
            "AIRFLOW__CORE__TEST_CONNECTION": "Enabled",
            "AIRFLOW_VAR_WAVY_DATA_DIR": str(data_dir),
            # Long enough that the worker has exited before the trigger fires: when a trigger fires within
            # a second or two of the deferral, Airflow 3.3.2's scheduler can see the late "deferred" exit as
            # a task finishing while queued and put the task up for retry (seen on a loaded machine).
            "WAVY_POKE_INTERVAL": str(POKE_INTERVAL),
            # standalone starts its parts by running `airflow` from PATH: this venv's, not another one.
            "PATH": f"{BIN_DIR}{os.pathsep}{os.environ.get('PATH', '')}",
            "PYTHONWARNINGS": "ignore",
        }
    )
    started = time.monotonic()
    with output_log.open("wb") as out:
        process = subprocess.Popen(
            [AIRFLOW, "standalone"],
            env=env,
            cwd=home,
            stdout=out,
            stderr=subprocess.STDOUT,
            stdin=subprocess.DEVNULL,
            start_new_session=True,  # its own process group: one killpg stops every part it starts
        )
    client = httpx.Client(timeout=30)
    try:
        _wait_healthy(client, api_url, process, output_log)
        client.headers["Authorization"] = f"Bearer {_token(client, api_url, home)}"
        yield Stack(
            home=home,
            api_url=api_url,
            data_dir=data_dir,
            output_log=output_log,
            sandbox=sandbox,
            client=client,
            startup_seconds=time.monotonic() - started,
        )
    finally:
        client.close()
        _stop_group(process)
        sandbox.stop()


def test_connection_form_metadata_lists_wavy(stack: Stack) -> None:
    """The API server hands the UI this provider's ``wavy`` form: labels, placeholders and extra fields."""
    hooks = stack.api("GET", "/ui/connections/hook_meta")
    wavy = [hook for hook in hooks if hook["connection_type"] == CONN_TYPE]
    assert len(wavy) == 1, f"no {CONN_TYPE!r} connection type in {[h['connection_type'] for h in hooks]}"
    meta = wavy[0]
    assert meta["hook_name"] == HOOK_NAME
    assert meta["hook_class_name"] == "airflow_provider_wavy.hooks.wavy.WavyHook"
    standard = meta["standard_fields"]
    for name, label in UI_FIELD_BEHAVIOUR["relabeling"].items():
        assert standard[name]["title"] == label, name
    for name, placeholder in UI_FIELD_BEHAVIOUR["placeholders"].items():
        assert standard[name]["placeholder"] == placeholder, name
    assert standard["port"]["hidden"] is False, "Airflow 3's Test action needs a stored port"
    extra = meta["extra_fields"]
    assert set(extra) == set(CONN_FIELDS)
    for name, spec in CONN_FIELDS.items():
        assert extra[name]["schema"]["title"] == spec["label"], name
        assert extra[name]["description"] == spec["description"], name


def test_test_button_names_no_throwaway_id(stack: Stack) -> None:
    """The REST Test route tests under a random id: its message says "this connection", not that id."""
    conn = json.loads(stack.sandbox.connection_json())
    body = {
        "connection_id": "my_wavy",
        "conn_type": conn["conn_type"],
        "host": conn["host"],
        "login": conn["login"],
        "password": "wrong-token",
        "extra": json.dumps(conn.get("extra", {})),
    }
    answer = stack.api("POST", "/api/v2/connections/test", json=body)
    assert answer["status"] is False, answer
    assert "Wavy rejected the credentials of this connection (HTTP 401" in answer["message"], answer
    assert "connection '" not in answer["message"]


def _wait_for_dag(stack: Stack) -> None:
    """Wait until the DAG processor has parsed the daily DAG, failing on an import error."""
    deadline = time.monotonic() + 90
    while time.monotonic() < deadline:
        errors = stack.api("GET", "/api/v2/importErrors")["import_errors"]
        assert not errors, f"import errors: {json.dumps(errors, indent=1)[:3000]}"
        response = stack.client.get(f"{stack.api_url}/api/v2/dags/{DAG_ID}")
        if response.status_code == 200:
            return
        time.sleep(1)
    pytest.fail(f"{DAG_ID} never appeared in the API:\n{stack.tail()}")


def _wait_for_run(stack: Stack, run_id: str) -> str:
    """Poll the DAG run until it finishes (bounded); return its final state."""
    deadline = time.monotonic() + RUN_TIMEOUT
    state = "unknown"
    while time.monotonic() < deadline:
        state = stack.api("GET", f"/api/v2/dags/{DAG_ID}/dagRuns/{run_id}")["state"]
        if state in {"success", "failed"}:
            return str(state)
        time.sleep(1)
    return state


def _task_instances(stack: Stack, run_id: str) -> dict[str, dict[str, Any]]:
    """Return the run's task instances by task id."""
    answer = stack.api("GET", f"/api/v2/dags/{DAG_ID}/dagRuns/{run_id}/taskInstances")
    return {ti["task_id"]: ti for ti in answer["task_instances"]}


def _task_log(stack: Stack, run_id: str, task_id: str, try_number: int) -> str:
    """Return a task's log as the API serves it to the UI (all of it)."""
    answer = stack.api(
        "GET",
        f"/api/v2/dags/{DAG_ID}/dagRuns/{run_id}/taskInstances/{task_id}/logs/{try_number}",
        params={"full_content": "true"},
        headers={"Accept": "application/json"},
    )
    return json.dumps(answer["content"])


def test_daily_dag_runs_deferred_and_leaks_no_token(stack: Stack) -> None:
    """Trigger the daily DAG through the API and check deferral, the file, the logs and the XComs."""
    _wait_for_dag(stack)
    stack.api("PATCH", f"/api/v2/dags/{DAG_ID}", json={"is_paused": False})
    started = time.monotonic()
    run = stack.api(
        "POST",
        f"/api/v2/dags/{DAG_ID}/dagRuns",
        json={"logical_date": f"{LOGICAL_DATE}T00:00:00Z", "conf": {}},
    )
    run_id = run["dag_run_id"]
    state = _wait_for_run(stack, run_id)
    stack.timings["run"] = time.monotonic() - started
    tis = _task_instances(stack, run_id)
    states = {task_id: ti["state"] for task_id, ti in tis.items()}
    assert state == "success", f"run {run_id} ended {state}: {states}\n{stack.tail()}"
    assert states == {
        "wait_for_sessions": "success",
        "download_sessions": "success",
        "report_sessions": "success",
    }

    # Deferred and resumed: the worker paused the sensor as DEFERRED, the triggerer ran the trigger (its own
    # log file, next to the task's) until the file was ready, then a worker resumed the sensor.
    sandbox = stack.sandbox
    assert sandbox.api_calls >= READY_AFTER + 1, "the trigger never had to wait for the file"
    sensor_log = _task_log(stack, run_id, "wait_for_sessions", tis["wait_for_sessions"]["try_number"])
    assert "Pausing task as DEFERRED" in sensor_log, sensor_log[-3000:]
    assert tis["wait_for_sessions"]["try_number"] == 1, "the deferral cost a retry"
    resumed = sensor_log[sensor_log.index("Pausing task as DEFERRED") :]
    assert "Pre Execute" in resumed, f"not resumed after the deferral: {resumed[-3000:]}"
    sensor_dir = next((stack.home / "logs" / f"dag_id={DAG_ID}").glob("run_id=*/task_id=wait_for_sessions"))
    trigger_logs = [p.read_text(errors="replace") for p in sensor_dir.glob("*.trigger.*")]
    assert trigger_logs, f"no triggerer log in {sorted(p.name for p in sensor_dir.iterdir())}"
    assert "Trigger fired event" in "".join(trigger_logs), trigger_logs

    # The file: byte-identical to what the sandbox served, in the date partition, no token sent to the CDN.
    files = [p for p in (stack.data_dir / "open_sessions" / LOGICAL_DATE).rglob("*") if p.is_file()]
    assert len(files) == 1, files
    assert files[0].read_bytes() == sandbox.expected_bytes(SANDBOX_CUSTOMER)
    assert not sandbox.cdn_saw_credentials

    # The report task read that same file back.
    report = stack.api(
        "GET",
        f"/api/v2/dags/{DAG_ID}/dagRuns/{run_id}/taskInstances/report_sessions/xcomEntries/return_value",
        params={"deserialize": "true"},
    )["value"]
    if isinstance(report, str):  # some versions hand back the stored JSON text
        report = json.loads(report)
    assert report["open_sessions"] == ROWS, report

    # No token in any XCom nor any task log (the API's view and the files on disk).
    xcoms = stack.api("GET", f"/api/v2/dags/{DAG_ID}/dagRuns/{run_id}/taskInstances/~/xcomEntries")
    assert xcoms["xcom_entries"], "no XCom at all: the check below would prove nothing"
    for entry in xcoms["xcom_entries"]:
        value = stack.api(
            "GET",
            f"/api/v2/dags/{DAG_ID}/dagRuns/{run_id}/taskInstances/{entry['task_id']}/xcomEntries/{entry['key']}",
            params={"map_index": entry["map_index"]},
        )
        assert SANDBOX_TOKEN not in json.dumps(value), entry
    for task_id, ti in tis.items():
        log = _task_log(stack, run_id, task_id, ti["try_number"])
        assert log.strip(), f"empty log for {task_id}"
        assert SANDBOX_TOKEN not in log, task_id
    log_files = [p for p in (stack.home / "logs").rglob("*") if p.is_file()]
    assert log_files
    for path in log_files:
        assert SANDBOX_TOKEN not in path.read_text(errors="replace"), path
    print(f"standalone healthy in {stack.startup_seconds:.1f}s; DAG run took {stack.timings['run']:.1f}s")
