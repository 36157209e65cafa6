"""
An export's timestamps, normalised to timezone-aware UTC text.

:class:`TimestampNormaliser` turns one CSV value into ISO 8601 UTC text, ``YYYY-MM-DDTHH:MM:SSZ``, with the
source's fraction of a second kept as written (1 to 6 digits) when it had one, so that every consumer (the
SQL loader, the operator's XCom rows) gets the same text for the same value. Accepted values:

- ISO 8601 with a zone: ``2017-12-18T17:09:31.473Z``, ``...+00:00``, ``...-0300``, ``...-03``;
- without a zone, ``YYYY-MM-DD HH:MM:SS`` or ``YYYY-MM-DDTHH:MM:SS``, with or without a fraction: read as
  wall-clock time in ``source_timezone`` (default ``America/Sao_Paulo``, the zone Wavy's lists page
  documents) with the zone's historical offsets from the IANA database, daylight saving included;
- epoch milliseconds: exactly 13 ASCII digits (2001-09-09 to 2286-11-20); the output keeps the
  milliseconds as a 3-digit fraction. Other runs of digits are bad: 10 digits would be epoch *seconds*, and
  guessing the unit could misplace a value by a factor of 1,000.

Surrounding spaces are ignored; an empty or blank value is None (a missing timestamp, not a bad one).
Anything else is bad: other layouts, 2-digit years, out-of-range fields (month 13, 30 February, hour 24,
second 60), trailing text, a fraction of more than 6 digits (more precise than a microsecond: refused
rather than silently rounded), non-ASCII digits, control characters. ``on_bad_timestamp="fail"`` raises
:class:`~airflow_provider_wavy.exceptions.WavyTimestampError` naming the row, the column and the value;
``"null"`` returns None and counts it in ``bad_count``.

Wall-clock times that a daylight saving change makes ambiguous or impossible follow Python's ``zoneinfo``
with ``fold=0``: a repeated time (the hour before daylight saving ended, e.g. São Paulo 2019-02-16 23:30)
is its first occurrence, at the daylight saving offset (-02:00 -> 01:30Z); a skipped time (e.g. São Paulo
2018-11-04 00:30, when clocks jumped from 00:00 to 01:00) is read with the offset in force before the jump
(-03:00 -> 03:30Z).

Speed: the SQL loader calls :meth:`TimestampNormaliser.normalise` for every row of files of millions of
rows. The first value of each date (with its zone, if it has one) goes through one compiled pattern and
fills a cache with the UTC date and hour of each of the day's 24 hours: within one local hour the offset is
constant whenever it is a whole number of hours and no transition falls inside the hour, so minutes,
seconds and fraction are copied as text. Later values of that date are checked and converted with slices,
a few set and dict lookups, without the pattern or ``datetime``. Hours where the rule
does not hold (e.g. São Paulo's local mean time before 1914, -03:06:28, or a zone with a half-hour offset)
take the full ``datetime`` path for every value. A canonical ``...Z`` value is returned as it is once its
date is known valid. Caching days rather than hours keeps the caches small (3,650 entries for ten years);
each is emptied when it reaches ``_CACHE_ENTRIES`` entries, which bounds its memory to about 20 MB.
"""

from __future__ import annotations

import re
from datetime import UTC, datetime, timedelta, timezone
from typing import TYPE_CHECKING, Final, TypeVar

from airflow_provider_wavy.exports import DEFAULT_SOURCE_TIMEZONE

if TYPE_CHECKING:
    from datetime import tzinfo

#: What to do with a value that is not a timestamp: raise, or load None and count it.
BAD_TIMESTAMP_CHOICES: Final = ("fail", "null")

