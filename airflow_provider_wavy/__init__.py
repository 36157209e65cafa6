"""
Apache Airflow provider for the Wavy (Sinch) Messaging WhatsApp open-sessions API.

Airflow imports this module whenever it discovers providers, so it holds plain data only.
"""

from __future__ import annotations

from typing import Any

__version__ = "0.1.0"

CONN_TYPE = "wavy"
HOOK_NAME = "Wavy (Sinch) Messaging"

#: The connection form, declared once: the provider info carries it for Airflow >= 3.2 (which reads it
#: without importing the hook) and the hook turns it into wtforms widgets for Airflow 2.11.
UI_FIELD_BEHAVIOUR: dict[str, Any] = {
    # The port stays visible: Airflow 3's Test action posts the stored port (0 when there is none) and the
    # API server refuses a port that differs from the stored one (docs/troubleshooting-ui.md).
    "hidden-fields": ["schema", "extra"],
    "relabeling": {
        "host": "API base URL",
        "port": "Port",
        "login": "UserName",
        "password": "Authentication token",
    },
    "placeholders": {
        "host": "https://api-messaging.wavy.global (leave empty for this default)",
        "port": "443 for https, 80 for http, or the port in the URL (Airflow 3's Test button needs it)",
        "login": "Wavy UserName from the messaging portal",
        "password": "Wavy authentication token",
    },
}

CONN_FIELDS: dict[str, dict[str, Any]] = {
    "customer_id": {
        "label": "Customer ID",
        "description": "Default customerId for every sensor and operator using this connection.",
        "schema": {"type": ["string", "null"]},
    },
    "sub_account_id": {
        "label": "Sub-account ID",
        "description": "Default subAccountId (optional; left out of the request when empty).",
        "schema": {"type": ["string", "null"]},
    },
    "timeout": {
        "label": "Timeout (seconds)",
        "description": "Seconds to wait to connect and between bytes of an answer. Default 30.",
        "schema": {"type": ["number", "null"], "exclusiveMinimum": 0, "default": 30},
    },
    "max_retries": {
        "label": "Max retries",
        "description": "Retries of connection errors, timeouts, 420, 429 and 5xx, with backoff. Default 3.",
        "schema": {"type": ["integer", "null"], "minimum": 0, "default": 3},
    },
}


def get_provider_info() -> dict[str, Any]:
    """Describe the provider to Airflow (the ``apache_airflow_provider`` entry point)."""
    return {
        "package-name": "airflow-provider-wavy",
        "name": "Wavy (Sinch) Messaging",
        "description": "Sensor, operator, trigger and hook for the Wavy (Sinch) WhatsApp open-sessions API.",
        "versions": [__version__],
        "integrations": [
            {
                "integration-name": HOOK_NAME,
                "external-doc-url": "https://docs.sinch.com/",
                "tags": ["service"],
            }
        ],
        "hooks": [{"integration-name": HOOK_NAME, "python-modules": ["airflow_provider_wavy.hooks.wavy"]}],
        "sensors": [
            {"integration-name": HOOK_NAME, "python-modules": ["airflow_provider_wavy.sensors.wavy"]}
        ],
        "triggers": [
            {"integration-name": HOOK_NAME, "python-modules": ["airflow_provider_wavy.triggers.wavy"]}
        ],
        "operators": [
            {"integration-name": HOOK_NAME, "python-modules": ["airflow_provider_wavy.operators.wavy"]}
        ],
        "connection-types": [
            {
                "connection-type": CONN_TYPE,
                "hook-class-name": "airflow_provider_wavy.hooks.wavy.WavyHook",
                "hook-name": HOOK_NAME,
                "ui-field-behaviour": UI_FIELD_BEHAVIOUR,
                "conn-fields": CONN_FIELDS,
            }
        ],
    }
