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
rows. One compiled pattern recognises the layouts; the date and hour (``value[:13]``) key a cache of the
matching UTC date and hour, since within one local hour the offset is constant whenever it is a whole
number of hours and no transition falls inside the hour; minutes, seconds and fraction are copied as text.
Hours where that does not hold (e.g. São Paulo's local mean time before 1914, -03:06:28, or a zone with a
half-hour offset) take the full ``datetime`` path for every value. A canonical ``...Z`` value is returned
as it is once its date and hour are known valid. Each cache is cleared when it reaches
``_CACHE_ENTRIES`` entries (about 11 years of distinct hours), which bounds its memory to a few tens of MB.
"""

from __future__ import annotations

import re
from datetime import UTC, datetime, timedelta, timezone
from typing import TYPE_CHECKING, Final, TypeVar

if TYPE_CHECKING:
    from datetime import tzinfo

#: The zone of naive timestamps unless told otherwise: Wavy's lists page documents America/Sao_Paulo.
DEFAULT_SOURCE_TIMEZONE: Final = "America/Sao_Paulo"
#: What to do with a value that is not a timestamp: raise, or load None and count it.
BAD_TIMESTAMP_CHOICES: Final = ("fail", "null")

#: date, time, fraction (with its dot, up to microseconds), zone (Z, +HH:MM, +HHMM or +HH). ASCII digits only.
_PATTERN: Final = re.compile(
    r"(\d{4})-(\d\d)-(\d\d)[T ](\d\d):([0-5]\d):([0-5]\d)(\.\d{1,6})?(Z|[+-]\d\d(?::?\d\d)?)?", re.ASCII
)
_EPOCH_DIGITS: Final = 13
_EPOCH: Final = datetime(1970, 1, 1)
_HOUR: Final = timedelta(hours=1)
_CACHE_ENTRIES: Final = 100_000
#: Cache values besides a 13-character UTC prefix ("YYYY-MM-DDTHH").
_BAD: Final = "bad"
_SLOW: Final = "slow"
_SHOWN_CHARS: Final = 60
_Key = TypeVar("_Key", str, int)
_Value = TypeVar("_Value")
#: Every valid ":MM:SS", in order (index: seconds into the hour); as a set, one lookup checks both fields.
_MINUTES_SECONDS_TEXT: Final = tuple(
    f":{minute:02d}:{second:02d}" for minute in range(60) for second in range(60)
)
_MINUTES_SECONDS: Final = frozenset(_MINUTES_SECONDS_TEXT)
#: A rest of the value not seen valid yet: the fast path gives way to the full one.
_NO_REST: Final[tuple[str | None, str]] = (None, "")


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
        # "YYYY-MM-DD?HH" of naive values -> the UTC prefix, or _BAD / _SLOW.
        self._local: dict[str, str] = {}
        # "YYYY-MM-DD?HH" + zone of zoned values -> the UTC prefix, or _BAD / _SLOW.
        self._zoned: dict[str, str] = {}
        # Hours since the epoch -> the UTC prefix.
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
        # The fast path reads only what earlier values put in the caches: a known-valid local or zoned
        # date and hour (value[:13]), a valid ":MM:SS" and a known-valid fraction and zone. Anything else,
        # the first value of each hour included, takes the full path, which fills the caches.
        if value[13:19] in _MINUTES_SECONDS:
            rest = value[19:]
            fraction, zone = self._rests.get(rest) or _NO_REST if rest else ("", "")
            if not zone:
                prefix = self._local.get(value[:13])
            elif zone == "Z" and value[10] == "T":
                if len(self._zoned.get(value[:13] + "Z", "")) == 13:
                    return value  # already canonical
                prefix = None
            else:
                prefix = self._zoned.get(value[:13] + zone)
            if prefix is not None and len(prefix) == 13 and fraction is not None:
                return f"{prefix}{value[13:19]}{fraction}Z"
        return self._full(value, row)

    def _full(self, value: str, row: int) -> str | None:
        """Read ``value`` with the pattern, filling the caches (see :meth:`normalise`)."""
        if len(value) == _EPOCH_DIGITS and value.isdigit() and value.isascii():
            hours, rest = divmod(int(value[:10]), 3600)
            prefix = self._epoch.get(hours) or _remember(self._epoch, hours, _prefix(_EPOCH + hours * _HOUR))
            # The last three digits are the milliseconds, as written.
            return f"{prefix}{_MINUTES_SECONDS_TEXT[rest]}.{value[10:]}Z"
        match = self._match(value)
        if match is None:
            return self._unusual(value, row)
        fraction, zone = match.group(7, 8)
        if len(value) > 19:
            _remember(self._rests, value[19:], (fraction or "", zone or ""))
        if zone is None:
            prefix = self._local.get(key := value[:13]) or self._local_hour(key, match)
        else:
            prefix = self._zoned.get(key := value[:13] + zone) or self._zoned_hour(key, match, zone)
        if len(prefix) == 13:
            if zone == "Z" and value[10] == "T":
                return value
            return f"{prefix}{value[13:19]}{fraction or ''}Z"
        if prefix == _SLOW:
            return self._slow(match, value, row)
        return self._bad(value, row)

    def _local_hour(self, key: str, match: re.Match[str]) -> str:
        """Find (and cache) the UTC hour of a naive local date and hour."""
        year, month, day, hour = map(int, match.group(1, 2, 3, 4))
        try:
            start = datetime(year, month, day, hour)
            # ZoneInfo reads a naive datetime with fold=0, like an aware one built from the same fields.
            offset = self._zone.utcoffset(start)
            last = self._zone.utcoffset(start.replace(minute=59, second=59))
            whole_hour = offset is not None and offset == last and not offset % _HOUR
            result = _prefix(start - offset) if whole_hour and offset is not None else _SLOW
        except (ValueError, OverflowError):
            result = _BAD
        return _remember(self._local, key, result)

    def _zoned_hour(self, key: str, match: re.Match[str], zone: str) -> str:
        """Find (and cache) the UTC hour of a date and hour written with an explicit offset."""
        year, month, day, hour = map(int, match.group(1, 2, 3, 4))
        offset = _fixed_offset(zone)
        try:
            start = datetime(year, month, day, hour)
            if offset is None:
                result = _BAD
            elif offset % _HOUR:
                result = _SLOW
            else:
                result = _prefix(start - offset)
        except (ValueError, OverflowError):
            result = _BAD
        return _remember(self._zoned, key, result)

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
