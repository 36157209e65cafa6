"""
The example DAGs parse cleanly on the installed Airflow (2.11 or 3.x) and really run against the sandbox.

Run the suite on both environments to cover both versions (``scripts/test.sh`` does).
"""

from __future__ import annotations

import csv
import io
import subprocess
import sys
import textwrap
import warnings
from typing import TYPE_CHECKING, Any

import pytest

from airflow_provider_wavy.sandbox import Scenario
from tests.conftest import REPO_ROOT, SANDBOX_CUSTOMER
from tests.e2e.airflow_runner import AirflowEnv

if TYPE_CHECKING:
    from pathlib import Path

    from airflow_provider_wavy.sandbox import WavySandbox

EXAMPLES = REPO_ROOT / "example_dags"
LOGICAL_DATE = "2026-11-23"
SUB_ACCOUNTS = ["marketing", "support", "billing"]

#: dag id -> task ids, per example file: a renamed task breaks the docs that point at it.
EXPECTED = {
    "example_wavy_daily.py": (
        "example_wavy_daily",
        {"wait_for_sessions", "download_sessions", "report_sessions"},
    ),
    "example_wavy_sub_accounts.py": (
        "example_wavy_sub_accounts",
        {"wait_for_sessions", "plan_downloads", "download_sessions", "report_totals"},
    ),
    "example_wavy_reachable.py": (
        "example_wavy_reachable",
        {"wait_for_sessions", "wait_for_opt_outs", "land_sessions", "land_opt_outs", "report_reachable"},
    ),
    "example_wavy_xcom.py": (
        "example_wavy_xcom",
        {"wait_for_sessions", "fetch_sessions", "sessions_per_day"},
    ),
    "example_wavy_to_postgres.py": (
        "example_wavy_to_postgres",
        {"wait_for_sessions", "wait_for_opt_outs", "load_sessions", "load_opt_outs", "build_reachable"},
    ),
}
#: Modules a DAG file must not import when parsed: database drivers load when a task runs.
DRIVERS = (
    "psycopg",
    "asyncpg",
    "airflow.providers.postgres.hooks",
    "airflow.providers.sqlite.hooks",
)


def _dagbag(path: Path) -> Any:
    """Parse one DAG file the way the DAG processor does."""
    import importlib

    # Airflow 3 moved DagBag (the old path warns); Airflow 2 only has the old one.
    for module_name in ("airflow.dag_processing.dagbag", "airflow.models.dagbag"):
        try:
            dagbag_class: Any = importlib.import_module(module_name).DagBag
        except (ImportError, AttributeError):
            continue
        # conftest sets AIRFLOW__CORE__LOAD_EXAMPLES=False, so Airflow 2 adds no bundled examples.
        return dagbag_class(dag_folder=str(path))
    raise ImportError("no DagBag in this Airflow")


def test_every_example_is_listed() -> None:
    """A new example file gets its expectations here, so it is parsed and checked too."""
    assert {p.name for p in EXAMPLES.glob("*.py")} == set(EXPECTED)


@pytest.mark.parametrize(("filename", "expected"), [pytest.param(f, e, id=f) for f, e in EXPECTED.items()])
def test_example_parses_without_errors_or_warnings(filename: str, expected: tuple[str, set[str]]) -> None:
    """Each example imports cleanly, defines its DAG with the documented tasks and uses ``wavy_default``."""
    dag_id, task_ids = expected
    with warnings.catch_warnings(record=True) as caught:
        warnings.simplefilter("always")
        bag = _dagbag(EXAMPLES / filename)
    assert bag.import_errors == {}
    assert list(bag.dags) == [dag_id]
    dag = bag.dags[dag_id]
    assert set(dag.task_ids) == task_ids
    # Deprecated import paths (airflow.sensors.base, ...) warn users on Airflow 3: the examples use none.
    ours = [
        w for w in caught if str(EXAMPLES) in str(w.filename) or "airflow_provider_wavy" in str(w.filename)
    ]
    assert not [str(w.message) for w in ours if issubclass(w.category, DeprecationWarning | FutureWarning)]
    assert not getattr(bag, "captured_warnings", {})
    for task in dag.tasks:
        if task.task_type.startswith("WavyOpenSessions"):
            # A mapped operator keeps only what was passed to partial(): the default is wavy_default.
            partial_kwargs = getattr(task, "partial_kwargs", None)
            if partial_kwargs is not None:
                conn_id = partial_kwargs.get("wavy_conn_id", "wavy_default")
            else:
                conn_id = task.wavy_conn_id
            assert conn_id == "wavy_default", task.task_id
    assert "wavy" in dag.tags
    assert dag.doc_md


