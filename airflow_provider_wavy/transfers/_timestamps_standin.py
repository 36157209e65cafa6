"""STAND-IN for airflow_provider_wavy/csv/timestamps.py (helper ``ts``): dropped when that module lands."""

from __future__ import annotations

from datetime import UTC, datetime
from zoneinfo import ZoneInfo

from airflow_provider_wavy.exceptions import WavyFatalError


class WavyTimestampError(WavyFatalError):
    """A timestamp could not be read (stand-in)."""


class TimestampNormaliser:
    """Stand-in with the agreed interface."""

    def __init__(
        self, *, column: str, source_timezone: str = "America/Sao_Paulo", on_bad_timestamp: str = "fail"
    ):
        self.column = column
        self.zone = ZoneInfo(source_timezone)
        self.on_bad_timestamp = on_bad_timestamp
        self.bad_count = 0

    def normalise(self, value: str, row: int) -> str | None:
        text = value.strip()
        if not text:
            return None
        try:
            moment = datetime.fromisoformat(text.replace("Z", "+00:00"))
        except ValueError:
            if self.on_bad_timestamp == "null":
                self.bad_count += 1
                return None
            raise WavyTimestampError(
                f"row {row}: {self.column} value {value[:40]!r} is not a timestamp"
            ) from None
        if moment.tzinfo is None:
            moment = moment.replace(tzinfo=self.zone)
        return moment.astimezone(UTC).strftime("%Y-%m-%dT%H:%M:%SZ")
