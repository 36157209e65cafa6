"""TimestampNormaliser: every accepted format to UTC text, every bad class, the cache against datetime."""

from __future__ import annotations

import csv
import io
import random
from datetime import UTC, datetime, timedelta, timezone
from zoneinfo import ZoneInfo

import pytest

from airflow_provider_wavy.csv import timestamps
from airflow_provider_wavy.csv.timestamps import (
    DEFAULT_SOURCE_TIMEZONE,
    TimestampNormaliser,
    check_on_bad_timestamp,
    to_datetime,
)
from airflow_provider_wavy.exceptions import WavyFatalError, WavyTimestampError
from airflow_provider_wavy.sandbox import Scenario, iter_list_chunks
from airflow_provider_wavy.sandbox.lists import LIST_TYPES

SAO_PAULO = "America/Sao_Paulo"
_HOUR = timedelta(hours=1)


def _utc_text(moment: datetime) -> str:
    """Format an aware instant the way the normaliser must, independently of it."""
    utc = moment.astimezone(UTC)
    text = f"{utc.year:04d}-{utc.month:02d}-{utc.day:02d}T{utc.hour:02d}:{utc.minute:02d}:{utc.second:02d}"
    return text + (f".{utc.microsecond:06d}" if utc.microsecond else "") + "Z"


def _local(text: str, zone: str) -> str:
    """The UTC text of a naive ``YYYY-MM-DD HH:MM:SS`` in ``zone``, by datetime + zoneinfo (fold=0)."""
    return _utc_text(datetime.strptime(text, "%Y-%m-%d %H:%M:%S").replace(tzinfo=ZoneInfo(zone)))