@pytest.fixture(scope="module")
def airflow_env(tmp_path_factory: pytest.TempPathFactory) -> AirflowEnv:
    """Return a migrated Airflow home holding the example DAGs (migrated once for this module)."""
    env = AirflowEnv(tmp_path_factory.mktemp("examples-home"))
    env.migrate()
    for path in EXAMPLES.glob("*.py"):
        env.add_dag(path)
    return env


def _run(env: AirflowEnv, sandbox: WavySandbox, dag_id: str, data_dir: Path, **extra: Any) -> Any:
    """Run one example with ``airflow dags test`` against the sandbox; fail with its output if it fails."""
    run = env.dags_test(
        dag_id,
        logical_date=LOGICAL_DATE,
        AIRFLOW_CONN_WAVY_DEFAULT=sandbox.connection_json(),
        AIRFLOW_VAR_WAVY_DATA_DIR=str(data_dir),
        WAVY_POKE_INTERVAL="1",
        **extra,
    )
    assert run.returncode == 0, run.output[-5000:]
    assert set(run.states.values()) == {"success"}, (run.states, run.output[-5000:])
    return run


def _created_at_values(data: bytes) -> list[str]:
    """Return the ``session_created_at`` column of a sandbox CSV."""
    reader = csv.DictReader(io.StringIO(data.decode("utf-8-sig")), delimiter=";")
    return [row["session_created_at"] for row in reader]


@pytest.mark.e2e
@pytest.mark.smoke
def test_daily_example_downloads_the_file_and_reports_it(
    airflow_env: AirflowEnv, sandbox: WavySandbox, tmp_path: Path
) -> None:
    """The daily DAG waits (the file is ready on the second poll), writes the day's file and reports it."""
    sandbox.scenario = Scenario(rows=30, ready_after=1)
    run = _run(airflow_env, sandbox, "example_wavy_daily", tmp_path)

    expected = sandbox.expected_bytes(SANDBOX_CUSTOMER)
    files = [p for p in (tmp_path / "open_sessions" / LOGICAL_DATE).rglob("*") if p.is_file()]
    assert len(files) == 1, files
    assert files[0].read_bytes() == expected
    assert sandbox.api_calls >= 2
    assert not sandbox.cdn_saw_credentials

    summary = run.xcom("download_sessions")
    assert summary["rows"] == 30
    created = _created_at_values(expected)
    report = run.xcom("report_sessions")
    assert report["open_sessions"] == 30
    assert (report["oldest"], report["newest"]) == (min(created), max(created))


@pytest.mark.e2e
@pytest.mark.smoke
def test_xcom_example_feeds_rows_to_taskflow(
    airflow_env: AirflowEnv, sandbox: WavySandbox, tmp_path: Path
) -> None:
    """The XCom DAG hands the rows to a TaskFlow task, which counts them per day."""
    sandbox.scenario = Scenario(rows=12)
    run = _run(airflow_env, sandbox, "example_wavy_xcom", tmp_path)

    expected = sandbox.expected_bytes(SANDBOX_CUSTOMER)
    rows = run.xcom("fetch_sessions")
    assert len(rows) == 12
    assert [row["session_created_at"] for row in rows] == _created_at_values(expected)
    result = run.xcom("sessions_per_day")
    assert result["open_sessions"] == 12
    assert sum(result["per_day"].values()) == 12


