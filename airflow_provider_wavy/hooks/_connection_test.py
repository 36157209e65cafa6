"""Airflow's Test button for a ``wavy`` connection: one quick real request, answered as a message."""

from __future__ import annotations

from typing import TYPE_CHECKING

from airflow_provider_wavy.exceptions import WavyError, WavyRequestError
from airflow_provider_wavy.exports import OPEN_SESSIONS
from airflow_provider_wavy.timing import RetryPolicy

if TYPE_CHECKING:
    from airflow_provider_wavy.hooks.wavy import WavyHook


def test_connection(hook: WavyHook) -> tuple[bool, str]:
    """
    Check host and credentials with a real request (Airflow's Test button).

    :param hook: the hook of the connection to test.
    :return: whether the connection works, and a message saying what was found.
    """
    try:
        settings = hook.settings
        # One quick try: the Test button should answer in seconds, not after minutes of backoff.
        call = hook.export_call(
            OPEN_SESSIONS,
            settings.customer_id or "0",
            timeout=settings.timeout,
            policy=RetryPolicy(max_retries=0),
        )
        file_url = hook._run_call(call)
    except WavyRequestError as error:
        if settings.customer_id:
            return False, str(error)
        # Wavy checked the credentials before it looked at the made-up customer id.
        return True, (
            f"Connected to {settings.base_url} as {settings.username}: credentials accepted. The probe "
            f"customerId=0 was refused as expected ({error}); set the customer_id extra."
        )
    except (WavyError, ValueError) as error:
        return False, str(error)
    except Exception as error:  # noqa: BLE001 - the Test button must answer with a message, whatever happens
        return False, f"Unexpected {type(error).__name__} while testing the connection: {error}"
    probe = "" if settings.customer_id else " (no customer_id extra set: checked with customerId=0)"
    state = "a sessions file is ready" if file_url else "no sessions file yet"
    return True, f"Connected to {settings.base_url} as {settings.username}: {state}{probe}."


__all__ = ["test_connection"]