GOOD = [
    # ISO 8601 with a zone
    pytest.param("2017-12-18T17:09:31.473Z", SAO_PAULO, "2017-12-18T17:09:31.473Z", id="iso-z-wavy-sample"),
    pytest.param("2017-12-18T17:09:31Z", SAO_PAULO, "2017-12-18T17:09:31Z", id="iso-z"),
    pytest.param("2017-12-18 17:09:31Z", SAO_PAULO, "2017-12-18T17:09:31Z", id="iso-z-space"),
    pytest.param("2017-12-18T17:09:31.5Z", SAO_PAULO, "2017-12-18T17:09:31.5Z", id="iso-z-fraction-1"),
    pytest.param(
        "2017-12-18T17:09:31.123456Z", SAO_PAULO, "2017-12-18T17:09:31.123456Z", id="iso-z-fraction-6"
    ),
    pytest.param("2017-12-18T17:09:31+00:00", SAO_PAULO, "2017-12-18T17:09:31Z", id="offset-plus-zero"),
    pytest.param("2017-12-18T17:09:31-00:00", SAO_PAULO, "2017-12-18T17:09:31Z", id="offset-minus-zero"),
    pytest.param("2017-12-18T17:09:31-03:00", SAO_PAULO, "2017-12-18T20:09:31Z", id="offset-colon"),
    pytest.param("2017-12-18 17:09:31-0300", SAO_PAULO, "2017-12-18T20:09:31Z", id="offset-no-colon"),
    pytest.param("2017-12-18T17:09:31-03", SAO_PAULO, "2017-12-18T20:09:31Z", id="offset-hours-only"),
    pytest.param("2017-12-18T22:09:31.25-03", SAO_PAULO, "2017-12-19T01:09:31.25Z", id="offset-next-day"),
    pytest.param("2020-06-01T12:00:00+05:30", SAO_PAULO, "2020-06-01T06:30:00Z", id="offset-half-hour"),
    pytest.param("2020-06-01T12:00:00+0545", SAO_PAULO, "2020-06-01T06:15:00Z", id="offset-nepal"),
    pytest.param("2020-03-01T00:30:00+01:00", SAO_PAULO, "2020-02-29T23:30:00Z", id="offset-leap-day"),
    # naive: São Paulo wall-clock time
    pytest.param("2016-07-01 12:00:00", SAO_PAULO, "2016-07-01T15:00:00Z", id="sp-2016-winter"),
    pytest.param("2016-01-15 12:00:00", SAO_PAULO, "2016-01-15T14:00:00Z", id="sp-2015-16-summer-dst"),
    pytest.param("2016-12-15T12:00:00", SAO_PAULO, "2016-12-15T14:00:00Z", id="sp-2016-17-summer-dst-T"),
    pytest.param("2017-12-15 12:00:00.5", SAO_PAULO, "2017-12-15T14:00:00.5Z", id="sp-2017-18-dst-fraction"),
    pytest.param("2018-12-15 23:59:59", SAO_PAULO, "2018-12-16T01:59:59Z", id="sp-2018-19-dst-next-day"),
    pytest.param("2019-12-15 12:00:00", SAO_PAULO, "2019-12-15T15:00:00Z", id="sp-2019-no-dst-any-more"),
    pytest.param("2025-01-15 12:00:00.000001", SAO_PAULO, "2025-01-15T15:00:00.000001Z", id="sp-2025-micro"),
    pytest.param("1913-06-01 12:00:00", SAO_PAULO, "1913-06-01T15:06:28Z", id="sp-lmt-before-1914"),
    pytest.param("1913-12-31 23:59:59", SAO_PAULO, "1914-01-01T03:06:27Z", id="sp-last-lmt-second"),
    # 1914-01-01 00:00 LMT became 00:06:28 -03: a gap of 6 min 28 s, read at the LMT offset (fold=0).
    pytest.param("1914-01-01 00:03:00", SAO_PAULO, "1914-01-01T03:09:28Z", id="sp-lmt-gap"),
    pytest.param("1914-01-01 00:06:28", SAO_PAULO, "1914-01-01T03:06:28Z", id="sp-first-standard-second"),
    # daylight saving edges: fold=0
    pytest.param("2019-02-16 23:30:00", SAO_PAULO, "2019-02-17T01:30:00Z", id="ambiguous-first-occurrence"),
    pytest.param("2018-02-17 23:00:00", SAO_PAULO, "2018-02-18T01:00:00Z", id="ambiguous-start"),
    pytest.param("2018-02-17 23:59:59", SAO_PAULO, "2018-02-18T01:59:59Z", id="ambiguous-end"),
    pytest.param("2018-02-18 00:00:00", SAO_PAULO, "2018-02-18T03:00:00Z", id="after-dst-ended"),
    pytest.param("2018-11-04 00:30:00", SAO_PAULO, "2018-11-04T03:30:00Z", id="nonexistent-offset-before"),
    pytest.param("2016-10-16 00:00:00", SAO_PAULO, "2016-10-16T03:00:00Z", id="nonexistent-start"),
    pytest.param("2016-10-16 01:00:00", SAO_PAULO, "2016-10-16T03:00:00Z", id="first-dst-hour"),
    # epoch milliseconds (13 digits)
    pytest.param("1513616971473", SAO_PAULO, "2017-12-18T17:09:31.473Z", id="epoch-ms"),
    pytest.param("1000000000000", SAO_PAULO, "2001-09-09T01:46:40.000Z", id="epoch-ms-smallest"),
    pytest.param("9999999999999", SAO_PAULO, "2286-11-20T17:46:39.999Z", id="epoch-ms-largest"),
    # other zones and spacing
    pytest.param("2020-01-01 00:00:00", "UTC", "2020-01-01T00:00:00Z", id="utc-zone"),
    pytest.param("0001-01-01 00:00:00", "UTC", "0001-01-01T00:00:00Z", id="utc-year-1"),
    pytest.param("2020-01-01 05:30:00", "Asia/Kolkata", "2020-01-01T00:00:00Z", id="half-hour-zone"),
    pytest.param("2020-01-01 12:00:00", "Australia/Lord_Howe", "2020-01-01T01:00:00Z", id="half-hour-dst"),
    pytest.param("2021-03-28 01:30:00", "Europe/London", "2021-03-28T01:30:00Z", id="london-gap"),
    pytest.param("2021-10-31 01:30:00", "Europe/London", "2021-10-31T00:30:00Z", id="london-overlap"),
    pytest.param("  2020-01-01 00:00:00 ", SAO_PAULO, "2020-01-01T03:00:00Z", id="surrounding-spaces"),
]


@pytest.mark.parametrize(("value", "zone", "expected"), GOOD)
def test_accepted_values(value: str, zone: str, expected: str) -> None:
    normaliser = TimestampNormaliser(column="createdAt", source_timezone=zone)

    assert normaliser.normalise(value, 1) == expected
    assert normaliser.normalise(value, 2) == expected  # from the cache the second time
    assert normaliser.bad_count == 0
    assert to_datetime(expected).tzinfo is not None