@pytest.mark.e2e
@pytest.mark.smoke
def test_reachable_example_subtracts_the_opt_outs(
    airflow_env: AirflowEnv, sandbox: WavySandbox, tmp_path: Path
) -> None:
    """Both files land; the report counts the open sessions whose number is not on the OPT-OUT list."""
    sandbox.scenario = Scenario(rows=25)
    sandbox.list_scenarios = {"OPTOUT": Scenario(rows=25, ready_after=1)}
    run = _run(airflow_env, sandbox, "example_wavy_reachable", tmp_path)

    day = tmp_path / "reachable" / LOGICAL_DATE
    names = sorted(p.name for p in day.iterdir())
    assert names == [
        f"wavy_list_optout_{SANDBOX_CUSTOMER}_{LOGICAL_DATE}.csv",
        f"wavy_open_sessions_{SANDBOX_CUSTOMER}_{LOGICAL_DATE}.csv",
    ]
    opt_outs = sandbox.expected_bytes(SANDBOX_CUSTOMER, list_type="OPTOUT")
    assert (day / names[0]).read_bytes() == opt_outs
    sessions = sandbox.expected_bytes(SANDBOX_CUSTOMER)
    # Computed here from the served bytes, independently of the DAG's code.
    session_phones = [row[0] for row in csv.reader(io.StringIO(sessions.decode()), delimiter=";")][1:]
    opted_out = {row[0] for row in csv.reader(io.StringIO(opt_outs.decode()), delimiter=";")}
    expected = sum(phone not in opted_out for phone in session_phones)
    assert 0 < expected < len(session_phones)
    assert run.xcom("report_reachable") == {
        "open_sessions": len(session_phones),
        "opted_out": len(opted_out) - 1,
        "reachable": expected,
    }
    assert sandbox.list_calls["OPTOUT"] >= 2
    assert not sandbox.cdn_saw_credentials


@pytest.mark.e2e
@pytest.mark.smoke
def test_sub_accounts_example_maps_one_download_per_sub_account(
    airflow_env: AirflowEnv, sandbox: WavySandbox, tmp_path: Path
) -> None:
    """The mapped DAG writes one file per sub-account, each the one Wavy served for that sub-account."""
    sandbox.scenario = Scenario(rows=5)
    run = _run(airflow_env, sandbox, "example_wavy_sub_accounts", tmp_path)

    day = tmp_path / "open_sessions" / LOGICAL_DATE
    for sub_account_id in SUB_ACCOUNTS:
        files = [p for p in (day / f"sub_account={sub_account_id}").iterdir() if p.is_file()]
        assert len(files) == 1, (sub_account_id, files)
        assert files[0].read_bytes() == sandbox.expected_bytes(SANDBOX_CUSTOMER, sub_account_id)
    queried = {r.query.get("subAccountId") for r in sandbox.requests if r.origin == "api"}
    assert queried == set(SUB_ACCOUNTS)
    assert run.states["report_totals"] == "success"


def test_parsing_the_examples_loads_no_database_driver() -> None:
    """The DAG processor parses every file often: drivers and SQL hooks wait for the task that uses them."""
    code = textwrap.dedent(
        f"""
        import runpy, sys
        for path in {sorted(str(EXAMPLES / name) for name in EXPECTED)!r}:
            runpy.run_path(path)
            print(path, sorted(m for m in sys.modules if m.startswith({DRIVERS!r})))
        """
    )
    result = subprocess.run(
        [sys.executable, "-c", code], capture_output=True, text=True, timeout=300, check=False
    )
    assert result.returncode == 0, result.stderr[-3000:]
    lines = [line for line in result.stdout.splitlines() if line.startswith(str(EXAMPLES))]
    assert len(lines) == len(EXPECTED)
    assert all(line.endswith(" []") for line in lines), lines