#: date, time, fraction (with its dot, up to microseconds), zone (Z, +HH:MM, +HHMM or +HH). ASCII digits only.
_PATTERN: Final = re.compile(
    r"(\d{4})-(\d\d)-(\d\d)[T ](\d\d):([0-5]\d):([0-5]\d)(\.\d{1,6})?(Z|[+-]\d\d(?::?\d\d)?)?", re.ASCII
)
_EPOCH_DIGITS: Final = 13
_EPOCH: Final = datetime(1970, 1, 1)
_HOUR: Final = timedelta(hours=1)
_DAY: Final = timedelta(days=1)
#: Days per cache (27 years): a day holds 24 prefixes, about 2 KB.
_CACHE_ENTRIES: Final = 10_000
#: Cache values besides a 13-character UTC prefix ("YYYY-MM-DDTHH").
_BAD: Final = "bad"
_SLOW: Final = "slow"
_BAD_DAY: Final = (_BAD,) * 24
_SLOW_DAY: Final = (_SLOW,) * 24
_HOURS: Final = {f"{hour:02d}": hour for hour in range(24)}
_HOURS_TEXT: Final = tuple(_HOURS)
_SHOWN_CHARS: Final = 60
_Key = TypeVar("_Key")
_Value = TypeVar("_Value")
#: Every valid ":MM:SS", in order (index: seconds into the hour); as a set, one lookup checks both fields.
_MINUTES_SECONDS_TEXT: Final = tuple(
    f":{minute:02d}:{second:02d}" for minute in range(60) for second in range(60)
)
_MINUTES_SECONDS: Final = frozenset(_MINUTES_SECONDS_TEXT)
#: A rest of the value not seen valid yet: the fast path gives way to the full one.
_NO_REST: Final[tuple[str | None, str]] = (None, "")
_SEPARATORS: Final = frozenset("T ")


def load_zone(source_timezone: str) -> tzinfo:
    """
    Return the IANA time zone named ``source_timezone``.

    :raises ValueError: no such zone; the message says what a name looks like.
    """
    from zoneinfo import ZoneInfo

    try:
        return ZoneInfo(source_timezone)
    except (LookupError, ValueError, TypeError, OSError):
        raise ValueError(
            f"source_timezone={source_timezone!r} is not an IANA time zone name: pass a name such as "
            f'"{DEFAULT_SOURCE_TIMEZONE}" or "UTC" (case matters).'
        ) from None


def check_on_bad_timestamp(on_bad_timestamp: str) -> str:
    """Return ``on_bad_timestamp`` if it is ``"fail"`` or ``"null"``; ValueError otherwise."""
    if on_bad_timestamp not in BAD_TIMESTAMP_CHOICES:
        raise ValueError(
            f'on_bad_timestamp must be "fail" (the task fails on the first bad value) or "null" (bad values '
            f"become NULL and are counted); got {on_bad_timestamp!r}."
        )
    return on_bad_timestamp


def to_datetime(text: str) -> datetime:
    """Return the aware UTC ``datetime`` of a value :meth:`TimestampNormaliser.normalise` returned."""
    return datetime.fromisoformat(text)


def _prefix(moment: datetime) -> str:
    return f"{moment.year:04d}-{moment.month:02d}-{moment.day:02d}T{moment.hour:02d}"


def _midnight(match: re.Match[str]) -> datetime:
    """Return the date of a matched value (ValueError for one that does not exist)."""
    year, month, day = map(int, match.group(1, 2, 3))
    return datetime(year, month, day)


def _fixed_offset(zone: str) -> timedelta | None:
    """Return the offset written as ``Z``, ``+HH:MM``, ``+HHMM`` or ``+HH``; None when out of range."""
    if zone == "Z":
        return timedelta(0)
    hours, minutes = int(zone[1:3]), int(zone[-2:]) if len(zone) > 3 else 0
    if hours > 23 or minutes > 59:
        return None
    offset = timedelta(hours=hours, minutes=minutes)
    return -offset if zone[0] == "-" else offset


