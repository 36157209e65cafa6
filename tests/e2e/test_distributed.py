"""
The example DAGs on a distributed Airflow 3: CeleryExecutor, PostgreSQL, Redis, two workers that cannot see
each other's disk, the files on S3 (moto), and two faults: the triggerer and a worker killed with SIGKILL.

Everything runs on loopback and is started and stopped by the test (tests/e2e/distributed_stack.py).
"""

from __future__ import annotations

import hashlib
import json
import re
import shutil
import time
from dataclasses import dataclass, field
from typing import TYPE_CHECKING, Any

import httpx
import pytest

from airflow_provider_wavy._destination import writer_id
from airflow_provider_wavy.sandbox import Scenario, WavySandbox
from airflow_provider_wavy.sandbox.data import iter_csv_chunks
from tests.conftest import REPO_ROOT, SANDBOX_CUSTOMER, SANDBOX_TOKEN, SANDBOX_USER
from tests.e2e.airflow_runner import AIRFLOW, airflow_major
from tests.e2e.distributed_stack import (
    Proc,
    Servers,
    airflow_env,
    missing_requirements,
    shared_secrets,
    worker_argv,
)
from tests.e2e.test_full_stack import _token
from tests.pg_server import free_port, skip_or_fail

if TYPE_CHECKING:
    from collections.abc import Callable, Iterator
    from pathlib import Path

pytestmark = [
    pytest.mark.e2e,
    pytest.mark.airflow3,
    pytest.mark.distributed,
    pytest.mark.skipif(airflow_major() < 3, reason="the distributed test runs on Airflow 3"),
    pytest.mark.timeout(900),
]

BUCKET = "wavy-distributed"
S3_CONN = "wavy_s3"
DAY1, DAY2 = "2026-11-23", "2026-11-24"
ROWS = 40
#: About 200 MiB, four 50 MiB parts: the worker is killed with an upload under way, seconds from its end.
BIG_ROWS = 6_000_000
WORKERS = ("worker-a", "worker-b")
DATA_DATABASE = "wavy_data"
STEP_TIMEOUT = 240.0


@dataclass
class Stack:
    """The running deployment: its processes, homes, API client and sandbox."""

    servers: Servers
    control_home: Path
    worker_homes: dict[str, Path]
    procs: dict[str, Proc]
    api_url: str
    client: httpx.Client
    sandbox: WavySandbox
    s3: Any
    timings: dict[str, float] = field(default_factory=dict)

    def api(self, method: str, path: str, **kwargs: Any) -> Any:
        """Call the REST API; fail on an error status."""
        response = self.client.request(method, f"{self.api_url}/api/v2{path}", **kwargs)
        assert response.status_code < 400, f"{method} {path}: {response.status_code} {response.text[:500]}"
        return response.json() if response.content else None

    def tails(self) -> str:
        """The end of every process's output."""
        return "\n".join(proc.tail(25) for proc in self.procs.values())

    def wait(self, what: str, check: Callable[[], Any], timeout: float = STEP_TIMEOUT) -> Any:
        """Poll ``check`` until it returns something true (bounded); fail with every process's output."""
        deadline = time.monotonic() + timeout
        while time.monotonic() < deadline:
            value = check()
            if value:
                return value
            time.sleep(0.5)
        pytest.fail(f"timed out after {timeout:.0f}s waiting for {what}\n{self.tails()}")

    def trigger(self, dag_id: str, day: str) -> str:
        """Unpause a DAG and start a run for ``day`` through the API, like a user; return its run id."""
        self.api("PATCH", f"/dags/{dag_id}", json={"is_paused": False})
        run = self.api("POST", f"/dags/{dag_id}/dagRuns", json={"logical_date": f"{day}T00:00:00Z"})
        return str(run["dag_run_id"])

    def tis(self, dag_id: str, run_id: str) -> list[dict[str, Any]]:
        """The run's task instances (mapped ones too)."""
        return list(self.api("GET", f"/dags/{dag_id}/dagRuns/{run_id}/taskInstances")["task_instances"])

    def finished(self, dag_id: str, run_id: str) -> str:
        """Wait for a run to finish; return its state."""

        def done() -> str | None:
            state = self.api("GET", f"/dags/{dag_id}/dagRuns/{run_id}")["state"]
            return str(state) if state in {"success", "failed"} else None

        return str(self.wait(f"{dag_id} {run_id} to finish", done))

    def ran_on(self) -> dict[str, set[str]]:
        """Which worker ran which task try: each worker's own log folder holds the logs of what it ran."""
        found: dict[str, set[str]] = {}
        for name, home in self.worker_homes.items():
            for log in (home / "logs").rglob("attempt=*.log"):
                parts = dict(p.split("=", 1) for p in log.relative_to(home / "logs").parts if "=" in p)
                found.setdefault(name, set()).add(
                    f"{parts['dag_id']}.{parts['task_id']}[{parts.get('map_index', '-1')}]#{parts['attempt']}"
                )
        return found


