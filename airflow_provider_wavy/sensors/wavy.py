"""Sensor waiting for the Wavy (Sinch) open-sessions file."""

from __future__ import annotations

import inspect
import time
from datetime import timedelta
from functools import cached_property
from typing import TYPE_CHECKING, Any

from airflow.providers.common.compat.sdk import BaseSensorOperator, PokeReturnValue, conf

if TYPE_CHECKING:
    from collections.abc import Sequence

    from airflow.providers.common.compat.sdk import Context

    from airflow_provider_wavy.exports import Export
    from airflow_provider_wavy.hooks.wavy import WavyHook


def exception_from_event(event: dict[str, Any]) -> Exception:
    """
    Rebuild the exception a trigger's ``error`` event stands for, of the class the sync path raises.

    :param event: the event payload, with ``error_class`` and ``message``.
    """
    from airflow_provider_wavy import exceptions

    name = str(event.get("error_class") or "WavyError")
    message = str(event.get("message") or "The Wavy trigger failed without a message.")
    cls = getattr(exceptions, name, None)
    if isinstance(cls, type) and issubclass(cls, exceptions.WavyError):
        return cls(message)
    return exceptions.WavyError(message)


def _shown(file_url: str) -> str:
    """Return the file URL as logs may show it: without its query string, where signatures live."""
    from airflow_provider_wavy.protocol import describe_url

    return describe_url(file_url)


#: Seconds Airflow's deferral timeout waits beyond the trigger's own deadline.
DEFERRAL_GRACE = 60


