"""
The smoke set: what the version matrix checks on every Airflow 3 minor (``pytest -m smoke``).

scripts/test.sh runs the whole suite on Airflow 3.3.2 and 2.11.2, and this set (plus the example DAG runs in
tests/test_example_dags.py, marked ``smoke`` too) on the latest patch of 3.0, 3.1 and 3.2: the provider is
discovered, the API server serves its connection form, and a trigger survives Airflow's own round trip.
"""

from __future__ import annotations

import asyncio
import importlib
import json
import os
import subprocess
import sys
import time
import warnings
from importlib.metadata import version
from typing import Any

import pytest

import airflow_provider_wavy
from airflow_provider_wavy import CONN_FIELDS, CONN_TYPE, HOOK_NAME, UI_FIELD_BEHAVIOUR
from airflow_provider_wavy.sandbox import Scenario, WavySandbox
from tests.triggers.test_wavy import first_event

# Real Airflow processes: the version matrix and the full run, not the fast tier.
pytestmark = [pytest.mark.smoke, pytest.mark.slow]

AIRFLOW_VERSION = tuple(int(part) for part in version("apache-airflow").split(".")[:2])
#: From 3.2 on, Airflow builds the form from the provider info's conn-fields; before, from the hook's
#: wtforms widgets, through Airflow's mocked wtforms (3.1) or the FAB provider's (3.0).
DECLARATIVE_FORM = (3, 2)


def test_providers_manager_discovers_the_provider_and_the_wavy_hook() -> None:
    from airflow.providers_manager import ProvidersManager

    manager = ProvidersManager()  # type: ignore[no-untyped-call]
    with warnings.catch_warnings():
        # 3.2+ points task code at the task SDK's manager; the API server still reads this one.
        warnings.simplefilter("ignore")
        providers, hooks = manager.providers, manager.hooks
    assert providers["airflow-provider-wavy"].version == airflow_provider_wavy.__version__
    hook = hooks[CONN_TYPE]
    assert hook is not None
    assert hook.hook_class_name == "airflow_provider_wavy.hooks.wavy.WavyHook"
    assert hook.package_name == "airflow-provider-wavy"
    assert hook.hook_name == HOOK_NAME


#: Builds the form the way ``GET /ui/connections/hook_meta`` does, and prints the ``wavy`` entry as JSON.
SERVED_FORM = """
import json, sys
from airflow.api_fastapi.core_api.services.ui.connections import HookMetaService
metas = [m for m in HookMetaService.hook_meta_data() if m.connection_type == sys.argv[1]]
print(json.dumps([m.model_dump(mode="json", by_alias=True) for m in metas]))
"""


def _served_form() -> dict[str, Any]:
    """Return the ``wavy`` entry of the API server's connection form metadata."""
    pytest.importorskip(
        "airflow.api_fastapi", reason="Airflow 2.11 has no API server; tests/test_init.py checks its form"
    )
    # A fresh process, as an API server's first request: on 3.1 the service returns a form without fields
    # once ProvidersManager.field_behaviours was read in the same process (other tests do).
    result = subprocess.run(
        [sys.executable, "-c", SERVED_FORM, CONN_TYPE],
        check=False,
        capture_output=True,
        text=True,
        timeout=120,
        env={**os.environ, "PYTHONWARNINGS": "ignore"},
    )
    assert result.returncode == 0, result.stderr[-3000:]
    metas = json.loads(result.stdout.strip().splitlines()[-1])
    assert len(metas) == 1, "no wavy connection type in the form metadata"
    form: dict[str, Any] = metas[0]
    return form


def test_connection_form_metadata_as_the_api_server_serves_it() -> None:
    form = _served_form()
    assert form["hook_name"] == HOOK_NAME
    assert form["hook_class_name"] == "airflow_provider_wavy.hooks.wavy.WavyHook"
    standard = form["standard_fields"]
    for name, label in UI_FIELD_BEHAVIOUR["relabeling"].items():
        assert standard[name]["title"] == label, name
        assert standard[name]["placeholder"] == UI_FIELD_BEHAVIOUR["placeholders"][name], name
        assert standard[name]["hidden"] is False, name
    # The UI calls the schema field url_schema; "extra" stays visible on 3.x whatever the provider says.
    assert standard["url_schema"]["hidden"] is True
    # Shown: Airflow 3's Test action needs a stored port (docs/troubleshooting-ui.md).
    assert standard["port"]["hidden"] is False
    extra = form["extra_fields"]
    assert extra is not None, "no extra fields: on Airflow 3.0 install apache-airflow-providers-fab"
    assert set(extra) == set(CONN_FIELDS)
    for name, spec in CONN_FIELDS.items():
        served = extra[name]
        assert served["description"] == spec["description"], name
        assert served["schema"].pop("title") == spec["label"], name
        if AIRFLOW_VERSION >= DECLARATIVE_FORM:
            assert served["schema"] == spec["schema"], name
            assert served["value"] == spec["schema"].get("default"), name
        else:
            # wtforms has no number field Airflow maps: a number is a text field, its default text.
            kind = "integer" if spec["schema"]["type"][0] == "integer" else "string"
            assert served["schema"] == {"type": [kind, "null"]}, name
            default = spec["schema"].get("default")
            assert served["value"] == (str(default) if kind == "string" and default else default), name


def test_trigger_survives_airflows_round_trip_and_runs(sandbox: WavySandbox) -> None:
    """The triggerer stores the trigger as a database row, rebuilds it from the row and runs it."""
    from airflow.models.trigger import Trigger

    from airflow_provider_wavy.triggers.wavy import WavyOpenSessionsTrigger

    sandbox.scenario = Scenario(ready_after=1)
    row = Trigger.from_object(
        WavyOpenSessionsTrigger(poke_interval=0.05, backoff_base=0.01, deadline=time.time() + 30)
    )
    module_name, _, class_name = row.classpath.rpartition(".")
    rebuilt = getattr(importlib.import_module(module_name), class_name)(**row.kwargs)

    event = asyncio.run(first_event(rebuilt))

    assert event["status"] == "success", event
    assert event["file_url"].startswith(sandbox.cdn_url)
    assert sandbox.api_calls == 2, "one 'not yet' answer, then the URL"