def _airflow_proc(name: str, args: list[str], env: dict[str, str], home: Path) -> Proc:
    return Proc(name, [AIRFLOW, *args], env, home, home / f"{name}.log")


@pytest.fixture(scope="module")
def stack(tmp_path_factory: pytest.TempPathFactory) -> Iterator[Stack]:
    """Start the whole deployment on loopback; stop every process whatever happens."""
    missing = missing_requirements()
    if missing:
        message = (
            "the distributed test needs " + "; ".join(missing) + " (scripts/test.sh installs them as root)"
        )
        skip_or_fail(message)
    base = tmp_path_factory.mktemp("distributed")
    started = time.monotonic()
    servers = Servers(base)
    procs: dict[str, Proc] = {}
    sandbox = WavySandbox(username=SANDBOX_USER, token=SANDBOX_TOKEN, customer_id=SANDBOX_CUSTOMER)
    client = httpx.Client(timeout=30)
    try:
        sandbox.start()
        servers.start()
        stack = _start_airflow(base, servers, procs, sandbox, client)
        stack.timings["startup"] = time.monotonic() - started
        yield stack
    finally:
        client.close()
        for proc in reversed(procs.values()):
            proc.stop()
        servers.stop()
        sandbox.stop()


def _start_airflow(
    base: Path, servers: Servers, procs: dict[str, Proc], sandbox: WavySandbox, client: httpx.Client
) -> Stack:
    import boto3

    s3 = boto3.client(
        "s3", endpoint_url=servers.s3_endpoint, aws_access_key_id="testing",
        aws_secret_access_key="testing", region_name="us-east-1",
    )  # fmt: skip
    s3.create_bucket(Bucket=BUCKET)
    dags = base / "dags"
    shutil.copytree(REPO_ROOT / "example_dags", dags, ignore=shutil.ignore_patterns("__pycache__"))
    api_url = f"http://127.0.0.1:{free_port()}"
    s3_conn = {
        "conn_type": "aws", "login": "testing", "password": "testing",
        "extra": {"endpoint_url": servers.s3_endpoint, "region_name": "us-east-1"},
    }  # fmt: skip
    extra = {
        **shared_secrets(),
        # The connections must exist on the triggerer and on every worker (here: the same environment).
        "AIRFLOW_CONN_WAVY_DEFAULT": sandbox.connection_json(),
        f"AIRFLOW_CONN_{S3_CONN.upper()}": json.dumps(s3_conn),
        "AIRFLOW_VAR_WAVY_DATA_DIR": f"s3://{BUCKET}/wavy",
        "AIRFLOW_VAR_WAVY_DATA_CONN_ID": S3_CONN,
        # example_wavy_to_postgres's tables: a database of their own beside the metadata database.
        "AIRFLOW_CONN_POSTGRES_DEFAULT": servers.pg.create_database(DATA_DATABASE),
        "WAVY_POKE_INTERVAL": "2",
        "WAVY_RETRY_DELAY": "2",
    }
    control = base / "control"
    control.mkdir()
    env = airflow_env(servers, control, dags, api_url, extra)
    migrate = _airflow_proc("db-migrate", ["db", "migrate"], env, control).start()
    assert migrate.process is not None
    assert migrate.process.wait(timeout=300) == 0, migrate.tail()
    for name, args in (
        ("api-server", ["api-server"]),
        ("scheduler", ["scheduler"]),
        ("dag-processor", ["dag-processor"]),
        ("triggerer", ["triggerer", "--skip-serve-logs"]),
    ):
        procs[name] = _airflow_proc(name, args, env, control).start()
    worker_homes = {}
    for name in WORKERS:
        home = base / name
        private = home / "private"
        private.mkdir(parents=True)
        worker_env = airflow_env(servers, home, dags, api_url, {**extra, "TMPDIR": str(private)})
        procs[name] = Proc(name, worker_argv(name, private), worker_env, home, home / f"{name}.log").start()
        worker_homes[name] = home
    stack = Stack(servers, control, worker_homes, procs, api_url, client, sandbox, s3)
    stack.wait("the control plane to be healthy", lambda: _healthy(stack), timeout=300)
    for name in WORKERS:
        stack.wait(f"{name} to be ready", lambda: all(_worker_ready(stack, n) for n in WORKERS), timeout=300)
    client.headers["Authorization"] = f"Bearer {_token(client, api_url, control)}"
    return stack