BAD = [
    pytest.param("hello", id="garbage"),
    pytest.param("2020-13-01 00:00:00", id="month-13"),
    pytest.param("2020-00-10 00:00:00", id="month-0"),
    pytest.param("2020-02-30 00:00:00", id="feb-30"),
    pytest.param("2019-02-29 12:00:00", id="feb-29-not-leap"),
    pytest.param("2020-04-31T00:00:00Z", id="apr-31-zoned"),
    pytest.param("2020-01-01 24:00:00", id="hour-24"),
    pytest.param("2020-01-01 23:60:00", id="minute-60"),
    pytest.param("2020-01-01 23:59:60", id="second-60"),
    pytest.param("2020-01-01 00:00:00x", id="trailing-junk"),
    pytest.param("2020-01-01 00:00:00 UTC", id="trailing-zone-name"),
    pytest.param("2020-01-01T00:00:00ZZ", id="double-z"),
    pytest.param("20-01-01 00:00:00", id="two-digit-year"),
    pytest.param("01/01/2020 00:00:00", id="day-first"),
    pytest.param("2020/01/01 00:00:00", id="slashes"),
    pytest.param("2020-01-01", id="date-only"),
    pytest.param("2020-01-01 00:00", id="no-seconds"),
    pytest.param("2020-1-1 0:00:00", id="unpadded"),
    pytest.param("2020-01-01 00:00:00.", id="empty-fraction"),
    pytest.param("2020-01-01 00:00:00.1234567", id="fraction-7-digits"),
    pytest.param("2020-01-01T00:00:00.123456789Z", id="fraction-nanoseconds"),
    pytest.param("2020-01-01T00:00:00z", id="lowercase-z"),
    pytest.param("2020-01-01t00:00:00Z", id="lowercase-t"),
    pytest.param("2020-01-01T00:00:00+24:00", id="offset-24h"),
    pytest.param("2020-01-01T00:00:00+03:60", id="offset-minute-60"),
    pytest.param("2020-01-01T00:00:00+3", id="offset-one-digit"),
    pytest.param("1513616971", id="epoch-seconds-10-digits"),
    pytest.param("15136169714730", id="epoch-14-digits"),
    pytest.param("-1513616971473", id="epoch-negative"),
    pytest.param(
        "\u0661\u0665\u0661\u0663\u0666\u0661\u0666\u0669\u0667\u0661\u0664\u0667\u0663",
        id="epoch-arabic-digits",
    ),
    pytest.param("\u0662\u0660\u0662\u0660-01-01 00:00:00", id="non-ascii-digits"),
    pytest.param("2020-01-01\x0000:00:00", id="nul-inside"),
    pytest.param("2020-01-01 00:00:00\x1b[31m", id="escape-sequence"),
    pytest.param("\t2020-01-01 00:00:00", id="leading-tab"),
    pytest.param("2020-01-01 00:00:00\r", id="trailing-carriage-return"),
    pytest.param("9999-12-31 23:00:00", id="utc-past-year-9999"),
    pytest.param("0001-01-01T00:00:00+05:00", id="utc-before-year-1"),
    pytest.param("0000-01-01 00:00:00", id="year-0"),
]


@pytest.mark.parametrize("value", BAD)
def test_bad_values_fail_naming_row_column_and_value(value: str) -> None:
    normaliser = TimestampNormaliser(column="createdAt")

    with pytest.raises(WavyTimestampError) as raised:
        normaliser.normalise(value, 1234)

    message = str(raised.value)
    assert "Data row 1,234" in message
    assert "'createdAt'" in message
    assert repr(value) in message
    assert "on_bad_timestamp='null'" in message
    assert message.isprintable()


@pytest.mark.parametrize("value", BAD)
def test_bad_values_become_none_and_are_counted_under_null(value: str) -> None:
    normaliser = TimestampNormaliser(column="createdAt", on_bad_timestamp="null")

    assert normaliser.normalise(value, 1) is None
    assert normaliser.normalise(value, 2) is None
    assert normaliser.bad_count == 2


