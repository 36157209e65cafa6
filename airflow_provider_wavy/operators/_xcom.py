"""
The download operators' XCom mode: the file read into memory, bounded, and returned as row dicts.

With ``normalize_timestamps=True`` the export's timestamp column is normalised to ISO 8601 UTC text by
:class:`~airflow_provider_wavy.csv.timestamps.TimestampNormaliser`, the same text the SQL loader loads.
Imports stay lazy: the operator module imports this one when a DAG file is parsed.
"""

from __future__ import annotations

from typing import TYPE_CHECKING, Any

from airflow_provider_wavy.csv.xcom_rows import parse_rows

if TYPE_CHECKING:
    from collections.abc import Sequence

    from airflow_provider_wavy.csv.checker import SessionsCsvChecker, SessionsCsvSummary
    from airflow_provider_wavy.exports import Export
    from airflow_provider_wavy.hooks.wavy import FileDownload

#: 10,000 sessions are about 0.8 MB of JSON (~75 bytes a row): well inside what every metadata database
#: takes in one XCom row (MySQL's default max_allowed_packet is 64 MB, but the XCom table is read whole by
#: the UI and by each consumer), and small enough to keep a worker's memory flat.
DEFAULT_MAX_XCOM_ROWS = 10_000
#: XCom mode holds the file in memory and returns its rows as JSON: both stay under this many bytes. A
#: sessions row is ~35 bytes of CSV and ~75 of JSON, so DEFAULT_MAX_XCOM_ROWS rows weigh ~0.8 MB; the bound
#: leaves ten times that, and stops a file of wide or enormous rows before memory grows with it.
DEFAULT_MAX_XCOM_BYTES = 8 * 1024 * 1024
#: XCom mode reads small files (10,000 rows are ~0.4 MB) in chunks of this size.
_XCOM_CHUNK_SIZE = 1024 * 1024

Rows = list[dict[str, str | None]]


def check_xcom_arguments(
    *,
    max_xcom_rows: object,
    max_xcom_bytes: object,
    normalize_timestamps: bool,
    source_timezone: str,
    on_bad_timestamp: str,
    destination: object,
) -> None:
    """Refuse XCom-mode arguments that are wrong, or that would be silently ignored (ValueError)."""
    from airflow_provider_wavy.exports import DEFAULT_SOURCE_TIMEZONE

    if isinstance(max_xcom_rows, bool) or not isinstance(max_xcom_rows, int) or max_xcom_rows < 0:
        raise ValueError(f"max_xcom_rows must be a whole number >= 0, got {max_xcom_rows!r}.")
    if isinstance(max_xcom_bytes, bool) or not isinstance(max_xcom_bytes, int) or max_xcom_bytes < 1:
        raise ValueError(f"max_xcom_bytes must be a whole number of bytes >= 1, got {max_xcom_bytes!r}.")
    if not normalize_timestamps:
        if source_timezone != DEFAULT_SOURCE_TIMEZONE or on_bad_timestamp != "fail":
            raise ValueError(
                "source_timezone and on_bad_timestamp apply only with normalize_timestamps=True: pass it "
                "as well, or leave them out."
            )
        return
    # Only a DAG that asks for normalised rows pays for the timestamp rules (and the zone database) when
    # it is parsed.
    from airflow_provider_wavy.csv.timestamps import check_on_bad_timestamp, load_zone

    if destination is not None:
        raise ValueError(
            "normalize_timestamps=True applies to XCom mode only: a destination receives the file exactly "
            "as Wavy sent it (its sha256 is the file's). Leave destination out to get normalised rows in "
            "XCom, or load the file with the SQL transfer operator, which normalises as it loads."
        )
    check_on_bad_timestamp(on_bad_timestamp)
    load_zone(source_timezone)