class WavyOpenSessionsSensor(BaseSensorOperator):
    """
    Wait until the Wavy API returns the open-sessions file URL, and return that URL (XCom).

    Waiting covers "no file yet" and transient failures (connection errors, timeouts, 420, 429, 5xx);
    authentication errors, a missing customer id and malformed answers fail the task at once, in every
    mode (and honour ``soft_fail``).

    :param customer_id: the customer id (templated); defaults to the connection's ``customer_id`` extra.
    :param sub_account_id: the sub-account id (templated); defaults to the connection's ``sub_account_id``.
    :param wavy_conn_id: the ``wavy`` connection to use.
    :param require_rows: also wait until the file can be downloaded and holds at least one data row (a
        header-only file means "keep waiting"); only the start of the file is read.
    :param deferrable: wait on the triggerer (``WavyOpenSessionsTrigger``) instead of a worker slot.
    """

    template_fields: Sequence[str] = ("customer_id", "sub_account_id")
    ui_color = "#25d366"

    def __init__(
        self,
        *,
        customer_id: str | None = None,
        sub_account_id: str | None = None,
        wavy_conn_id: str = "wavy_default",
        require_rows: bool = False,
        deferrable: bool = conf.getboolean("operators", "default_deferrable", fallback=False),
        **kwargs: Any,
    ) -> None:
        super().__init__(**kwargs)
        self.customer_id = customer_id
        self.sub_account_id = sub_account_id
        self.wavy_conn_id = wavy_conn_id
        self.require_rows = require_rows
        self.deferrable = deferrable
        self._first_poke_at: float | None = None

    @cached_property
    def hook(self) -> WavyHook:
        """Return the hook (imported on first use: DAG parsing never pays for requests)."""
        from airflow_provider_wavy.hooks.wavy import WavyHook

        return WavyHook(wavy_conn_id=self.wavy_conn_id)

    def _time_left(self) -> float:
        """Return the seconds left of the sensor's own timeout: no call of a poke may wait past it."""
        now = time.monotonic()
        if self._first_poke_at is None:
            self._first_poke_at = now
        return max(0.0, float(self.timeout) - (now - self._first_poke_at))

    def poke(self, context: Context) -> PokeReturnValue:
        """Ask the API once (with the hook's retries); done when there is a file URL (with rows, if asked)."""
        from airflow_provider_wavy.exceptions import WavyTransientError

        export = self._export()
        try:
            file_url = self.hook.get_export_file_url(
                export, self.customer_id, self.sub_account_id, timeout=self._time_left()
            )
        except WavyTransientError as error:
            self.log.warning("Wavy: %s Still waiting.", error)
            return PokeReturnValue(is_done=False)
        if file_url is None:
            self.log.info("No Wavy %s file yet.", export.title)
            return PokeReturnValue(is_done=False)
        if self.require_rows and not self._file_has_rows(file_url, export):
            return PokeReturnValue(is_done=False)
        self.log.info("Wavy %s file is ready: %s", export.title, _shown(file_url))
        return PokeReturnValue(is_done=True, xcom_value=file_url)

    def _export(self) -> Export:
        """Return what this sensor waits for (the open sessions; a list for ``WavyListSensor``)."""
        from airflow_provider_wavy.exports import OPEN_SESSIONS

        return OPEN_SESSIONS

    def _trigger_kwargs(self) -> dict[str, Any]:
        return {}

    def _file_has_rows(self, file_url: str, export: Export) -> bool:
        from airflow_provider_wavy.exceptions import WavyDownloadError, WavyTransientError

        try:
            # Stop at the first data row: the sensor needs to know, the operator downloads.
            has_rows = self.hook.file_has_rows(file_url, timeout=self._time_left(), export=export)
        except (WavyDownloadError, WavyTransientError) as error:
            # The CDN may lag behind the API (403/404 for a while): that is "not ready yet".
            self.log.warning("Wavy: %s Still waiting.", error)
            return False
        if not has_rows:
            self.log.info("The Wavy %s file has no data row yet (header only); still waiting.", export.title)
        return has_rows

    def execute(self, context: Context) -> Any:
        """Poke (or reschedule) as any sensor, or defer the whole wait to the triggerer."""
        if not self.deferrable:
            # The base class's poke loop, without its executor-safeguard wrapper: that check already ran
            # for this call, and Airflow 2.11's wrapper, unlike Airflow 3's, does not recognise a super()
            # call from a subclass (it logs "execute cannot be called outside TaskInstance!", and fails the
            # task with allow_nested_operators=False).
            return inspect.unwrap(BaseSensorOperator.execute)(self, context)
        from airflow_provider_wavy.triggers.wavy import WavyOpenSessionsTrigger

        self.defer(
            trigger=WavyOpenSessionsTrigger(
                wavy_conn_id=self.wavy_conn_id,
                customer_id=self.customer_id,
                sub_account_id=self.sub_account_id,
                require_rows=self.require_rows,
                poke_interval=self.poke_interval,
                exponential_backoff=self.exponential_backoff,
                max_wait=self.max_wait.total_seconds() if self.max_wait else None,
                # Its own deadline: the deferral timeout is not enforced everywhere (dag.test) or promptly.
                deadline=time.time() + self.timeout,
                **self._trigger_kwargs(),
            ),
            method_name="execute_complete",
            # A grace period, so that the trigger's own deadline fires first: its timeout event becomes
            # AirflowSensorTimeout (or a skip with soft_fail) on every version, where Airflow 2.11 would
            # turn its own deferral timeout into a plain task failure that spends the task's retries.
            timeout=timedelta(seconds=self.timeout + DEFERRAL_GRACE),
        )
        return None  # pragma: no cover - defer() raises

    def execute_complete(self, context: Context, event: dict[str, Any] | None = None) -> str:
        """
        Finish after the trigger: return the file URL, or raise what the sync path would have raised.

        :param context: the task context.
        :param event: the trigger's event payload.
        """
        from airflow.providers.common.compat.sdk import AirflowSensorTimeout, AirflowSkipException

        status = (event or {}).get("status")
        if status == "success" and event is not None and event.get("file_url"):
            file_url = str(event["file_url"])
            self.log.info("Wavy %s file is ready: %s", self._export().title, _shown(file_url))
            return file_url
        if status == "timeout" and event is not None:
            message = str(event.get("message") or "Sensor has timed out.")
            if self.soft_fail:
                raise AirflowSkipException(message)
            raise AirflowSensorTimeout(message)
        raise exception_from_event(event or {"message": "The Wavy trigger ended without an event."})


class WavyListSensor(WavyOpenSessionsSensor):
    """
    Wait until the Wavy API returns a list's file URL (``GET /v1/list/{list_type}``), and return that URL.

    Everything :class:`WavyOpenSessionsSensor` offers (poke, reschedule, deferrable, ``require_rows``,
    ``soft_fail``) works the same. A list with nothing in it (an answer without ``data``) means "keep
    waiting", as a missing sessions file does.

    :param list_type: ``OPTOUT``, ``OPTIN``, ``BLACKLIST`` or ``WHITELIST``, in any case (templated); also
        a :class:`~airflow_provider_wavy.exports.WavyListType`.
    """

    template_fields: Sequence[str] = ("list_type", *WavyOpenSessionsSensor.template_fields)

    def __init__(self, *, list_type: str, **kwargs: Any) -> None:
        from airflow_provider_wavy.exports import check_list_type

        super().__init__(**kwargs)
        check_list_type(list_type)
        self.list_type = list_type

    def _export(self) -> Export:
        from airflow_provider_wavy.exports import list_export

        return list_export(self.list_type)

    def _trigger_kwargs(self) -> dict[str, Any]:
        return {"list_type": self._export().list_type}


__all__ = ["WavyListSensor", "WavyOpenSessionsSensor"]