@pytest.mark.parametrize("on_bad", ["fail", "null"])
@pytest.mark.parametrize(
    "value", [pytest.param("", id="empty"), pytest.param("   ", id="spaces"), pytest.param("\t", id="tab")]
)
def test_empty_values_are_none_and_not_bad(value: str, on_bad: str) -> None:
    normaliser = TimestampNormaliser(column="createdAt", on_bad_timestamp=on_bad)

    assert normaliser.normalise(value, 1) is None
    assert normaliser.bad_count == 0


def test_long_values_are_cut_and_control_characters_shown() -> None:
    normaliser = TimestampNormaliser(column="session_created_at", source_timezone="UTC")
    value = "\x1b[2J" + "x" * 200

    with pytest.raises(WavyTimestampError) as raised:
        normaliser.normalise(value, 7)

    message = str(raised.value)
    assert "\x1b" not in message
    assert "\\x1b[2J" in message
    assert "x" * 56 + "'... (204 characters)" in message
    assert "x" * 57 not in message
    assert "(read in UTC)" in message
    assert message.startswith("Data row 7, column 'session_created_at':")


def test_the_error_is_fatal() -> None:
    assert issubclass(WavyTimestampError, WavyFatalError)


@pytest.mark.parametrize(
    "zone",
    [
        pytest.param("Mars/Olympus_Mons", id="unknown"),
        pytest.param("america/sao_paulo", id="wrong-case"),
        pytest.param("America", id="a-folder"),
        pytest.param("", id="empty"),
        pytest.param("../../etc/passwd", id="path"),
        pytest.param("-03:00", id="an-offset"),
    ],
)
def test_unknown_zone_is_a_value_error_naming_examples(zone: str) -> None:
    with pytest.raises(ValueError, match=r'is not an IANA time zone name.*"America/Sao_Paulo" or "UTC"'):
        TimestampNormaliser(column="createdAt", source_timezone=zone)


@pytest.mark.parametrize("choice", ["FAIL", "skip", "", None])
def test_other_bad_timestamp_choices_are_value_errors(choice: str) -> None:
    with pytest.raises(ValueError, match='on_bad_timestamp must be "fail"'):
        TimestampNormaliser(column="createdAt", on_bad_timestamp=choice)
    with pytest.raises(ValueError, match='"null"'):
        check_on_bad_timestamp(choice)


def test_default_zone_is_the_lists_documented_one() -> None:
    assert TimestampNormaliser(column="c").source_timezone == DEFAULT_SOURCE_TIMEZONE == SAO_PAULO


@pytest.mark.parametrize(
    ("zone", "first", "last"),
    [
        pytest.param(SAO_PAULO, datetime(2016, 2, 15), datetime(2016, 2, 25), id="sao-paulo-2016-end"),
        pytest.param(SAO_PAULO, datetime(2016, 10, 10), datetime(2016, 10, 20), id="sao-paulo-2016-start"),
        pytest.param(SAO_PAULO, datetime(2017, 2, 14), datetime(2017, 2, 24), id="sao-paulo-2017-end"),
        pytest.param(SAO_PAULO, datetime(2018, 11, 1), datetime(2018, 11, 8), id="sao-paulo-2018-start"),
        pytest.param(SAO_PAULO, datetime(2019, 2, 13), datetime(2019, 2, 20), id="sao-paulo-2019-end"),
        pytest.param(SAO_PAULO, datetime(2019, 10, 28), datetime(2019, 11, 10), id="sao-paulo-2019-none"),
        pytest.param(SAO_PAULO, datetime(1913, 12, 25), datetime(1914, 1, 5), id="sao-paulo-lmt-end"),
        pytest.param("Europe/London", datetime(2021, 3, 20), datetime(2021, 11, 5), id="london"),
        pytest.param("Australia/Lord_Howe", datetime(2020, 9, 30), datetime(2021, 4, 10), id="lord-howe"),
        pytest.param("America/St_Johns", datetime(2021, 3, 10), datetime(2021, 3, 20), id="st-johns"),
    ],
)
def test_cache_agrees_with_datetime_for_every_hour_across_transitions(
    zone: str, first: datetime, last: datetime
) -> None:
    normaliser = TimestampNormaliser(column="c", source_timezone=zone)
    rng = random.Random(f"{zone}{first}")  # noqa: S311 (a reproducible sweep)
    moment = first
    checked = 0
    while moment < last:
        for minute, second in ((0, 0), (59, 59), (rng.randrange(60), rng.randrange(60))):
            text = moment.replace(minute=minute, second=second).strftime("%Y-%m-%d %H:%M:%S")
            expected = _local(text, zone)
            # Twice: the first call may fill the cache, the second must read it.
            assert normaliser.normalise(text, 1) == expected, text
            assert normaliser.normalise(text, 1) == expected, text
            assert normaliser.normalise(text.replace(" ", "T") + ".25", 1) == expected[:-1] + ".25Z", text
            checked += 1
        moment += timedelta(hours=1)
    assert checked == 3 * 24 * (last - first).days


