"""Operator that downloads the Wavy (Sinch) open-sessions CSV, verified, to storage or to XCom."""

from __future__ import annotations

from functools import cached_property
from typing import TYPE_CHECKING, Any

from airflow.providers.common.compat.sdk import BaseOperator

from airflow_provider_wavy.exports import DEFAULT_SOURCE_TIMEZONE, check_list_type
from airflow_provider_wavy.operators._xcom import (  # re-exported: they lived here
    DEFAULT_MAX_XCOM_BYTES,
    DEFAULT_MAX_XCOM_ROWS,
    XComMode,
    check_xcom_arguments,
    parse_rows,
)

if TYPE_CHECKING:
    from collections.abc import Sequence

    from airflow.providers.common.compat.sdk import Context
    from airflow.providers.openlineage.extractors import OperatorLineage

    from airflow_provider_wavy._destination import AtomicWriter, Target
    from airflow_provider_wavy.csv.checker import SessionsCsvChecker, SessionsCsvSummary
    from airflow_provider_wavy.exports import Export
    from airflow_provider_wavy.hooks.wavy import FileDownload, WavyHook
    from airflow_provider_wavy.pipeline import Buffer


#: A download to a destination streams through a fixed pool of buffers, so memory does not grow with the
#: file: 6 buffers of 4 MiB. Large buffers mean fewer system calls and thread hand-offs per GiB (the sizes
#: compared are in benchmarks/README.md). A multiple of 2 MiB, so that each buffer can be backed by huge
#: pages.
_BUFFER_SIZE = 4 * 1024 * 1024
_BUFFERS = 6
#: Time allowed to close and rename (on object stores: copy) a complete download: with the download's own
#: time limit, the age past which a temporary sibling cannot belong to a live writer.
_COMMIT_MARGIN = 1800.0