def _healthy(stack: Stack) -> bool:
    dead = [name for name, proc in stack.procs.items() if not proc.alive()]
    assert not dead, f"{dead} exited\n{stack.tails()}"
    try:
        health = stack.client.get(f"{stack.api_url}/api/v2/monitor/health", timeout=5).json()
    except (httpx.HTTPError, ValueError):
        return False
    parts = ("metadatabase", "scheduler", "triggerer", "dag_processor")
    return all(health.get(part, {}).get("status") == "healthy" for part in parts)


#: Every example DAG: the test runs them all.
EXAMPLES = (
    "example_wavy_daily",
    "example_wavy_sub_accounts",
    "example_wavy_xcom",
    "example_wavy_reachable",
    "example_wavy_to_postgres",
)


def _worker_ready(stack: Stack, name: str) -> bool:
    proc = stack.procs[name]
    assert proc.alive(), proc.tail()
    text = proc.log.read_text(errors="replace")
    return bool(re.search(rf"{name}@\S+ ready", text[text.rfind("==== start") :]))


def _dags_parsed(stack: Stack) -> bool:
    errors = stack.api("GET", "/importErrors")["import_errors"]
    assert not errors, json.dumps(errors)[:3000]
    ids = {dag["dag_id"] for dag in stack.api("GET", "/dags")["dags"]}
    return set(EXAMPLES) <= ids


def _expected_sha256(rows: int, sub_account: str | None = None) -> str:
    digest = hashlib.sha256()
    for chunk in iter_csv_chunks(SANDBOX_CUSTOMER, sub_account, Scenario(rows=rows)):
        digest.update(chunk)
    return digest.hexdigest()


def _objects(stack: Stack, prefix: str) -> dict[str, int]:
    answer = stack.s3.list_objects_v2(Bucket=BUCKET, Prefix=prefix)
    return {item["Key"]: int(item["Size"]) for item in answer.get("Contents", [])}


def _uploads(stack: Stack, prefix: str) -> list[str]:
    answer = stack.s3.list_multipart_uploads(Bucket=BUCKET, Prefix=prefix)
    return [upload["Key"] for upload in answer.get("Uploads", [])]


def _object_sha256(stack: Stack, key: str) -> str:
    digest = hashlib.sha256()
    for chunk in stack.s3.get_object(Bucket=BUCKET, Key=key)["Body"].iter_chunks(2**20):
        digest.update(chunk)
    return digest.hexdigest()


def _state(stack: Stack, dag_id: str, run_id: str, task_id: str) -> str | None:
    for ti in stack.tis(dag_id, run_id):
        if ti["task_id"] == task_id:
            return str(ti["state"])
    return None


def _restart_triggerer_while_deferred(stack: Stack, run_id: str) -> None:
    """Kill -9 the triggerer while the sensor is deferred, restart it, and see the new one poll."""
    daily = "example_wavy_daily"
    stack.wait("the sensor to defer", lambda: _state(stack, daily, run_id, "wait_for_sessions") == "deferred")
    calls = stack.sandbox.api_calls
    stack.wait("the triggerer to poll", lambda: stack.sandbox.api_calls > calls + 1)
    killed = stack.procs["triggerer"].kill9()
    time.sleep(3)
    calls = stack.sandbox.api_calls
    stack.procs["triggerer"].start()
    # Only a trigger running in the new triggerer can ask the sandbox again: the old one is dead.
    stack.wait("the restarted triggerer to poll", lambda: stack.sandbox.api_calls > calls + 1)
    print(f"triggerer: killed {killed} process(es), restarted; its trigger polls again")
    assert _state(stack, daily, run_id, "wait_for_sessions") == "deferred"
    stack.sandbox.scenario = Scenario(rows=ROWS)  # the file is ready now


