"""
The Test button names the user's connection, never the throw-away id Airflow tests it under.

Airflow's Test button (2.11's ``POST /api/v1/connections/test``, 3.x's ``POST /api/v2/connections/test``)
builds a ``Connection`` with ``conn_id=get_random_string()``, exports it as ``AIRFLOW_CONN_<ID>`` and calls
``Connection.test_connection()``. These tests do exactly that against the sandbox.
"""

from __future__ import annotations

import json
import os
import subprocess
from typing import TYPE_CHECKING, Any

import pytest

from airflow_provider_wavy.settings import connection_name, is_test_button_id
from tests.conftest import SANDBOX_TOKEN, SANDBOX_USER, set_conn
from tests.e2e.airflow_runner import AIRFLOW

if TYPE_CHECKING:
    from airflow_provider_wavy.sandbox import WavySandbox

#: The id the issue reported (what get_random_string() gives: 8 letters and digits).
ISSUE_ID = "MyY10r3O"


def _button_test(monkeypatch: pytest.MonkeyPatch, conn_id: str, fields: dict[str, Any]) -> tuple[bool, str]:
    """Test a connection the way Airflow's connections/test route does."""
    from airflow.models.connection import Connection

    conn = Connection(conn_id=conn_id, **fields)
    monkeypatch.setenv(f"AIRFLOW_CONN_{conn_id.upper()}", conn.get_uri())
    status, message = conn.test_connection()  # type: ignore[no-untyped-call]
    return bool(status), str(message)


@pytest.mark.parametrize(
    ("changes", "ok", "expected"),
    [
        pytest.param(
            {"password": "wrong-token"}, False, "rejected the credentials of this connection", id="401"
        ),
        pytest.param(
            {"extra": {"timeout": "soon"}}, False, "This connection: extra 'timeout'", id="bad-extra"
        ),
        pytest.param({"login": ""}, False, "This connection has no Login", id="no-login"),
        pytest.param({}, True, "Connected to http://127.0.0.1", id="ok"),
    ],
)
@pytest.mark.parametrize(
    "conn_id", [pytest.param(ISSUE_ID, id="issue-id"), pytest.param("random", id="random")]
)
def test_test_button_names_no_throwaway_id(
    changes: dict[str, Any],
    ok: bool,
    expected: str,
    *,
    conn_id: str,
    sandbox: WavySandbox,
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    from airflow.utils.strings import get_random_string

    if conn_id == "random":
        conn_id = str(get_random_string())  # type: ignore[no-untyped-call]
        while conn_id.isalpha() and conn_id.islower():  # the one id in a thousand taken for the user's
            conn_id = str(get_random_string())  # type: ignore[no-untyped-call]
    fields = json.loads(sandbox.connection_json())
    fields.update({k: v for k, v in changes.items() if k != "extra"})
    fields["extra"] = json.dumps({**fields.get("extra", {}), **changes.get("extra", {})})
    status, message = _button_test(monkeypatch, conn_id, fields)
    assert (status, expected in message) == (ok, True), message
    assert conn_id not in message
    assert SANDBOX_TOKEN not in message


@pytest.mark.parametrize(
    ("conn_id", "in_env", "throwaway"),
    [
        pytest.param(ISSUE_ID, True, True, id="issue-id"),
        pytest.param("A1b2C3d4", True, True, id="mixed"),
        pytest.param("12345678", True, True, id="digits"),
        pytest.param(ISSUE_ID, False, False, id="not-exported"),
        pytest.param("wavyprod", True, False, id="lowercase-env-connection"),
        pytest.param("wavy_default", True, False, id="default"),
        pytest.param("MyY10r3Ox", True, False, id="nine-chars"),
    ],
)
def test_is_test_button_id(
    conn_id: str, in_env: bool, throwaway: bool, monkeypatch: pytest.MonkeyPatch
) -> None:
    if in_env:
        monkeypatch.setenv(f"AIRFLOW_CONN_{conn_id.upper()}", "wavy://u:p@h")
    else:
        monkeypatch.delenv(f"AIRFLOW_CONN_{conn_id.upper()}", raising=False)
    assert is_test_button_id(conn_id) is throwaway
    assert connection_name(conn_id) == ("this connection" if throwaway else f"connection {conn_id!r}")


def test_cli_connections_test_names_the_connection(
    sandbox: WavySandbox, monkeypatch: pytest.MonkeyPatch
) -> None:
    """``airflow connections test wavy_default`` (a real process) names the user's connection."""
    set_conn(monkeypatch, sandbox.connection_json(), password="wrong-token")
    env = {**os.environ, "AIRFLOW__CORE__TEST_CONNECTION": "Enabled", "PYTHONWARNINGS": "ignore"}
    result = subprocess.run(
        [AIRFLOW, "connections", "test", "wavy_default"],
        env=env,
        capture_output=True,
        text=True,
        timeout=180,
        check=False,
    )
    output = result.stdout + result.stderr
    assert "rejected the credentials of connection 'wavy_default'" in output, output[-3000:]
    assert SANDBOX_TOKEN not in output
    assert SANDBOX_USER  # the login may appear: it is not a secret
