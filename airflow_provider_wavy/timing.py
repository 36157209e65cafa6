"""
Timing rules: which statuses are worth a retry, how long to back off, and a call's total deadline.
"""

from __future__ import annotations

import math
import random
import time
from dataclasses import dataclass
from datetime import UTC, datetime
from email.utils import parsedate_to_datetime
from typing import TYPE_CHECKING

from airflow_provider_wavy.exceptions import WavyError, WavyTransientError
from airflow_provider_wavy.messages import HOST_PORT_ADVICE, points_at_host_or_port

if TYPE_CHECKING:
    from collections.abc import Callable

DEFAULT_MAX_RETRIES = 3
#: A server asking for a longer pause than this is waited on only this long before the next try.
RETRY_AFTER_CAP = 120.0
BACKOFF_BASE = 1.0
BACKOFF_CAP = 60.0
#: 420 is Wavy's own "Message is Rate Limited"; 429 the standard one; every 5xx may pass.
RATE_LIMIT_STATUSES = frozenset({420, 429})


def is_transient_status(status: int) -> bool:
    """Tell whether an HTTP status is worth retrying (rate limits and server errors)."""
    return status in RATE_LIMIT_STATUSES or 500 <= status <= 599


def parse_retry_after(value: str | None, *, now: datetime | None = None) -> float | None:
    """
    Read a ``Retry-After`` header as a number of seconds to wait.

    :param value: the header, either delta-seconds (``"120"``) or an HTTP date.
    :param now: the current time, for HTTP dates; defaults to the clock.
    :return: seconds (never negative), or None when the header is absent or unreadable.
    """
    if value is None:
        return None
    text = value.strip()
    if not text:
        return None
    try:
        seconds = float(text)
    except ValueError:
        pass
    else:
        return max(0.0, seconds) if math.isfinite(seconds) else None
    try:
        when = parsedate_to_datetime(text)
    except (TypeError, ValueError, IndexError):
        return None
    if when.tzinfo is None:
        when = when.replace(tzinfo=UTC)
    current = now or datetime.now(UTC)
    return max(0.0, (when - current).total_seconds())


@dataclass(frozen=True)
class RetryPolicy:
    """
    Decide how long to wait before the next try, and when to stop.

    :param max_retries: retries after the first attempt; 0 disables retrying.
    :param backoff_base: the first exponential backoff step, in seconds.
    :param backoff_cap: the longest exponential backoff step, in seconds.
    :param retry_after_cap: the longest wait a ``Retry-After`` header can impose, in seconds.
    """

    max_retries: int = DEFAULT_MAX_RETRIES
    backoff_base: float = BACKOFF_BASE
    backoff_cap: float = BACKOFF_CAP
    retry_after_cap: float = RETRY_AFTER_CAP

    def delay(self, retry_number: int, retry_after: float | None = None) -> float:
        """
        Return the pause before retry number ``retry_number`` (1-based).

        The server's ``Retry-After`` wins when given (up to the cap); otherwise exponential backoff
        with "equal jitter", so that many clients failing together do not retry together.

        :param retry_number: which retry this pause precedes, starting at 1.
        :param retry_after: seconds the server asked to wait, if it did.
        """
        if retry_after is not None:
            return min(retry_after, self.retry_after_cap)
        step = min(self.backoff_cap, self.backoff_base * 2.0 ** (retry_number - 1))
        return step / 2 + random.uniform(0, step / 2)  # noqa: S311 - jitter, not cryptography


class Deadline:
    """
    The total time one call may take, retries and pauses included.

    :param seconds: the time allowed from now; None for no limit.
    :param what: what is timed, for messages (e.g. "The Wavy API call").
    :param setting: how the user changes the limit, for messages.
    :param error: the class of the error raised when the time is up.
    :param clock: a monotonic clock (tests pass a fake one).
    """

    def __init__(
        self,
        seconds: float | None,
        *,
        what: str,
        setting: str,
        error: type[WavyError] = WavyTransientError,
        clock: Callable[[], float] = time.monotonic,
    ) -> None:
        self.seconds = seconds
        self.what = what
        self.setting = setting
        self._error = error
        self._clock = clock
        self._end = None if seconds is None else clock() + seconds

    def remaining(self) -> float:
        """Return the seconds left (infinite without a limit; never negative)."""
        return math.inf if self._end is None else max(0.0, self._end - self._clock())

    def bound(self, timeout: float) -> float:
        """Return ``timeout`` cut to the time left, for one network wait."""
        return min(timeout, self.remaining())

    def exceeded(self, detail: str = "") -> WavyError:
        """Return the error of a call that ran out of time."""
        last = f" (last: {detail})" if detail else ""
        advice = (
            HOST_PORT_ADVICE
            if points_at_host_or_port(detail)
            else f"Try again later, or raise {self.setting}."
        )
        return self._error(
            f"{self.what} did not complete within its time limit of {self.seconds:g}s{last}. {advice}"
        )


__all__ = [
    "BACKOFF_BASE",
    "BACKOFF_CAP",
    "DEFAULT_MAX_RETRIES",
    "RATE_LIMIT_STATUSES",
    "RETRY_AFTER_CAP",
    "Deadline",
    "RetryPolicy",
    "is_transient_status",
    "parse_retry_after",
]
