"""The provider as Airflow discovers it: entry point, provider info, connection type, form metadata."""

from __future__ import annotations

import importlib
import json
import os
import subprocess
import sys
from importlib.metadata import entry_points
from pathlib import Path

import pytest

import airflow_provider_wavy
from airflow_provider_wavy import CONN_FIELDS, UI_FIELD_BEHAVIOUR, get_provider_info

AIRFLOW = str(Path(sys.executable).parent / "airflow")


def test_entry_point_resolves_to_provider_info() -> None:
    (entry,) = [
        ep for ep in entry_points(group="apache_airflow_provider") if ep.value.startswith("airflow_provider")
    ]
    assert entry.load() is get_provider_info


def test_provider_info_names_every_module_and_they_import() -> None:
    info = get_provider_info()
    assert info["package-name"] == "airflow-provider-wavy"
    assert info["versions"] == [airflow_provider_wavy.__version__]
    modules = [
        m for kind in ("hooks", "sensors", "triggers", "operators") for m in info[kind][0]["python-modules"]
    ]
    assert modules == [
        f"airflow_provider_wavy.{kind}.wavy" for kind in ("hooks", "sensors", "triggers", "operators")
    ]
    (conn_type,) = info["connection-types"]
    module_name, _, class_name = conn_type["hook-class-name"].rpartition(".")
    hook_class = getattr(importlib.import_module(module_name), class_name)
    assert conn_type["connection-type"] == hook_class.conn_type == "wavy"
    assert conn_type["hook-name"] == hook_class.hook_name


def test_declarative_form_matches_the_python_form() -> None:
    from airflow_provider_wavy.hooks.wavy import WavyHook

    behaviour = WavyHook.get_ui_field_behaviour()
    assert behaviour["hidden_fields"] == UI_FIELD_BEHAVIOUR["hidden-fields"]
    assert behaviour["relabeling"] == UI_FIELD_BEHAVIOUR["relabeling"]
    assert behaviour["placeholders"] == UI_FIELD_BEHAVIOUR["placeholders"]
    for name, spec in CONN_FIELDS.items():
        assert spec["label"], name
        assert spec["description"], name
        assert "null" in spec["schema"]["type"], f"{name} must be optional"


def test_python_form_widgets_for_airflow_2() -> None:
    """Airflow 2.11 builds the form from wtforms widgets (Flask AppBuilder is not there on Airflow 3)."""
    pytest.importorskip("flask_appbuilder", reason="Airflow 3.2+ reads the declarative conn-fields instead")
    from airflow_provider_wavy.hooks.wavy import WavyHook

    widgets = WavyHook.get_connection_form_widgets()
    assert set(widgets) == set(CONN_FIELDS)
    assert {name: str(field.args[0]) for name, field in widgets.items()} == {
        name: spec["label"] for name, spec in CONN_FIELDS.items()
    }
    # Prefilled with the same defaults as the Airflow 3.2+ form (a number field is text in wtforms).
    assert {name: field.kwargs["default"] for name, field in widgets.items()} == {
        "customer_id": None,
        "sub_account_id": None,
        "timeout": "30",
        "max_retries": 3,
    }


def test_importing_the_package_is_cheap() -> None:
    """Airflow imports the package at every start-up: it must not pull Airflow, requests or httpx in."""
    code = (
        "import sys, airflow_provider_wavy; "
        "print(sorted(m for m in ('airflow', 'requests', 'httpx') if m in sys.modules))"
    )
    result = subprocess.run([sys.executable, "-c", code], check=True, capture_output=True, text=True)
    assert result.stdout.strip() == "[]"


@pytest.mark.e2e
def test_airflow_lists_the_provider_and_the_connection_type(tmp_path: Path) -> None:
    env = {
        "AIRFLOW_HOME": str(tmp_path),
        "PATH": str(Path(sys.executable).parent),
        "PYTHONWARNINGS": "ignore",
    }
    providers = subprocess.run(
        [AIRFLOW, "providers", "list", "-o", "json"], check=False, capture_output=True, text=True, env=env
    )
    assert providers.returncode == 0, providers.stderr[-2000:]
    listed = {p["package_name"]: p for p in json.loads(providers.stdout)}
    assert listed["airflow-provider-wavy"]["version"] == airflow_provider_wavy.__version__

    hooks = subprocess.run(
        [AIRFLOW, "providers", "hooks", "-o", "json"], check=False, capture_output=True, text=True, env=env
    )
    assert hooks.returncode == 0, hooks.stderr[-2000:]
    by_type = {h["connection_type"]: h for h in json.loads(hooks.stdout)}
    assert by_type["wavy"]["class"] == "airflow_provider_wavy.hooks.wavy.WavyHook"
    assert by_type["wavy"]["package_name"] == "airflow-provider-wavy"


def test_the_sql_transfer_imports_nothing_sql_when_a_dag_is_parsed() -> None:
    """DAG files import the transfer: drivers, common-sql and the CSV machinery wait for execute()."""
    code = (
        "import sys; from airflow.providers.common.compat.sdk import BaseOperator; "
        "before = set(sys.modules); import airflow_provider_wavy.transfers.wavy_to_sql; "
        "new = set(sys.modules) - before; "
        "heavy = sorted(n for n in new "
        "if n.split('.')[0] in ('psycopg', 'psycopg2', 'sqlite3', 'sqlalchemy', 'requests', 'httpx', 'csv') "
        "or n.startswith(('airflow.providers.common.sql', 'airflow.providers.postgres', "
        "'airflow.providers.sqlite', 'airflow_provider_wavy.hooks', 'airflow_provider_wavy.csv.checker', "
        "'airflow_provider_wavy.transfers._load', 'airflow_provider_wavy.transfers._postgres', "
        "'airflow_provider_wavy.transfers._generic', 'airflow_provider_wavy.transfers._rows'))); "
        "print(heavy)"
    )
    env = {**os.environ, "PYTHONWARNINGS": "ignore"}
    result = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, check=True, env=env)
    assert result.stdout.strip().splitlines()[-1] == "[]"
