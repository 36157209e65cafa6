"""The error hierarchy: which errors end a task at once and which ones Airflow may retry."""

from __future__ import annotations

import inspect
import sys
from typing import TYPE_CHECKING, Any

import pytest
from airflow.providers.common.compat.sdk import (
    AirflowException,
    AirflowFailException,
    AirflowSkipException,
    BaseSensorOperator,
)

from airflow_provider_wavy import exceptions
from airflow_provider_wavy.exceptions import (
    WavyAuthenticationError,
    WavyConfigurationError,
    WavyDataLocationError,
    WavyDownloadError,
    WavyError,
    WavyFatalError,
    WavyRedirectError,
    WavyRequestError,
    WavyResponseError,
    WavySqlError,
    WavySqlHookError,
    WavyTimestampError,
    WavyTransientError,
)

if TYPE_CHECKING:
    from airflow.providers.common.compat.sdk import Context

ERRORS = [
    pytest.param(WavyConfigurationError, True, id="configuration-fatal"),
    pytest.param(WavyAuthenticationError, True, id="authentication-fatal"),
    pytest.param(WavyRequestError, True, id="request-fatal"),
    pytest.param(WavyResponseError, True, id="response-fatal"),
    pytest.param(WavyRedirectError, True, id="redirect-fatal"),
    pytest.param(WavyTransientError, False, id="transient-retryable"),
    pytest.param(WavyDownloadError, False, id="download-retryable"),
    pytest.param(WavyDataLocationError, True, id="data-location-fatal"),
    pytest.param(WavyTimestampError, True, id="timestamp-fatal"),
    pytest.param(WavySqlHookError, True, id="sql-hook-fatal"),
    pytest.param(WavySqlError, False, id="sql-retryable"),
]


def _sensor_fail_exception() -> type[BaseException]:
    """Return the ``AirflowFailException`` that this Airflow's sensor base class catches for soft_fail."""
    # Airflow 3 catches the Task SDK's class, Airflow 2 the core one: ask the module that does the catching.
    found: type[BaseException] = sys.modules[BaseSensorOperator.__module__].AirflowFailException
    return found


class _FailingSensor(BaseSensorOperator):  # type: ignore[misc]
    """A sensor whose every poke raises the error it was given."""

    def __init__(self, *, error: BaseException, **kwargs: Any) -> None:
        super().__init__(**kwargs)
        self.error = error

    def poke(self, context: Context) -> bool:
        """Raise the configured error."""
        raise self.error


@pytest.mark.parametrize(("error_class", "fatal"), ERRORS)
def test_every_error_is_a_wavy_error_and_an_airflow_exception(
    error_class: type[WavyError], fatal: bool
) -> None:
    error = error_class("what is wrong; what to do")

    assert isinstance(error, WavyError)
    assert isinstance(error, AirflowException)
    assert str(error) == "what is wrong; what to do"


@pytest.mark.parametrize(("error_class", "fatal"), ERRORS)
def test_only_fatal_errors_skip_retries(error_class: type[WavyError], fatal: bool) -> None:
    assert issubclass(error_class, AirflowFailException) is fatal
    assert issubclass(error_class, WavyFatalError) is fatal
    assert issubclass(error_class, _sensor_fail_exception()) is fatal


@pytest.mark.parametrize(("error_class", "fatal"), ERRORS)
def test_soft_fail_sensor_skips_only_on_fatal_errors(error_class: type[WavyError], fatal: bool) -> None:
    error = error_class("boom")
    sensor = _FailingSensor(
        error=error, task_id="wait", soft_fail=True, mode="poke", poke_interval=0, timeout=5
    )

    if fatal:
        with pytest.raises(AirflowSkipException) as skipped:
            sensor.execute({})
        assert skipped.value.__cause__ is error
    else:
        with pytest.raises(error_class) as raised:
            sensor.execute({})
        assert raised.value is error


def test_the_table_covers_every_error_class() -> None:
    # A new error class must be placed on one side of the retry line here, not fall on one by accident.
    defined = {
        cls
        for _, cls in inspect.getmembers(exceptions, inspect.isclass)
        if issubclass(cls, WavyError) and cls.__module__ == exceptions.__name__
    }
    tabled = {param.values[0] for param in ERRORS}

    assert defined - {WavyError, WavyFatalError} == tabled