class WavyOpenSessionsOperator(XComMode, BaseOperator):
    """
    Download the Wavy open-sessions CSV, verifying it while it streams, to a destination or to XCom.

    The file is written under a temporary name beside the destination and renamed into place only once it
    is complete and verified (header with ``source``/``origin`` and ``session_created_at``, delimiter ``;``
    or ``,``, length as announced). On any failure nothing is left at the destination.

    :param customer_id: the Wavy customer id (templated); defaults to the connection's ``customer_id`` extra.
    :param sub_account_id: the sub-account id (templated); defaults to the connection's extra.
    :param file_url: the file URL to download (templated), typically the sensor's XCom
        (``"{{ ti.xcom_pull(task_ids='wait_for_sessions') }}"``); when empty the API is asked.
    :param destination: where to write (templated): a local path, a URL (``file://``, ``s3://``, ``gs://``,
        ...) or an ``ObjectStoragePath``. Ending in ``/``, it is a folder and the file is named
        ``wavy_open_sessions_<customer>[_<sub_account>]_<ds>.csv``. None returns the rows through XCom.
    :param destination_conn_id: the connection of the object store (e.g. an ``aws`` connection for s3://).
    :param wavy_conn_id: the ``wavy`` connection.
    :param max_xcom_rows: in XCom mode, the most rows returned; beyond it the task fails (it never
        truncates): use a destination for larger files.
    :param max_xcom_bytes: in XCom mode, the largest size in bytes of the file held in memory and of the
        rows returned, as JSON; the download stops as soon as it is passed and the task fails (it never
        truncates): use a destination for larger files. A header that repeats a column name also fails in
        XCom mode (a row dict would lose one of the values); a destination stores such a file as it is.
    :param normalize_timestamps: in XCom mode, rewrite the export's timestamp column (``session_created_at``,
        ``createdAt``) as ISO 8601 UTC text, ``YYYY-MM-DDTHH:MM:SSZ``, the text the SQL loader loads; an empty
        value becomes None (see docs/timestamps.md). XCom mode only: with a destination it is a ValueError
        (the file is stored exactly as sent).
    :param source_timezone: with ``normalize_timestamps``, the IANA zone of timestamps written without one
        (default ``America/Sao_Paulo``, the zone Wavy documents for the lists).
    :param on_bad_timestamp: with ``normalize_timestamps``, ``"fail"`` (the task fails, naming the row and
        value) or ``"null"`` (bad values become None and are counted in a warning).
    :param include_file_url: add the file URL to the returned summary (it may carry a signature).
    :param download_timeout: the longest the download may take in all, in seconds; the wavy connection's
        ``download_timeout`` extra (default one hour) when not given or shorter.
    :param max_file_bytes: the largest file accepted, counted decoded (a compressed "bomb" stops there);
        the wavy connection's ``max_file_bytes`` extra (default 2 GiB) when not given.
    """

    template_fields: Sequence[str] = (
        "customer_id",
        "sub_account_id",
        "file_url",
        "destination",
        "destination_conn_id",
    )
    ui_color = "#25d366"

    def __init__(
        self,
        *,
        customer_id: str | None = None,
        sub_account_id: str | None = None,
        file_url: str | None = None,
        destination: Any = None,
        destination_conn_id: str | None = None,
        wavy_conn_id: str = "wavy_default",
        max_xcom_rows: int = DEFAULT_MAX_XCOM_ROWS,
        max_xcom_bytes: int = DEFAULT_MAX_XCOM_BYTES,
        normalize_timestamps: bool = False,
        source_timezone: str = DEFAULT_SOURCE_TIMEZONE,
        on_bad_timestamp: str = "fail",
        include_file_url: bool = False,
        download_timeout: float | None = None,
        max_file_bytes: int | None = None,
        **kwargs: Any,
    ) -> None:
        super().__init__(**kwargs)
        _check_limit("download_timeout", download_timeout, float)
        _check_limit("max_file_bytes", max_file_bytes, int)
        if destination_conn_id and destination is None:
            raise ValueError(
                f"destination_conn_id={destination_conn_id!r} was given without a destination: pass "
                "destination='s3://bucket/path/' (or another URL), or leave both out for XCom mode."
            )
        check_xcom_arguments(
            max_xcom_rows=max_xcom_rows,
            max_xcom_bytes=max_xcom_bytes,
            normalize_timestamps=normalize_timestamps,
            source_timezone=source_timezone,
            on_bad_timestamp=on_bad_timestamp,
            destination=destination,
        )
        self.customer_id = customer_id
        self.sub_account_id = sub_account_id
        self.file_url = file_url
        self.destination = destination
        self.destination_conn_id = destination_conn_id
        self.wavy_conn_id = wavy_conn_id
        self.max_xcom_rows = max_xcom_rows
        self.max_xcom_bytes = max_xcom_bytes
        self.normalize_timestamps = normalize_timestamps
        self.source_timezone = source_timezone
        self.on_bad_timestamp = on_bad_timestamp
        self.include_file_url = include_file_url
        self.download_timeout = download_timeout
        self.max_file_bytes = max_file_bytes
        self._lineage_input: tuple[str, str] | None = None
        self._lineage_output: tuple[str, str] | None = None

    @cached_property
    def hook(self) -> WavyHook:
        """Return the Wavy hook (imported on first use: DAG parsing stays cheap)."""
        from airflow_provider_wavy.hooks.wavy import WavyHook

        return WavyHook(wavy_conn_id=self.wavy_conn_id)

    # -- execute ------------------------------------------------------------------------------------------

    def execute(self, context: Context) -> Any:
        """Download and verify the file; return a summary, or the rows in XCom mode."""
        from airflow_provider_wavy._destination import resolve_target
        from airflow_provider_wavy.urls import origin_and_path

        customer, sub_account = self._resolve_ids()
        # The destination is checked before the API is asked: a bad argument fails without a request.
        target = None
        if self.destination is not None:
            file_name = self._default_file_name(customer, sub_account, context)
            target = resolve_target(self.destination, self.destination_conn_id, file_name)
            self._lineage_output = (target.lineage_namespace, target.lineage_name)
        file_url = self._file_url(customer, sub_account)
        # Origin and path only: a signed URL's query string must not reach the lineage backend.
        self._lineage_input = origin_and_path(file_url)
        if target is None:
            return self._to_xcom(file_url)
        return self._to_destination(file_url, target, context)

    def _resolve_ids(self) -> tuple[str | None, str | None]:
        from airflow_provider_wavy.exceptions import WavyConfigurationError

        try:
            return self.hook.resolve_ids(self.customer_id, self.sub_account_id)
        except WavyConfigurationError:
            if self.file_url:
                # The file URL alone is enough to download; the ids only name the file then.
                return None, self.sub_account_id or None
            raise

    def _file_url(self, customer: str | None, sub_account: str | None) -> str:
        return source_file_url(self.hook, self._export(), self.file_url, customer, sub_account)

    def _export(self) -> Export:
        """Return what this operator downloads (the open sessions; a list for ``WavyListOperator``)."""
        from airflow_provider_wavy.exports import OPEN_SESSIONS

        return OPEN_SESSIONS

    def _download_limit(self) -> float:
        """Return the longest a download may take: a writer's temporary file is never older (plus commit)."""
        own = self.download_timeout if self.download_timeout is not None else float("inf")
        return min(self.hook.settings.download_timeout, own)

    def _open(self, file_url: str) -> Any:
        return self.hook.open_file(file_url, timeout=self.download_timeout, max_bytes=self.max_file_bytes)

    def _default_file_name(self, customer: str | None, sub_account: str | None, context: Context) -> str:
        from airflow_provider_wavy._destination import safe_name_part

        stamp = context.get("ds") or str(context.get("run_id") or "run")
        parts = [f"wavy_{self._export().key}"]
        parts += [safe_name_part(value) for value in (customer, sub_account) if value]
        parts.append(safe_name_part(str(stamp)))
        return "_".join(parts) + ".csv"

    def _to_destination(self, file_url: str, target: Target, context: Context) -> dict[str, Any]:
        from airflow_provider_wavy._destination import AtomicWriter, DestinationError, writer_ids
        from airflow_provider_wavy.exceptions import WavyDownloadError

        try:
            writer_lifetime = self._download_limit() + _COMMIT_MARGIN
            this_try, earlier_tries = writer_ids(context)
            with (
                self._open(file_url) as download,
                AtomicWriter(
                    target, stale_after=writer_lifetime, writer_id=this_try, dead_writers=earlier_tries
                ) as writer,
            ):
                summary = self._stream(download, writer, target)
                writer.commit()
        except DestinationError as failure:
            # Only the destination's own failures (OSError, an object store's errors such as botocore's
            # NoCredentialsError) get this wording; anything else passes as it is.
            error = failure.cause
            detail = error.strerror if isinstance(error, OSError) and error.strerror else error
            reason = f"{type(error).__name__}: {detail}"
            raise WavyDownloadError(
                f"Cannot write the {self._export().title} file to {target.uri} ({reason}). Check that the "
                "destination exists and is writable (for object stores: the bucket and destination_conn_id's "
                "rights); nothing was kept there."
            ) from None
        self.log.info(
            "Wrote %s: %d sessions, %s bytes, sha256 %s.",
            target.uri,
            summary.rows,
            f"{summary.bytes:,}",
            summary.sha256,
        )
        self._annotate_outlets(context, target, summary)
        result: dict[str, Any] = {
            "destination": target.uri,
            "rows": summary.rows,
            "bytes": summary.bytes,
            "sha256": summary.sha256,
            "delimiter": summary.delimiter,
            "columns": list(summary.columns),
        }
        if self.include_file_url:
            result["file_url"] = file_url
        return result

    def _stream(self, download: FileDownload, writer: AtomicWriter, target: Target) -> SessionsCsvSummary:
        """Copy the download into the writer while verifying it; hashing and writing run in two threads."""
        import dataclasses

        from airflow_provider_wavy.csv.checker import SessionsCsvChecker
        from airflow_provider_wavy.pipeline import Pipeline, Progress

        # Three stages, each on its own thread: this one reads and verifies a buffer while the others hash
        # and write the buffers before it. Reading, hashing, writing and (with NumPy) row counting all
        # release the GIL, so the stages run on separate cores at once.
        checker = SessionsCsvChecker(hash_bytes=False, export=self._export())
        progress = Progress(self.log, download.expected_size)
        pipeline = Pipeline(writer.write, _BUFFERS, _BUFFER_SIZE)
        try:
            while size := download.readinto(buffer := pipeline.take()):
                pipeline.submit(buffer, size)
                # The checker keeps no reference to the buffer; a short read (the file's end) is copied.
                self._feed(checker, buffer if size == len(buffer) else buffer[:size], download, target.uri)
                progress.update(checker.bytes_so_far)
        except BaseException:
            pipeline.abort()
            raise
        sha256 = pipeline.close()
        summary = self._finish(checker, download, target.uri)
        return dataclasses.replace(summary, sha256=sha256)

    def _feed(
        self, checker: SessionsCsvChecker, chunk: bytes | Buffer, download: FileDownload, where: str
    ) -> None:
        from airflow_provider_wavy.csv.checker import SessionsCsvError

        try:
            checker.feed(chunk)
        except SessionsCsvError as error:
            raise self._csv_error(error, download, where) from None

    def _finish(self, checker: SessionsCsvChecker, download: FileDownload, where: str) -> SessionsCsvSummary:
        from airflow_provider_wavy.csv.checker import SessionsCsvError

        try:
            return checker.finish()
        except SessionsCsvError as error:
            raise self._csv_error(error, download, where) from None

    def _csv_error(self, error: Exception, download: FileDownload, where: str) -> Exception:
        from airflow_provider_wavy.exceptions import WavyDownloadError

        export = self._export()
        return WavyDownloadError(
            f"The file at {download.shown_url} is not the {export.title} CSV: {error}. "
            f"Nothing was written to {where}."
        )

    def _annotate_outlets(self, context: Context, target: Target, summary: SessionsCsvSummary) -> None:
        """Attach the summary to the asset events of this task's outlets, for downstream consumers."""
        from airflow.providers.common.compat.sdk import Asset

        events = context.get("outlet_events")
        if events is None:
            return
        for outlet in self.outlets or ():
            if isinstance(outlet, Asset):
                events[outlet].extra.update(
                    {"destination": target.uri, "rows": summary.rows, "sha256": summary.sha256}
                )

    # -- lineage ------------------------------------------------------------------------------------------

    def get_openlineage_facets_on_complete(self, task_instance: Any) -> OperatorLineage[Any, Any]:
        """Report the file host as input and the destination as output (OpenLineage provider only)."""
        from airflow.providers.common.compat.openlineage.facet import Dataset
        from airflow.providers.openlineage.extractors import OperatorLineage

        inputs = [Dataset(namespace=ns, name=name) for ns, name in filter(None, [self._lineage_input])]
        outputs = [Dataset(namespace=ns, name=name) for ns, name in filter(None, [self._lineage_output])]
        return OperatorLineage(inputs=inputs, outputs=outputs)


