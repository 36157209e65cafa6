"""
A process that writes through AtomicWriter and then waits: the victim (or the live rival) in sweep tests.

``python -m tests.writer_child local PATH MIB`` or ``python -m tests.writer_child s3 ENDPOINT BUCKET/KEY MIB``
opens an AtomicWriter on the target, writes MIB MiB of ``b"c"``, prints ``ready`` and waits for a line on
stdin: ``commit`` writes ``b"end\\n"``, commits and prints ``committed``; anything else (or stdin closing,
when the test that started it is gone) leaves without committing. A test SIGKILLs it while it waits.
"""

from __future__ import annotations

import sys

from airflow_provider_wavy._destination import AtomicWriter, Target

MIB = 2**20


def child_bytes(mib: int) -> bytes:
    """Return what a child asked for ``mib`` MiB publishes when told to commit."""
    return b"c" * (mib * MIB) + b"end\n"


def _target(argv: list[str]) -> tuple[Target, int]:
    if argv[0] == "local":
        return Target(uri=f"file://{argv[1]}", path=argv[1], fs=None, scheme="file"), int(argv[2])
    import s3fs

    fs = s3fs.S3FileSystem(
        key="testing",
        secret="testing",
        client_kwargs={"endpoint_url": argv[1], "region_name": "us-east-1"},
        skip_instance_cache=True,
        default_block_size=5 * MIB,
    )
    return Target(uri=f"s3://{argv[2]}", path=argv[2], fs=fs, scheme="s3"), int(argv[3])


def main(argv: list[str]) -> None:
    """Write, announce, wait for the test's word."""
    target, mib = _target(argv)
    with AtomicWriter(target) as writer:
        for _ in range(mib):
            writer.write(b"c" * MIB)
        print("ready", writer.temp_path, flush=True)
        if sys.stdin.readline().strip() == "commit":
            writer.write(b"end\n")
            writer.commit()
            print("committed", flush=True)


if __name__ == "__main__":
    main(sys.argv[1:])
