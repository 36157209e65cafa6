"""Run DAGs in a real Airflow, the way users do: ``airflow db migrate`` then ``airflow dags test``."""

from __future__ import annotations

import json
import os
import shutil
import sqlite3
import subprocess
import sys
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

BIN_DIR = Path(sys.executable).parent
AIRFLOW = str(BIN_DIR / "airflow")
LOGICAL_DATE = "2026-11-23"


def airflow_major() -> int:
    """Return the major version of the Airflow installed next to this interpreter."""
    from importlib.metadata import version

    return int(version("apache-airflow").split(".")[0])


@dataclass
class DagRun:
    """What one ``airflow dags test`` did: its exit code, output, task states and XComs."""

    returncode: int
    output: str
    states: dict[str, str] = field(default_factory=dict)
    xcoms: dict[tuple[str, str], Any] = field(default_factory=dict)

    def xcom(self, task_id: str, key: str = "return_value") -> Any:
        """Return one XCom value (the first map index for mapped tasks)."""
        return self.xcoms[(task_id, key)]


class AirflowEnv:
    """
    A private Airflow home with a migrated SQLite database and a dags folder.

    :param home: the directory to use as ``AIRFLOW_HOME`` (created if needed).
    """

    def __init__(self, home: Path) -> None:
        self.home = home
        self.dags_folder = home / "dags"
        self.dags_folder.mkdir(parents=True, exist_ok=True)
        self.db_path = home / "airflow.db"

    def env(self, **extra: str) -> dict[str, str]:
        """Return the environment for an ``airflow`` command in this home."""
        env = {k: v for k, v in os.environ.items() if not k.startswith(("AIRFLOW_", "AIRFLOW__"))}
        env.update(
            {
                "AIRFLOW_HOME": str(self.home),
                "AIRFLOW__CORE__DAGS_FOLDER": str(self.dags_folder),
                "AIRFLOW__CORE__LOAD_EXAMPLES": "False",
                "AIRFLOW__DATABASE__SQL_ALCHEMY_CONN": f"sqlite:///{self.db_path}",
                "AIRFLOW__CORE__EXECUTOR": "SequentialExecutor" if airflow_major() == 2 else "LocalExecutor",
                "PATH": f"{BIN_DIR}{os.pathsep}{env.get('PATH', '')}",
                "PYTHONWARNINGS": "ignore",
            }
        )
        env.update(extra)
        return env

    def airflow(self, *args: str, timeout: float = 300, **env: str) -> subprocess.CompletedProcess[str]:
        """Run an ``airflow`` CLI command in this home."""
        return subprocess.run(
            [AIRFLOW, *args],
            check=False,
            env=self.env(**env),
            capture_output=True,
            text=True,
            timeout=timeout,
        )

    def migrate(self) -> None:
        """Create the metadata database."""
        result = self.airflow("db", "migrate")
        if result.returncode != 0:
            output = result.stdout[-3000:] + result.stderr[-3000:]
            raise RuntimeError(f"airflow db migrate failed:\n{output}")

    def add_dag(self, source: Path, name: str | None = None) -> Path:
        """Copy a DAG file into the dags folder."""
        target = self.dags_folder / (name or source.name)
        shutil.copyfile(source, target)
        return target

    def write_dag(self, name: str, code: str) -> Path:
        """Write a DAG file into the dags folder."""
        target = self.dags_folder / name
        target.write_text(code)
        return target

    def dags_test(
        self, dag_id: str, *, logical_date: str = LOGICAL_DATE, timeout: float = 300, **env: str
    ) -> DagRun:
        """Run ``airflow dags test`` and read back the run's task states and XComs."""
        result = self.airflow("dags", "test", dag_id, logical_date, timeout=timeout, **env)
        run = DagRun(returncode=result.returncode, output=result.stdout + result.stderr)
        run.states, run.xcoms = self._read_run(dag_id)
        return run

    def _read_run(self, dag_id: str) -> tuple[dict[str, str], dict[tuple[str, str], Any]]:
        if not self.db_path.exists():
            return {}, {}
        with sqlite3.connect(self.db_path) as db:
            # The latest run of this DAG: every dags test run gets a new run id.
            row = db.execute(
                "SELECT run_id FROM dag_run WHERE dag_id = ? ORDER BY id DESC LIMIT 1", (dag_id,)
            ).fetchone()
            if row is None:
                return {}, {}
            run_id = row[0]
            states = {
                task_id: state
                for task_id, state, _map_index in db.execute(
                    "SELECT task_id, state, map_index FROM task_instance "
                    "WHERE dag_id = ? AND run_id = ? ORDER BY map_index DESC",
                    (dag_id, run_id),
                )
            }
            xcoms: dict[tuple[str, str], Any] = {}
            for task_id, key, value in db.execute(
                "SELECT task_id, key, value FROM xcom "
                "WHERE dag_id = ? AND run_id = ? ORDER BY map_index DESC",
                (dag_id, run_id),
            ):
                xcoms[(task_id, key)] = _decode_xcom(value)
        return states, xcoms

    def task_log_text(self) -> str:
        """Return every task log file under this home, concatenated."""
        logs = self.home / "logs"
        if not logs.exists():
            return ""
        return "\n".join(p.read_text(errors="replace") for p in sorted(logs.rglob("*")) if p.is_file())


def _decode_xcom(value: Any) -> Any:
    # Airflow 3 stores XCom as JSON text; Airflow 2 as the bytes of a JSON document.
    if isinstance(value, bytes | memoryview):
        value = bytes(value).decode()
    if isinstance(value, str):
        try:
            decoded = json.loads(value)
        except ValueError:
            return value
        # Airflow 3 may store a JSON string holding the serialized value.
        if isinstance(decoded, str):
            try:
                return json.loads(decoded)
            except ValueError:
                return decoded
        return decoded
    return value