class WavyListOperator(WavyOpenSessionsOperator):
    """
    Download a Wavy list (OPT-OUT, OPT-IN, BLACKLIST, WHITELIST), verified while it streams, as the
    open-sessions operator does: to a destination (atomic, exact) or to XCom (bounded).

    The file must have the list's columns, ``source`` and ``createdAt``. In a folder destination the file is
    named ``wavy_list_<type>_<customer>[_<sub_account>]_<ds>.csv`` (e.g. ``wavy_list_optout_1234_...``).
    Every argument of :class:`WavyOpenSessionsOperator` works the same.

    :param list_type: ``OPTOUT``, ``OPTIN``, ``BLACKLIST`` or ``WHITELIST``, in any case (templated).
    """

    template_fields: Sequence[str] = ("list_type", *WavyOpenSessionsOperator.template_fields)

    def __init__(self, *, list_type: str, **kwargs: Any) -> None:
        super().__init__(**kwargs)
        self.list_type = list_type
        check_list_type(list_type)

    def _export(self) -> Export:
        from airflow_provider_wavy.exports import list_export

        return list_export(self.list_type)


def source_file_url(
    hook: WavyHook, export: Export, given: str | None, customer: str | None, sub_account: str | None
) -> str:
    """
    Return the file URL to download: ``given`` (an operator's ``file_url``) checked, else the API's answer.

    :raises ValueError: ``given`` is not a plain absolute http(s) URL.
    :raises WavyDownloadError: the API has no file yet; the message names the sensor to put before the task.
    """
    from airflow_provider_wavy.exceptions import WavyDownloadError

    given = (given or "").strip()
    if given and given != "None":
        try:
            return hook.check_file_url(given)
        except ValueError as error:
            raise ValueError(f"file_url: {error}") from None
    file_url = hook.get_export_file_url(export, customer, sub_account)
    if not file_url:
        ids = f"customer_id={customer!r}" + (f", sub_account_id={sub_account!r}" if sub_account else "")
        sensor = "WavyOpenSessionsSensor" if export.list_type is None else "WavyListSensor"
        raise WavyDownloadError(
            f"The Wavy API has no {export.title} file yet for {ids}. Put a {sensor} before "
            "this task and pass its result as file_url=\"{{ ti.xcom_pull(task_ids='<sensor task>') }}\"."
        )
    return file_url


def _check_limit(name: str, value: object, kind: type) -> None:
    """Refuse a limit argument that is not a positive number (None means the connection's)."""
    if value is None:
        return
    ok = isinstance(value, int | float) and not isinstance(value, bool) and value > 0
    if not ok or (kind is int and not isinstance(value, int)):
        noun = "a whole number" if kind is int else "a number of seconds"
        raise ValueError(f"{name} must be {noun} > 0, or None for the wavy connection's; got {value!r}.")


__all__ = [
    "DEFAULT_MAX_XCOM_BYTES",
    "DEFAULT_MAX_XCOM_ROWS",
    "WavyListOperator",
    "WavyOpenSessionsOperator",
    "parse_rows",
]