@pytest.mark.e2e
@pytest.mark.smoke
def test_to_postgres_example_builds_the_reachable_table(
    airflow_env: AirflowEnv, sandbox: WavySandbox, tmp_path: Path, request: pytest.FixtureRequest
) -> None:
    """Both files load into PostgreSQL; wavy_reachable holds the sessions' phones minus the opt-outs'."""
    pytest.importorskip(
        "airflow.providers.postgres",
        reason="example_wavy_to_postgres needs apache-airflow-providers-postgres, which the smoke venvs "
        "(pytest only) leave out: it runs on Airflow 3.3.2 and 2.11.2",
    )
    import psycopg

    pg_uri = request.getfixturevalue("pg_server").create_database("wavy_example")
    sandbox.scenario = Scenario(rows=25)
    sandbox.list_scenarios = {"OPTOUT": Scenario(rows=25, ready_after=1)}
    run = _run(
        airflow_env, sandbox, "example_wavy_to_postgres", tmp_path, AIRFLOW_CONN_POSTGRES_DEFAULT=pg_uri
    )

    sessions = sandbox.expected_bytes(SANDBOX_CUSTOMER)
    opt_outs = sandbox.expected_bytes(SANDBOX_CUSTOMER, list_type="OPTOUT")
    # Computed here from the served bytes, independently of the DAG's SQL.
    session_phones = [row[0] for row in csv.reader(io.StringIO(sessions.decode()), delimiter=";")][1:]
    opted_out = {row[0] for row in csv.reader(io.StringIO(opt_outs.decode()), delimiter=";")}
    expected = sorted(set(session_phones) - opted_out)
    assert 0 < len(expected) < len(session_phones)
    with psycopg.connect(pg_uri) as conn:
        reachable = [row[0] for row in conn.execute("SELECT phone FROM wavy_reachable ORDER BY phone")]
        snapshots = conn.execute("SELECT DISTINCT snapshot_at FROM wavy_reachable").fetchall()
        documented = sorted(row[2] for row in conn.execute(_documented_query()))
    assert reachable == expected
    assert documented == expected
    assert len(snapshots) == 1
    assert run.xcom("load_sessions")["rows"] == 25
    assert run.xcom("load_opt_outs")["mode"] == "replace"
    assert sandbox.list_calls["OPTOUT"] >= 2
    assert not sandbox.cdn_saw_credentials


def _documented_query() -> Any:
    """The query docs/sql.md offers to copy, under "Example: the reachable set"."""
    from psycopg import sql

    section = (REPO_ROOT / "docs" / "sql.md").read_text().split("## Example: the reachable set", 1)[1]
    return sql.SQL(section.split("```sql\n", 1)[1].split("```", 1)[0])  # type: ignore[arg-type]


def test_demo_explains_a_missing_example_without_traceback(
    tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    """The demo's errors are one plain message, not a traceback."""
    from airflow_provider_wavy import demo

    code = demo.main(["--dags-folder", str(tmp_path / "nowhere"), "--workdir", str(tmp_path / "demo")])
    err = capsys.readouterr().err
    assert code == 1
    assert "Cannot find example_wavy_daily.py" in err
    assert "Traceback" not in err


@pytest.mark.e2e
def test_demo_runs_the_daily_example_and_shows_the_csv(
    tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    """The README's first command: real Airflow, sandbox, and a short report of the CSV it wrote."""
    from airflow_provider_wavy import demo

    code = demo.main(["--workdir", str(tmp_path), "--date", LOGICAL_DATE, "--rows", "7"])
    out = capsys.readouterr().out
    assert code == 0, out
    csv_files = list((tmp_path / "data" / "open_sessions" / LOGICAL_DATE).glob("*.csv"))
    assert len(csv_files) == 1
    assert f"CSV:   {csv_files[0]}" in out
    assert "Rows:  7 open session(s)" in out
    assert "source" in out
    assert "session_created_at" in out
    assert len(out.splitlines()) <= 20, out  # short and friendly: Airflow's own output is in the log
