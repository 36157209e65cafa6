"""The provider hands the secrets masker the token only: no short, non-secret extra, no UserName."""

from __future__ import annotations

import json

import pytest

from airflow_provider_wavy.settings import WavySettings
from tests.e2e.airflow_runner import airflow_major


@pytest.mark.skipif(airflow_major() < 3, reason="Airflow 2.11's masker skips short values without a warning")
def test_reading_settings_masks_no_short_extra(caplog: pytest.LogCaptureFixture) -> None:
    from airflow.providers.common.compat.sdk import Connection
    from airflow.sdk._shared.secrets_masker.secrets_masker import SecretsMasker

    conn = Connection(
        conn_id="wavy_short_extras",
        conn_type="wavy",
        host="http://127.0.0.1:9",
        login="usr",
        password="a-long-enough-token",
        extra=json.dumps({"customer_id": "1001", "sub_account_id": "7", "timeout": "30"}),
    )
    # The masker warns once per process: start from a clean slate, as a fresh task process does.
    SecretsMasker._has_warned_short_secret = False
    caplog.set_level("WARNING")
    settings = WavySettings.from_airflow_connection(conn, conn_id=conn.conn_id)
    assert (settings.customer_id, settings.sub_account_id, settings.timeout) == ("1001", "7", 30.0)
    assert "too short" not in caplog.text