def test_examples_on_celery_survive_faults(stack: Stack) -> None:
    """Every example on two workers through the API; the triggerer and a worker killed mid-way."""
    shipped = {path.stem for path in (REPO_ROOT / "example_dags").glob("*.py")}
    assert shipped == set(EXAMPLES), f"an example DAG this test does not run: {shipped - set(EXAMPLES)}"
    stack.wait("the example DAGs to be parsed", lambda: _dags_parsed(stack))
    t0 = time.monotonic()
    # 1. The daily example: the sensor defers, the triggerer is killed and restarted, the run completes.
    stack.sandbox.scenario = Scenario(rows=ROWS, ready_after=10**6)
    daily = stack.trigger("example_wavy_daily", DAY1)
    _restart_triggerer_while_deferred(stack, daily)
    # 2. The other examples at once, so that both workers have work.
    mapped = stack.trigger("example_wavy_sub_accounts", DAY1)
    xcom = stack.trigger("example_wavy_xcom", DAY1)
    reachable = stack.trigger("example_wavy_reachable", DAY1)
    to_postgres = stack.trigger("example_wavy_to_postgres", DAY1)
    runs = [("example_wavy_daily", daily), ("example_wavy_sub_accounts", mapped), ("example_wavy_xcom", xcom)]
    runs += [("example_wavy_reachable", reachable), ("example_wavy_to_postgres", to_postgres)]
    for dag_id, run_id in runs:
        assert stack.finished(dag_id, run_id) == "success", f"{dag_id}: {stack.tis(dag_id, run_id)}"
    stack.timings["examples"] = time.monotonic() - t0

    sensor = next(ti for ti in stack.tis("example_wavy_daily", daily) if ti["task_id"] == "wait_for_sessions")
    assert sensor["try_number"] == 1, "the triggerer's death cost the sensor a retry"
    trigger_logs = "".join(
        p.read_text(errors="replace") for p in (stack.control_home / "logs").rglob("*trigger*")
    )
    assert "Trigger fired event" in trigger_logs or "trigger fired" in trigger_logs.lower()
    sensor_logs = [
        p
        for home in stack.worker_homes.values()
        for p in (home / "logs" / "dag_id=example_wavy_daily").rglob("*")
        if "task_id=wait_for_sessions" in str(p) and p.is_file()
    ]
    assert "Pausing task as DEFERRED" in "".join(p.read_text(errors="replace") for p in sensor_logs)

    day1 = f"wavy/open_sessions/{DAY1}/"
    objects = _objects(stack, day1)
    daily_key = f"{day1}wavy_open_sessions_{SANDBOX_CUSTOMER}_{DAY1}.csv"
    assert daily_key in objects, objects
    assert _object_sha256(stack, daily_key) == _expected_sha256(ROWS)
    for sub in ("marketing", "support", "billing"):
        keys = [key for key in objects if f"sub_account={sub}/" in key]
        assert len(keys) == 1, objects
        assert _object_sha256(stack, keys[0]) == _expected_sha256(ROWS, sub)
    assert len(objects) == 4, f"extra objects (a partial left?): {sorted(objects)}"
    xcom_path = f"/dags/example_wavy_daily/dagRuns/{daily}/taskInstances/report_sessions/xcomEntries"
    report = stack.api("GET", f"{xcom_path}/return_value", params={"deserialize": "true"})["value"]
    report = json.loads(report) if isinstance(report, str) else report
    assert report["open_sessions"] == ROWS
    _check_reachable(stack)
    _check_reachable_table(stack)

    _kill_a_worker_mid_download(stack)
    ran = stack.ran_on()
    print("ran on:", json.dumps({name: sorted(tasks) for name, tasks in ran.items()}, indent=1))
    assert set(ran) == set(WORKERS), f"not every worker ran a task: {ran}"
    _assert_no_token_anywhere(stack, runs)
    print("timings:", {name: round(seconds, 1) for name, seconds in stack.timings.items()})


def _check_reachable(stack: Stack) -> None:
    """The sessions file and the OPT-OUT list landed once each, byte-identical to what the sandbox served."""
    folder = f"wavy/reachable/{DAY1}/"
    objects = _objects(stack, folder)
    sessions_key = f"{folder}wavy_open_sessions_{SANDBOX_CUSTOMER}_{DAY1}.csv"
    list_key = f"{folder}wavy_list_optout_{SANDBOX_CUSTOMER}_{DAY1}.csv"
    assert sorted(objects) == sorted([sessions_key, list_key]), objects
    assert _object_sha256(stack, sessions_key) == _expected_sha256(ROWS)
    served = stack.sandbox.expected_bytes(SANDBOX_CUSTOMER, list_type="OPTOUT")
    assert _object_sha256(stack, list_key) == hashlib.sha256(served).hexdigest()


