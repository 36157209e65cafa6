"""Trigger waiting for the Wavy open-sessions file: deadline, polling and events over ``WavyAsyncHook``."""

from __future__ import annotations

import asyncio
import logging
import math
import time
from datetime import UTC, datetime
from functools import cached_property
from typing import TYPE_CHECKING, Any

from airflow.triggers.base import BaseTrigger, TriggerEvent

from airflow_provider_wavy.exceptions import (
    WavyDownloadError,
    WavyError,
    WavyTransientError,
)
from airflow_provider_wavy.exports import OPEN_SESSIONS, list_export
from airflow_provider_wavy.hooks._httpx_client import shared_ssl_context, start_gate
from airflow_provider_wavy.hooks.wavy_async import WavyAsyncHook, describe_transport_error
from airflow_provider_wavy.timing import BACKOFF_BASE
from airflow_provider_wavy.urls import describe_url, redact

if TYPE_CHECKING:
    from collections.abc import AsyncIterator

#: The shortest pause between two polls, whatever ``poke_interval`` says: a trigger never spins.
MIN_POLL_INTERVAL = 0.1


class WavyOpenSessionsTrigger(BaseTrigger):
    """
    Wait on the triggerer until the Wavy API returns an open-sessions file URL (and, optionally, rows in it).

    Yields exactly one event, a dict with ``status``:

    - ``"success"`` with ``file_url``;
    - ``"error"`` with ``error_class`` (a class name from ``airflow_provider_wavy.exceptions``) and
      ``message``: authentication errors, a missing customer id, a malformed answer;
    - ``"timeout"`` with ``message``, once ``deadline`` has passed.

    Transient failures (connection errors, timeouts, 420, 429, 5xx, a file not yet on the CDN) are retried
    with backoff inside the trigger until the deadline.

    :param wavy_conn_id: the ``wavy`` connection to use.
    :param customer_id: the customer id; None for the connection's ``customer_id`` extra.
    :param sub_account_id: the sub-account id; None for the connection's ``sub_account_id`` extra.
    :param require_rows: also wait until the file holds at least one data row.
    :param poke_interval: seconds between two polls.
    :param exponential_backoff: double the pause after each poll that found nothing.
    :param max_wait: the longest pause between polls with ``exponential_backoff``, in seconds.
    :param deadline: the absolute time (epoch seconds) after which a ``timeout`` event is yielded.
    :param backoff_base: the first pause between retries of a transient failure, in seconds.
    :param list_type: wait for a list (``OPTOUT``, ``OPTIN``, ``BLACKLIST``, ``WHITELIST``) instead of the
        open sessions.
    """

    def __init__(
        self,
        *,
        wavy_conn_id: str = "wavy_default",
        customer_id: str | None = None,
        sub_account_id: str | None = None,
        require_rows: bool = False,
        poke_interval: float = 60.0,
        exponential_backoff: bool = False,
        max_wait: float | None = None,
        deadline: float | None = None,
        backoff_base: float = BACKOFF_BASE,
        list_type: str | None = None,
    ) -> None:
        super().__init__()  # type: ignore[no-untyped-call]
        if deadline is not None and not math.isfinite(deadline):
            raise ValueError(f"deadline must be a finite epoch time in seconds, got {deadline!r}")
        self.export = OPEN_SESSIONS if list_type is None else list_export(list_type)
        self.list_type = None if list_type is None else str(list_type).strip().upper()
        self.wavy_conn_id = wavy_conn_id
        self.customer_id = customer_id
        self.sub_account_id = sub_account_id
        self.require_rows = require_rows
        self.poke_interval = float(poke_interval)
        self.exponential_backoff = exponential_backoff
        self.max_wait = None if max_wait is None else float(max_wait)
        self.deadline = None if deadline is None else float(deadline)
        self.backoff_base = float(backoff_base)
        #: The token to mask in error events, once the connection has been read.
        self._token: str | None = None

    def serialize(self) -> tuple[str, dict[str, Any]]:
        """Return the class path and JSON-safe kwargs: ids and timings, never the token (read at run time)."""
        return (
            f"{type(self).__module__}.{type(self).__qualname__}",
            {
                "wavy_conn_id": self.wavy_conn_id,
                "customer_id": self.customer_id,
                "sub_account_id": self.sub_account_id,
                "require_rows": self.require_rows,
                "poke_interval": self.poke_interval,
                "exponential_backoff": self.exponential_backoff,
                "max_wait": self.max_wait,
                "deadline": self.deadline,
                "backoff_base": self.backoff_base,
                **({"list_type": self.list_type} if self.list_type is not None else {}),
            },
        )

    # -- the wait -------------------------------------------------------------------------------------------

    @cached_property
    def hook(self) -> WavyAsyncHook:
        """Return the async hook, the trigger's only door to Wavy."""
        return WavyAsyncHook(wavy_conn_id=self.wavy_conn_id, backoff_base=self.backoff_base)

    async def run(self) -> AsyncIterator[TriggerEvent]:
        """Poll until the file is there, a fatal error happens or the deadline passes; yield one event."""
        try:
            event = await self._wait()
        except WavyError as error:
            event = self._error_event(type(error).__name__, str(error))
        except Exception as error:  # noqa: BLE001 - the task must fail with a message, not hang deferred
            event = self._error_event(
                "WavyError",
                f"Unexpected {type(error).__name__} while waiting for the Wavy {self.export.title} file: "
                f"{error}",
            )
        yield TriggerEvent(event)  # type: ignore[no-untyped-call]

    def _error_event(self, error_class: str, message: str) -> dict[str, Any]:
        # Messages are masked where they are made; this is the last guard before the event is stored.
        return {"status": "error", "error_class": error_class, "message": redact(message, self._token)}

    def _timeout_event(self) -> dict[str, Any]:
        what = "with data rows " if self.require_rows else ""
        when = datetime.fromtimestamp(self.deadline or 0, UTC).isoformat(timespec="seconds")
        return {
            "status": "timeout",
            "message": (
                f"Sensor has timed out: no Wavy {self.export.title} file {what}by the deadline {when}."
            ),
        }

    def _remaining(self) -> float:
        return math.inf if self.deadline is None else self.deadline - time.time()

    def _interval(self, polls: int) -> float:
        interval = self.poke_interval
        if self.exponential_backoff:
            interval = self.poke_interval * 2 ** min(polls - 1, 30)
            if self.max_wait is not None:
                interval = min(interval, self.max_wait)
        return max(interval, MIN_POLL_INTERVAL)

    async def _wait(self) -> dict[str, Any]:
        if self._remaining() <= 0:
            return self._timeout_event()
        hook = self.hook
        # Reading the connection and building requests is CPU work: when a triggerer starts a thousand of
        # these at once, the gate lets a few through at a time instead of freezing the loop for seconds.
        async with start_gate():
            settings = await hook.get_settings()
            self._token = settings.token
            # Fail at once on a missing customer id, before any request.
            settings.resolve_ids(self.customer_id, self.sub_account_id)
        async with hook.keep_client():
            return await self._poll_until_done(hook, settings.timeout)

    async def _poll_until_done(self, hook: WavyAsyncHook, request_timeout: float) -> dict[str, Any]:
        polls = 0
        last_look = False
        while True:
            polls += 1
            # The last look, at the deadline, gets one request's time, as a sync sensor's last poke does.
            budget = request_timeout if last_look else self._remaining()
            if budget <= 0:
                return self._timeout_event()
            try:
                async with asyncio.timeout(None if math.isinf(budget) else budget):
                    file_url = await self._poll(hook, polls)
            except TimeoutError:
                return self._timeout_event()
            if file_url is not None:
                self.log.info("Wavy %s file is ready: %s", self.export.title, describe_url(file_url))
                return {"status": "success", "file_url": file_url}
            if last_look:
                return self._timeout_event()
            interval = self._interval(polls)
            remaining = self._remaining()
            if remaining <= interval:
                # The next poll would come after the deadline: look once more at the deadline itself.
                await asyncio.sleep(max(0.0, remaining))
                last_look = True
                continue
            await asyncio.sleep(interval)

    async def _poll(self, hook: WavyAsyncHook, polls: int = 1) -> str | None:
        """Return the file URL when the condition holds, None to keep waiting; raise on fatal errors."""
        try:
            file_url = await hook.get_export_file_url(self.export, self.customer_id, self.sub_account_id)
        except WavyTransientError as error:
            self.log.warning("Wavy: %s Still waiting.", error)
            return None
        if file_url is None:
            # Once at INFO, then DEBUG: a triggerer holding thousands of sensors should not log each poll.
            self.log.log(
                logging.INFO if polls == 1 else logging.DEBUG,
                "No Wavy %s file yet; checking every %gs.",
                self.export.title,
                self._interval(polls),
            )
            return None
        if not self.require_rows:
            return file_url
        try:
            rows = await hook.file_has_rows(file_url, export=self.export)
        except (WavyDownloadError, WavyTransientError) as error:
            # The CDN may lag behind the API (403/404 for a while): that is "not ready yet".
            self.log.warning("Wavy: %s Still waiting.", error)
            return None
        if not rows:
            self.log.info(
                "The Wavy %s file has no data row yet (header only); still waiting.", self.export.title
            )
            return None
        return file_url


__all__ = ["WavyOpenSessionsTrigger", "describe_transport_error", "shared_ssl_context"]
