"""
TimestampNormaliser against a naive per-row conversion, on 1M values of each accepted format.

The reference does what a straightforward loader would: ``datetime.fromisoformat`` (or ``fromtimestamp``
for epoch milliseconds), ``ZoneInfo(name)`` for naive values, ``astimezone(UTC)``, format. Both run in the
same process on the same values, alternating, several pairs; the figures are medians. Values are random
instants of 2016-2025 (the span of the sandbox lists: about 87,600 distinct hours, so the cache misses as
much as it can on such a file).

    .venv/af3/bin/python benchmarks/bench_timestamps.py            # 1,000,000 values, 3 pairs
    .venv/af3/bin/python benchmarks/bench_timestamps.py -n 200000 -p 5
"""

from __future__ import annotations

import argparse
import random
import statistics
import time
from datetime import UTC, datetime, timedelta
from typing import TYPE_CHECKING
from zoneinfo import ZoneInfo

from airflow_provider_wavy.csv.timestamps import TimestampNormaliser

if TYPE_CHECKING:
    from collections.abc import Callable

ZONE = "America/Sao_Paulo"


def _values(kind: str, count: int) -> list[str]:
    rng = random.Random(kind)
    start = datetime(2016, 1, 1, tzinfo=UTC)
    span = int((datetime(2026, 1, 1, tzinfo=UTC) - start).total_seconds())
    zone = ZoneInfo(ZONE)
    out = []
    for _ in range(count):
        moment = start + timedelta(seconds=rng.randrange(span), microseconds=rng.randrange(1000) * 1000)
        local = moment.astimezone(zone)
        if kind == "naive-space":
            out.append(local.strftime("%Y-%m-%d %H:%M:%S"))
        elif kind == "naive-T-fraction":
            out.append(local.strftime("%Y-%m-%dT%H:%M:%S.") + f"{moment.microsecond // 1000:03d}")
        elif kind == "iso-z":
            out.append(moment.strftime("%Y-%m-%dT%H:%M:%S.") + f"{moment.microsecond // 1000:03d}Z")
        elif kind == "offset":
            out.append(local.strftime("%Y-%m-%dT%H:%M:%S%z"))
        else:
            out.append(str(int(moment.timestamp() * 1000)))
    return out


def _reference(value: str, _row: int) -> str | None:
    """The naive loader: parse, attach the zone per row, convert, format."""
    if value.isdigit():
        moment = datetime.fromtimestamp(int(value) / 1000, UTC)
    else:
        moment = datetime.fromisoformat(value)
        if moment.tzinfo is None:
            moment = moment.replace(tzinfo=ZoneInfo(ZONE))
    return moment.astimezone(UTC).replace(tzinfo=None).isoformat() + "Z"


def _measure(function: Callable[[str, int], str | None], values: list[str]) -> tuple[float, float]:
    """Return (wall ns per value, CPU seconds) of one pass."""
    cpu, wall = time.process_time(), time.perf_counter_ns()
    for row, value in enumerate(values, start=1):
        function(value, row)
    return (time.perf_counter_ns() - wall) / len(values), time.process_time() - cpu


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("-n", "--values", type=int, default=1_000_000)
    parser.add_argument("-p", "--pairs", type=int, default=3)
    args = parser.parse_args()
    print(f"{args.values:,} values per format, {args.pairs} alternating pairs, medians; zone {ZONE}")
    columns = ("ours ns/row", "ours CPU s", "ref ns/row", "ref CPU s", "CPU ratio")
    print(f"{'format':<18}" + "".join(f"{name:>12}" for name in columns))
    for kind in ("naive-space", "naive-T-fraction", "iso-z", "offset", "epoch-ms"):
        values = _values(kind, args.values)
        ours: list[tuple[float, float]] = []
        reference: list[tuple[float, float]] = []
        for _ in range(args.pairs):
            # A fresh normaliser each pass: its cache is filled inside the measured time.
            ours.append(
                _measure(TimestampNormaliser(column="createdAt", source_timezone=ZONE).normalise, values)
            )
            reference.append(_measure(_reference, values))
        ns, cpu = (statistics.median(x) for x in zip(*ours, strict=True))
        ref_ns, ref_cpu = (statistics.median(x) for x in zip(*reference, strict=True))
        print(f"{kind:<18}{ns:>12.0f}{cpu:>12.2f}{ref_ns:>12.0f}{ref_cpu:>12.2f}{cpu / ref_cpu:>12.2f}")


if __name__ == "__main__":
    main()
