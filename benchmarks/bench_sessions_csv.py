"""
Benchmark SessionsCsvChecker against the floor it must stay close to, and against csv.reader.

The floor is what any streaming download that hashes and counts lines pays: ``hashlib.sha256.update`` plus
``bytes.count(b"\\n")`` per chunk. Each file shape is generated once in memory and cut into chunks before
timing, so every contender is timed on the same chunks in the same run.

Run: ``python benchmarks/bench_sessions_csv.py --size-mib 256``
"""

from __future__ import annotations

import argparse
import csv
import functools
import gc
import hashlib
import io
import random
import time
from typing import TYPE_CHECKING

from airflow_provider_wavy.csv.checker import SessionsCsvChecker

if TYPE_CHECKING:
    from collections.abc import Callable

SHAPES = ("lf", "crlf", "quoted")


def make_file(shape: str, size: int) -> bytes:
    """
    Return about ``size`` bytes of a realistic open-sessions CSV: fixed-width phone and ISO 8601 rows.

    :param shape: ``lf``, ``crlf`` (CRLF line ends) or ``quoted`` (every field quoted, LF line ends).
    :param size: the approximate size in bytes.
    """
    rng = random.Random(7)
    line_end = "\r\n" if shape == "crlf" else "\n"
    quote = '"' if shape == "quoted" else ""
    header = f"{quote}source{quote};{quote}session_created_at{quote}{line_end}"
    # A block of distinct rows repeated: generating every row would dominate the run for no benefit.
    block = "".join(
        f"{quote}55{rng.randrange(10**11):011d}{quote};"
        f"{quote}2026-11-{rng.randrange(1, 29):02d}T{rng.randrange(24):02d}:{rng.randrange(60):02d}:"
        f"{rng.randrange(60):02d}Z{quote}{line_end}"
        for _ in range(20_000)
    ).encode()
    return header.encode() + block * max(1, size // len(block))


def best_of(repeat: int, run: Callable[[], object]) -> float:
    """
    Return the best wall time of ``repeat`` runs, in seconds.

    :param repeat: how many runs.
    :param run: the work to time.
    """
    best = float("inf")
    for _ in range(repeat):
        gc.collect()
        start = time.perf_counter()
        run()
        best = min(best, time.perf_counter() - start)
    return best


def floor(chunks: list[bytes]) -> int:
    """
    Hash and count line breaks: the reference cost of any streaming verification.

    :param chunks: the file.
    """
    digest = hashlib.sha256()
    lines = 0
    for chunk in chunks:
        digest.update(chunk)
        lines += chunk.count(b"\n")
    digest.hexdigest()
    return lines


def checker(chunks: list[bytes], *, hash_bytes: bool = True) -> int:
    """
    Verify the file with SessionsCsvChecker.

    :param chunks: the file.
    :param hash_bytes: passed to the checker.
    """
    verifier = SessionsCsvChecker(hash_bytes=hash_bytes)
    for chunk in chunks:
        verifier.feed(chunk)
    return verifier.finish().rows


def csv_reader(chunks: list[bytes]) -> int:
    """
    Count non-empty records with csv.reader over the decoded text, the obvious way to do it.

    :param chunks: the file.
    """
    text = io.TextIOWrapper(io.BytesIO(b"".join(chunks)), encoding="utf-8-sig", newline="")
    return sum(1 for record in csv.reader(text, delimiter=";") if record) - 1


def bench_shape(shape: str, size_mib: int, chunk_kib: int, repeat: int, *, with_csv: bool) -> None:
    """
    Time every contender on one file shape and print a line for each.

    :param shape: one of ``SHAPES``.
    :param size_mib: the file size.
    :param chunk_kib: the chunk size.
    :param repeat: runs per contender (csv.reader runs once).
    :param with_csv: also time csv.reader.
    """
    data = make_file(shape, size_mib * 1024 * 1024)
    step = chunk_kib * 1024
    chunks = [data[i : i + step] for i in range(0, len(data), step)]
    del data
    rows = checker(chunks)
    assert rows == floor(chunks) - 1, "the benchmark file has one record per line"
    contenders: list[tuple[str, Callable[[], object], int]] = [
        ("sha256 + bytes.count (floor)", functools.partial(floor, chunks), repeat),
        ("SessionsCsvChecker", functools.partial(checker, chunks), repeat),
        (
            "SessionsCsvChecker(hash_bytes=False)",
            functools.partial(checker, chunks, hash_bytes=False),
            repeat,
        ),
    ]
    if with_csv:
        assert csv_reader(chunks) == rows
        contenders.append(("csv.reader count", functools.partial(csv_reader, chunks), 1))
    size = sum(map(len, chunks))
    reference = 0.0
    for name, run, runs in contenders:
        seconds = best_of(runs, run)
        reference = reference or seconds
        print(f"{shape:8} {name:38} {size / seconds / 1e6:8.0f} {seconds / reference:8.2f}", flush=True)


def main() -> None:
    """Run the benchmark and print throughput and ratios."""
    parser = argparse.ArgumentParser(
        description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter
    )
    parser.add_argument("--size-mib", type=int, default=256, help="file size per shape (default 256)")
    parser.add_argument("--chunk-kib", type=int, default=1024, help="chunk size (default 1024)")
    parser.add_argument(
        "--repeat", type=int, default=3, help="runs per contender; the best counts (default 3)"
    )
    parser.add_argument("--shapes", nargs="+", choices=SHAPES, default=list(SHAPES))
    parser.add_argument("--no-csv", action="store_true", help="skip csv.reader (the slow one)")
    args = parser.parse_args()
    print(
        f"{args.size_mib} MiB per shape, {args.chunk_kib} KiB chunks, best of {args.repeat}; MB = 10**6 bytes"
    )
    print(f"{'shape':8} {'contender':38} {'MB/s':>8} {'x floor':>8}")
    for shape in args.shapes:
        bench_shape(shape, args.size_mib, args.chunk_kib, args.repeat, with_csv=not args.no_csv)


if __name__ == "__main__":
    main()