def _check_reachable_table(stack: Stack) -> None:
    """wavy_reachable: the sessions' phones minus the OPT-OUT list's, computed here from the bytes served."""
    import psycopg

    sessions = b"".join(iter_csv_chunks(SANDBOX_CUSTOMER, None, Scenario(rows=ROWS)))
    session_phones = [line.split(b";")[0].decode() for line in sessions.splitlines()[1:]]
    opt_outs = stack.sandbox.expected_bytes(SANDBOX_CUSTOMER, list_type="OPTOUT")
    opted_out = {line.split(b";")[0].decode() for line in opt_outs.splitlines()[1:]}
    expected = sorted(set(session_phones) - opted_out)
    # The lists share the phones of sessions rows 0, 2, 4, ...: about half the sessions are opted out.
    assert 0 < len(expected) < len(session_phones)
    with psycopg.connect(stack.servers.pg.uri(DATA_DATABASE)) as conn:
        found = [row[0] for row in conn.execute("SELECT phone FROM wavy_reachable ORDER BY phone")]
        loaded = conn.execute("SELECT count(*) FROM wavy_open_sessions").fetchone()
    assert found == expected
    assert loaded == (ROWS,)


def _download_running_on(stack: Stack, run_id: str) -> str | None:
    """The worker whose log folder has the download's first try of ``run_id``, once it is running."""
    if _state(stack, "example_wavy_daily", run_id, "download_sessions") != "running":
        return None
    for name, home in stack.worker_homes.items():
        for log in (home / "logs").rglob("attempt=1.log"):
            if f"run_id={run_id}" in str(log) and "task_id=download_sessions" in str(log):
                return name
    return None


def _kill_a_worker_mid_download(stack: Stack) -> None:
    """SIGKILL the worker downloading a large file, an upload under way; restart it; check the retry."""
    t0 = time.monotonic()
    stack.sandbox.scenario = Scenario(rows=BIG_ROWS)
    run_id = stack.trigger("example_wavy_daily", DAY2)
    victim = str(stack.wait("the download to start", lambda: _download_running_on(stack, run_id)))
    prefix = f"wavy/open_sessions/{DAY2}/"
    uploads = stack.wait("a multipart upload under way", lambda: _uploads(stack, prefix), timeout=120)
    # The first try's temporary key carries its writer id: the retry knows it for a dead writer's at once.
    first_try = writer_id("example_wavy_daily", "download_sessions", run_id, -1, 1)
    assert [key.rpartition("-")[2] for key in uploads] == [first_try], uploads
    killed = stack.procs[victim].kill9()
    killed_at = time.monotonic()
    stack.procs[victim].start()  # the machine comes back, its local disk empty
    state = stack.finished("example_wavy_daily", run_id)
    download = next(
        ti for ti in stack.tis("example_wavy_daily", run_id) if ti["task_id"] == "download_sessions"
    )
    assert state == "success", f"{stack.tis('example_wavy_daily', run_id)}\n{stack.tails()}"
    assert download["try_number"] == 2, download
    stack.timings["worker_fault"] = time.monotonic() - t0
    stack.timings["lost_worker_to_success"] = time.monotonic() - killed_at
    retried_on = [
        name
        for name, home in stack.worker_homes.items()
        for log in (home / "logs").rglob("attempt=2.log")
        if f"run_id={run_id}" in str(log) and "task_id=download_sessions" in str(log)
    ]
    print(f"worker fault: killed {victim} ({killed} processes) mid-upload; try 2 ran on {retried_on}")
    objects = _objects(stack, prefix)
    key = f"{prefix}wavy_open_sessions_{SANDBOX_CUSTOMER}_{DAY2}.csv"
    assert list(objects) == [key], f"expected one complete object, found {objects}"
    assert _object_sha256(stack, key) == _expected_sha256(BIG_ROWS)
    assert _uploads(stack, prefix) == [], "an incomplete multipart upload was left behind"


def _assert_no_token_anywhere(stack: Stack, runs: list[tuple[str, str]]) -> None:
    """The token is in no log file, no process output, no XCom and no event-log entry."""
    files = [p for p in stack.servers.base.rglob("*") if p.is_file() and p.suffix in {".log", ""}]
    files = [p for p in files if "private" not in p.parts and p.stat().st_size < 50 * 2**20]
    assert any("attempt=" in p.name for p in files)
    for path in files:
        assert SANDBOX_TOKEN not in path.read_text(errors="replace"), path
    for dag_id, run_id in runs:
        entries = stack.api("GET", f"/dags/{dag_id}/dagRuns/{run_id}/taskInstances/~/xcomEntries")[
            "xcom_entries"
        ]
        assert entries
        for entry in entries:
            url = f"/dags/{dag_id}/dagRuns/{run_id}/taskInstances/{entry['task_id']}/xcomEntries"
            value = stack.api("GET", f"{url}/{entry['key']}", params={"map_index": entry["map_index"]})
            assert SANDBOX_TOKEN not in json.dumps(value), entry
    events = stack.api("GET", "/eventLogs", params={"limit": 1000})
    assert events["event_logs"]
    assert SANDBOX_TOKEN not in json.dumps(events)