def test_offsets_and_epochs_agree_with_datetime_for_random_instants() -> None:
    normaliser = TimestampNormaliser(column="c")
    rng = random.Random(13)  # noqa: S311 (a reproducible sweep)
    for _ in range(20_000):
        moment = datetime(1900, 1, 1) + timedelta(seconds=rng.randrange(200 * 365 * 86_400))
        minutes = rng.choice((0, 0, 0, 30, 45, rng.randrange(60)))
        offset = timedelta(hours=rng.randrange(-14, 15), minutes=minutes if rng.random() < 0.5 else 0)
        sign = "-" if offset < timedelta(0) else "+"
        hours, rest = divmod(abs(offset), timedelta(hours=1))
        zone = f"{sign}{hours:02d}:{rest // timedelta(minutes=1):02d}"
        text = moment.strftime("%Y-%m-%dT%H:%M:%S") + zone
        assert normaliser.normalise(text, 1) == _utc_text(moment.replace(tzinfo=timezone(offset))), text

        millis = rng.randrange(10**12, 10**13)
        instant = datetime(1970, 1, 1, tzinfo=UTC) + timedelta(milliseconds=millis)
        expected = _utc_text(instant.replace(microsecond=0))[:-1] + f".{millis % 1000:03d}Z"
        assert normaliser.normalise(str(millis), 1) == expected


@pytest.mark.parametrize("list_type", LIST_TYPES)
def test_a_sandbox_list_normalises_as_zoneinfo_reads_it(list_type: str) -> None:
    body = b"".join(iter_list_chunks("4242", None, list_type, Scenario(rows=600)))
    rows = list(csv.DictReader(io.StringIO(body.decode()), delimiter=";"))
    normaliser = TimestampNormaliser(column="createdAt")
    zone = ZoneInfo(SAO_PAULO)

    for number, row in enumerate(rows, start=1):
        local = datetime.strptime(row["createdAt"], "%Y-%m-%d %H:%M:%S")
        got = normaliser.normalise(row["createdAt"], number)
        assert got == _utc_text(local.replace(tzinfo=zone)), row
        offset_hours = (local - to_datetime(got).replace(tzinfo=None)) / timedelta(hours=1)
        special = (number - 1) % 50
        if special == 1:  # ambiguous: the first occurrence, at the daylight saving offset
            assert local.replace(fold=1, tzinfo=zone).utcoffset() == timedelta(hours=-3)
            assert offset_hours == -2
        elif special == 2:  # inside daylight saving
            assert offset_hours == -2
        elif special == 3:  # skipped on São Paulo clocks: the offset before the jump
            assert local.hour == 0
            assert local.replace(tzinfo=zone).astimezone(UTC).astimezone(zone).hour == 1
            assert offset_hours == -3
    assert normaliser.bad_count == 0
    assert len(rows) == 600


def test_full_caches_are_emptied_and_answers_stay_right(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setattr(timestamps, "_CACHE_ENTRIES", 5)
    normaliser = TimestampNormaliser(column="c")
    moment = datetime(2016, 2, 1, 0, 30)
    for _ in range(24 * 40):  # 40 days, across the end of the 2015-16 daylight saving period
        text = moment.strftime("%Y-%m-%d %H:%M:%S")
        assert normaliser.normalise(text, 1) == _local(text, SAO_PAULO), text
        assert normaliser.normalise(text + "-01:00", 1) == _utc_text(moment.replace(tzinfo=timezone(-_HOUR)))
        millis = str(int(moment.replace(tzinfo=UTC).timestamp()) * 1000 + 7)
        assert normaliser.normalise(millis, 1) == moment.strftime("%Y-%m-%dT%H:%M:%S.007Z")
        moment += _HOUR
    caches = (normaliser._local, normaliser._zoned, normaliser._epoch, normaliser._rests)
    assert all(0 < len(cache) <= 5 for cache in caches)
