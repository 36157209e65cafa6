"""
A local emulator of the Wavy (Sinch) open-sessions and lists API and its CDN, for tests and offline DAG runs.

Standard library only. Start it with ``python -m airflow_provider_wavy.sandbox`` or in Python::

    from airflow_provider_wavy.sandbox import Scenario, WavySandbox

    with WavySandbox(scenario=Scenario(rows=10)) as sb:
        print(sb.base_url, sb.connection_json())
"""

from __future__ import annotations

from airflow_provider_wavy.sandbox.data import csv_size, gzip_size, iter_csv_chunks, iter_gzip_chunks
from airflow_provider_wavy.sandbox.lists import LIST_TYPES, iter_list_chunks, list_phone, list_size
from airflow_provider_wavy.sandbox.scenario import Scenario
from airflow_provider_wavy.sandbox.server import (
    AUTH_ERROR_MESSAGE,
    DEFAULT_CUSTOMER_ID,
    DEFAULT_TOKEN,
    DEFAULT_USERNAME,
    RecordedRequest,
    WavySandbox,
)

__all__ = [
    "AUTH_ERROR_MESSAGE",
    "DEFAULT_CUSTOMER_ID",
    "DEFAULT_TOKEN",
    "DEFAULT_USERNAME",
    "LIST_TYPES",
    "RecordedRequest",
    "Scenario",
    "WavySandbox",
    "csv_size",
    "gzip_size",
    "iter_csv_chunks",
    "iter_gzip_chunks",
    "iter_list_chunks",
    "list_phone",
    "list_size",
]