class XComMode:
    """The XCom mode of :class:`~airflow_provider_wavy.operators.wavy.WavyOpenSessionsOperator` (a mixin)."""

    max_xcom_rows: int
    max_xcom_bytes: int
    normalize_timestamps: bool
    source_timezone: str
    on_bad_timestamp: str

    if TYPE_CHECKING:
        # Provided by the operator (and BaseOperator).
        log: Any  # a logging.Logger on Airflow 2, a structlog logger on Airflow 3

        def _export(self) -> Export: ...
        def _open(self, file_url: str) -> Any: ...
        def _feed(
            self, checker: SessionsCsvChecker, chunk: bytes, download: FileDownload, where: str
        ) -> None: ...
        def _finish(
            self, checker: SessionsCsvChecker, download: FileDownload, where: str
        ) -> SessionsCsvSummary: ...
        def _csv_error(self, error: Exception, download: FileDownload, where: str) -> Exception: ...

    def _to_xcom(self, file_url: str) -> Rows:
        """Download the file into memory (bounded in rows and bytes) and return its rows as dicts."""
        from airflow_provider_wavy.csv.checker import SessionsCsvChecker
        from airflow_provider_wavy.csv.xcom_rows import RowsTooLargeError
        from airflow_provider_wavy.pipeline import Progress

        checker = SessionsCsvChecker(hash_bytes=False, export=self._export())
        chunks: list[bytes] = []
        header: tuple[str, ...] | None = None
        with self._open(file_url) as download:
            progress = Progress(self.log, download.expected_size)
            for chunk in download.iter_chunks(_XCOM_CHUNK_SIZE):
                self._feed(checker, chunk, download, "XCom")
                if header is None and (header := checker.header) is not None:
                    self._check_xcom_columns(header, download)  # before the rest of the file downloads
                if checker.rows_so_far > self.max_xcom_rows:
                    raise self._too_many_rows(f"more than {checker.rows_so_far:,}")
                if checker.bytes_so_far > self.max_xcom_bytes:
                    raise self._too_large(f"the download passed {checker.bytes_so_far:,} bytes")
                chunks.append(chunk)
                progress.update(checker.bytes_so_far)
            summary = self._finish(checker, download, "XCom")
        if summary.rows > self.max_xcom_rows:
            raise self._too_many_rows(f"{summary.rows:,}")
        self._check_xcom_columns(summary.columns, download)
        data = b"".join(chunks)
        chunks.clear()  # one copy of the file in memory while it is parsed, not two
        try:
            rows = parse_rows(
                data, summary.delimiter, summary.columns, summary.encoding_bom, max_bytes=self.max_xcom_bytes
            )
        except RowsTooLargeError as error:
            raise self._too_large(str(error)) from None
        except ValueError as error:
            raise self._csv_error(error, download, "XCom") from None
        if self.normalize_timestamps:
            self._normalise(rows, summary.columns)
        self.log.info("Read %d sessions (%s bytes) into XCom.", len(rows), f"{summary.bytes:,}")
        return rows

    def _normalise(self, rows: Rows, columns: Sequence[str]) -> None:
        """Rewrite the timestamp column of every row as ISO 8601 UTC text, in place (still bounded)."""
        import json

        from airflow_provider_wavy.csv.timestamps import TimestampNormaliser

        wanted = self._export().columns.timestamp.casefold()
        # The checker matched the header without case: the rows are keyed by the name as the file wrote it.
        column = next(name for name in columns if name.casefold() == wanted)
        normaliser = TimestampNormaliser(
            column=column, source_timezone=self.source_timezone, on_bad_timestamp=self.on_bad_timestamp
        )
        normalise = normaliser.normalise
        growth = 0
        for number, row in enumerate(rows, start=1):
            value = row[column]
            if value is not None:
                row[column] = new = normalise(value, number)
                growth += (4 if new is None else len(new) + 2) - (len(value) + 2)
        if normaliser.bad_count:
            self.log.warning(
                "%d values of column %r are not timestamps and became None (on_bad_timestamp='null').",
                normaliser.bad_count,
                column,
            )
        # Normalised text may be longer than the original (epoch milliseconds: 13 -> 24 characters).
        if growth > 0 and (size := len(json.dumps(rows))) > self.max_xcom_bytes:
            raise self._too_large(f"the rows as JSON reach {size:,} bytes with normalised timestamps")

    def _check_xcom_columns(self, columns: Sequence[str] | None, download: FileDownload) -> None:
        from airflow_provider_wavy.csv.xcom_rows import duplicate_column
        from airflow_provider_wavy.exceptions import WavyDownloadError

        repeated = duplicate_column(columns or ())
        if repeated is None:
            return
        name, first, second = repeated
        raise WavyDownloadError(
            f"The file at {download.shown_url} repeats the column {name!r} (columns {first} and {second}, "
            "compared without case, spaces and quotes) in its header: XCom rows are dicts, so one of the two "
            "values would be lost. Pass destination='s3://bucket/folder/' (or a local path) to store the "
            "file as it is."
        )

    def _too_many_rows(self, count: str) -> Exception:
        from airflow_provider_wavy.exceptions import WavyDownloadError

        return WavyDownloadError(
            f"The {self._export().title} file has {count} rows, above max_xcom_rows={self.max_xcom_rows:,}: "
            "XCom mode "
            "returns every row or fails, it never truncates. Pass destination='s3://bucket/folder/' (or a "
            "local path) to store the file and read it downstream, or raise max_xcom_rows if your XCom "
            "backend takes the size."
        )

    def _too_large(self, what: str) -> Exception:
        from airflow_provider_wavy.exceptions import WavyDownloadError

        return WavyDownloadError(
            f"The {self._export().title} file is too large for XCom: {what}, "
            f"max_xcom_bytes={self.max_xcom_bytes:,} "
            "exceeded. XCom mode holds the file in memory and returns every row or fails, it never "
            "truncates. Pass destination='s3://bucket/folder/' (or a local path) to store the file and read "
            "it downstream, or raise max_xcom_bytes if your XCom backend and the worker's memory take the "
            "size."
        )


__all__ = [
    "DEFAULT_MAX_XCOM_BYTES",
    "DEFAULT_MAX_XCOM_ROWS",
    "XComMode",
    "check_xcom_arguments",
    "parse_rows",
]