class TimestampNormaliser:
    """
    Normalise one column's timestamps to ISO 8601 UTC text (see the module docstring for the rules).

    :param column: the column's name, for error messages.
    :param source_timezone: the IANA zone of values without one.
    :param on_bad_timestamp: ``"fail"`` raises :class:`~airflow_provider_wavy.exceptions.WavyTimestampError`
        at the first bad value; ``"null"`` returns None for it and counts it in :attr:`bad_count`.
    :raises ValueError: an unknown zone, or another ``on_bad_timestamp``.
    """

    def __init__(
        self, *, column: str, source_timezone: str = DEFAULT_SOURCE_TIMEZONE, on_bad_timestamp: str = "fail"
    ) -> None:
        self.column = column
        self.source_timezone = source_timezone
        self.on_bad_timestamp = check_on_bad_timestamp(on_bad_timestamp)
        self._zone = load_zone(source_timezone)
        #: How many bad values became None (``on_bad_timestamp="null"``).
        self.bad_count = 0
        self._match = _PATTERN.fullmatch
        # "YYYY-MM-DD" of naive values -> the UTC prefix of each local hour, or _BAD / _SLOW.
        self._local: dict[str, tuple[str, ...]] = {}
        # "YYYY-MM-DD" + zone of zoned values -> the UTC prefix of each hour, or _BAD / _SLOW.
        self._zoned: dict[str, tuple[str, ...]] = {}
        # Days since the epoch -> "YYYY-MM-DDT".
        self._epoch: dict[int, str] = {}
        # What followed the seconds in a valid value (".473Z", "-03:00") -> (fraction, zone).
        self._rests: dict[str, tuple[str, str]] = {}

    def normalise(self, value: str, row: int) -> str | None:
        """
        Return ``value`` as ISO 8601 UTC text, or None for an empty value (or a bad one under ``"null"``).

        :param value: the CSV field, as read.
        :param row: the 1-based data row number (the header not counted), for the error message.
        :raises WavyTimestampError: a bad value under ``on_bad_timestamp="fail"``.
        """
        # The fast path reads only what earlier values put in the caches: a known-valid date (value[:10],
        # with the zone if any) whose 24 UTC hours are known, a valid hour, ":MM:SS", fraction and zone.
        # Anything else, the first value of each day included, takes the full path, which fills the caches.
        # Caching days rather than hours keeps the caches small (3,650 entries for ten years of values).
        if (
            value[13:19] in _MINUTES_SECONDS
            and (hour := _HOURS.get(value[11:13])) is not None
            and value[10] in _SEPARATORS
        ):
            rest = value[19:]
            fraction, zone = (self._rests.get(rest) or _NO_REST) if rest else ("", "")
            if fraction is not None:
                day = self._zoned.get(value[:10] + zone) if zone else self._local.get(value[:10])
                if day is not None and len(prefix := day[hour]) == 13:
                    if zone == "Z" and value[10] == "T":
                        return value  # already canonical
                    return f"{prefix}{value[13:19]}{fraction}Z"
        return self._full(value, row)

    def _full(self, value: str, row: int) -> str | None:
        """Read ``value`` with the pattern, filling the caches (see :meth:`normalise`)."""
        if len(value) == _EPOCH_DIGITS and value.isdigit() and value.isascii():
            return self._epoch_ms(value)
        match = self._match(value)
        if match is None:
            return self._unusual(value, row)
        fraction, zone = match.group(7, 8)
        if len(value) > 19:
            _remember(self._rests, value[19:], (fraction or "", zone or ""))
        hour = int(match.group(4))
        if hour > 23:
            prefix = _BAD
        elif zone is None:
            prefix = (self._local.get(key := value[:10]) or self._local_day(key, match))[hour]
        else:
            prefix = (self._zoned.get(key := value[:10] + zone) or self._zoned_day(key, match, zone))[hour]
        if len(prefix) == 13:
            if zone == "Z" and value[10] == "T":
                return value
            return f"{prefix}{value[13:19]}{fraction or ''}Z"
        if prefix == _SLOW:
            return self._slow(match, value, row)
        return self._bad(value, row)

    def _epoch_ms(self, value: str) -> str:
        """Return 13 digits of epoch milliseconds as UTC text (the milliseconds kept as written)."""
        days, seconds = divmod(int(value[:10]), 86_400)
        date = self._epoch.get(days) or _remember(self._epoch, days, _prefix(_EPOCH + days * _DAY)[:11])
        hour, seconds = divmod(seconds, 3600)
        return f"{date}{_HOURS_TEXT[hour]}{_MINUTES_SECONDS_TEXT[seconds]}.{value[10:]}Z"

    def _local_day(self, key: str, match: re.Match[str]) -> tuple[str, ...]:
        """Find (and cache) the UTC hour of each hour of a naive local date."""
        try:
            midnight = _midnight(match)
        except ValueError:
            return _remember(self._local, key, _BAD_DAY)
        zone = self._zone
        hours = []
        for hour in range(24):
            start = midnight.replace(hour=hour)
            # ZoneInfo reads a naive datetime with fold=0, like an aware one built from the same fields.
            offset = zone.utcoffset(start)
            last = zone.utcoffset(start.replace(minute=59, second=59))
            if offset is None or offset != last or offset % _HOUR:
                hours.append(_SLOW)
                continue
            try:
                hours.append(_prefix(start - offset))
            except OverflowError:
                hours.append(_BAD)
        return _remember(self._local, key, tuple(hours))

    def _zoned_day(self, key: str, match: re.Match[str], zone: str) -> tuple[str, ...]:
        """Find (and cache) the UTC hour of each hour of a date written with an explicit offset."""
        offset = _fixed_offset(zone)
        try:
            midnight = _midnight(match)
        except ValueError:
            offset = None
        if offset is None:
            return _remember(self._zoned, key, _BAD_DAY)
        if offset % _HOUR:
            return _remember(self._zoned, key, _SLOW_DAY)
        hours = []
        for hour in range(24):
            try:
                hours.append(_prefix(midnight.replace(hour=hour) - offset))
            except OverflowError:
                hours.append(_BAD)
        return _remember(self._zoned, key, tuple(hours))

    def _slow(self, match: re.Match[str], value: str, row: int) -> str | None:
        """Convert through an aware ``datetime`` (offsets that are not whole hours, hours with a change)."""
        fraction, zone = match.group(7, 8)
        offset = None if zone is None else _fixed_offset(zone)
        source = self._zone if offset is None else timezone(offset)
        try:
            year, month, day, hour, minute, second = map(int, match.group(1, 2, 3, 4, 5, 6))
            local = datetime(year, month, day, hour, minute, second, tzinfo=source)
            moment = local.astimezone(UTC).replace(tzinfo=None)
        except (ValueError, OverflowError):
            return self._bad(value, row)
        return f"{moment.isoformat()}{fraction or ''}Z"

    def _unusual(self, value: str, row: int) -> str | None:
        """Read what the pattern does not: blanks, surrounding spaces, bad values."""
        if not value or value.isspace():
            return None
        stripped = value.strip(" ")
        if stripped != value:
            return self.normalise(stripped, row)
        return self._bad(value, row)

    def _bad(self, value: str, row: int) -> str | None:
        if self.on_bad_timestamp == "null":
            self.bad_count += 1
            return None
        from airflow_provider_wavy.exceptions import WavyTimestampError

        shown = repr(value[:_SHOWN_CHARS])
        if len(value) > _SHOWN_CHARS:
            shown += f"... ({len(value):,} characters)"
        raise WavyTimestampError(
            f"Data row {row:,}, column {self.column!r}: {shown} is not a timestamp. Accepted: ISO 8601 "
            f"with Z or an offset, 'YYYY-MM-DD HH:MM:SS[.ffffff]' (read in {self.source_timezone}) or "
            "13-digit epoch milliseconds, with valid fields. Fix the export, or pass "
            "on_bad_timestamp='null' to load bad values as NULL (they are counted)."
        )


def _remember(cache: dict[_Key, _Value], key: _Key, value: _Value) -> _Value:
    """Store ``value`` under ``key``, first emptying a full cache; return ``value``."""
    if len(cache) >= _CACHE_ENTRIES:
        cache.clear()
    cache[key] = value
    return value


__all__ = [
    "BAD_TIMESTAMP_CHOICES",
    "DEFAULT_SOURCE_TIMEZONE",
    "TimestampNormaliser",
    "check_on_bad_timestamp",
    "load_zone",
    "to_datetime",
]
