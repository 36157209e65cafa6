"""Operator that loads a Wavy export (open sessions or a list), verified, into a SQL table atomically."""

from __future__ import annotations

from functools import cached_property
from typing import TYPE_CHECKING, Any

from airflow.providers.common.compat.sdk import BaseOperator

from airflow_provider_wavy.transfers._table import OPEN_SESSIONS_TYPE, split_table_name

if TYPE_CHECKING:
    from collections.abc import Sequence
    from datetime import datetime

    from airflow.providers.common.compat.sdk import Context

    from airflow_provider_wavy.exports import Export
    from airflow_provider_wavy.hooks.wavy import FileDownload, WavyHook
    from airflow_provider_wavy.transfers._load import LoadKey

MODES = ("snapshot", "replace")


class WavyToSqlOperator(BaseOperator):
    """
    Load the Wavy open sessions (or a list) into a SQL table, verified while it streams, in one transaction.

    The rows of the same key (customer, sub-account, list type, and ``snapshot_at`` in snapshot mode) are
    deleted and the file's rows loaded in one transaction, committed only once the file is complete and
    verified (header, rows, SHA-256, ``Content-Length``): any failure leaves the table exactly as it was, and
    running the task again gives the same rows. PostgreSQL is fed with ``COPY ... FROM STDIN`` as the file
    arrives; any other common-sql ``DbApiHook`` gets batched inserts. See docs/sql.md for the table.

    :param table: the table, ``table`` or ``schema.table`` (templated); names are quoted as given.
    :param sql_conn_id: a connection whose hook is a common-sql ``DbApiHook`` (postgres, sqlite, mysql, ...).
    :param customer_id: the Wavy customer id (templated); defaults to the wavy connection's extra.
    :param sub_account_id: the sub-account id (templated); defaults to the wavy connection's extra.
    :param file_url: the file URL (templated), typically the sensor's XCom; when empty the API is asked.
    :param snapshot_at: the moment the snapshot stands for (templated; a datetime or ISO 8601 text, UTC when
        naive); default the run's data interval end, or its logical date where there is no interval.
    :param list_type: None for the open sessions, else ``OPTOUT``, ``OPTIN``, ``BLACKLIST`` or ``WHITELIST``.
    :param mode: ``"snapshot"`` keeps one snapshot per ``snapshot_at``; ``"replace"`` keeps only the latest
        per customer, sub-account and list type.
    :param source_timezone: the time zone of timestamps the file writes without an offset.
    :param on_bad_timestamp: ``"fail"`` (nothing is loaded) or ``"null"`` (stored as NULL and counted).
    :param create_table: create the table and its index when missing.
    :param wavy_conn_id: the ``wavy`` connection.
    """

    template_fields: Sequence[str] = ("table", "customer_id", "sub_account_id", "file_url", "snapshot_at")
    ui_color = "#25d366"

    def __init__(
        self,
        *,
        table: str,
        sql_conn_id: str,
        customer_id: str | None = None,
        sub_account_id: str | None = None,
        file_url: str | None = None,
        snapshot_at: str | datetime | None = None,
        list_type: str | None = None,
        mode: str = "snapshot",
        source_timezone: str = "America/Sao_Paulo",
        on_bad_timestamp: str = "fail",
        create_table: bool = True,
        wavy_conn_id: str = "wavy_default",
        **kwargs: Any,
    ) -> None:
        super().__init__(**kwargs)
        if "{{" not in str(table):
            split_table_name(table)  # a bad name fails when the DAG is parsed
        if mode not in MODES:
            raise ValueError(f"mode must be 'snapshot' or 'replace', got {mode!r}.")
        from airflow_provider_wavy.csv.timestamps import check_on_bad_timestamp, load_zone

        check_on_bad_timestamp(on_bad_timestamp)
        load_zone(source_timezone)
        if not sql_conn_id or not isinstance(sql_conn_id, str):
            raise ValueError(f"sql_conn_id must name a database connection, got {sql_conn_id!r}.")
        self.table = table
        self.sql_conn_id = sql_conn_id
        self.customer_id = customer_id
        self.sub_account_id = sub_account_id
        self.file_url = file_url
        self.snapshot_at = snapshot_at
        self.list_type = list_type
        self.mode = mode
        self.source_timezone = source_timezone
        self.on_bad_timestamp = on_bad_timestamp
        self.create_table = create_table
        self.wavy_conn_id = wavy_conn_id
        self._export()  # a wrong list_type fails when the DAG is parsed

    @cached_property
    def hook(self) -> WavyHook:
        """Return the Wavy hook (imported on first use: DAG parsing stays cheap)."""
        from airflow_provider_wavy.hooks.wavy import WavyHook

        return WavyHook(wavy_conn_id=self.wavy_conn_id)

    def _export(self) -> Export:
        from airflow_provider_wavy.exports import OPEN_SESSIONS, list_export

        return OPEN_SESSIONS if self.list_type is None else list_export(self.list_type)

    def execute(self, context: Context) -> dict[str, Any]:
        """Load the file; return the summary (no phone number, no URL)."""
        from airflow_provider_wavy.operators.wavy import source_file_url
        from airflow_provider_wavy.transfers._load import LoadKey, TableLoad

        parts = split_table_name(self.table)
        export = self._export()
        customer, sub_account = self.hook.resolve_ids(self.customer_id, self.sub_account_id)
        key = LoadKey(
            customer=customer,
            sub_account=sub_account or None,
            list_type=export.list_type or OPEN_SESSIONS_TYPE,
            snapshot_at=_iso_utc(self._snapshot_moment(context)),
            with_snapshot=self.mode == "snapshot",
        )
        sql_hook = self._sql_hook()
        file_url = source_file_url(self.hook, export, self.file_url, customer, sub_account)

        def run() -> dict[str, Any]:
            # Leaving the TableLoad block rolls back whatever failed, before _guard words the error.
            with TableLoad(sql_hook, parts, create_table=self.create_table) as load:
                load.prepare()
                with self.hook.open_file(file_url) as download:
                    return self._load(load, key, download, export)

        result: dict[str, Any] = self._guard(run)
        self.log.info(
            "Loaded %d rows into %s (%s mode, snapshot_at %s, %d bad timestamps), sha256 %s.",
            result["rows"], self.table, self.mode, key.snapshot_at, result["bad_timestamps"],
            result["sha256"],
        )  # fmt: skip
        self._annotate_outlets(context, result)
        return result

    def _load(self, load: Any, key: LoadKey, download: FileDownload, export: Export) -> dict[str, Any]:
        from airflow_provider_wavy.csv.timestamps import TimestampNormaliser
        from airflow_provider_wavy.transfers._rows import RowMaker, VerifiedRecords

        records = VerifiedRecords(download, export, lambda error: self._csv_error(error, download))
        normaliser = TimestampNormaliser(
            column=export.columns.timestamp,
            source_timezone=self.source_timezone,
            on_bad_timestamp=self.on_bad_timestamp,
        )
        columns = records.open()  # a file that is not the CSV fails here, before the database is touched
        fail = lambda what: self._csv_error(ValueError(what), download)  # noqa: E731
        maker = RowMaker(columns, export, _key_tuple(key), normaliser.normalise, fail)

        def verified() -> None:
            summary = records.summary
            if summary is None or summary.rows != maker.count:
                raise self._csv_error(ValueError("the rows read do not match the rows verified"), download)

        load.load(key, maker.rows(iter(records)), verified)
        assert records.summary is not None
        return {
            "table": self.table,
            "rows": maker.count,
            "snapshot_at": key.snapshot_at,
            "bad_timestamps": normaliser.bad_count,
            "sha256": records.summary.sha256,
            "mode": self.mode,
            "list_type": key.list_type,
        }

    def _guard(self, work: Any) -> Any:
        """Run the load; wrap a driver's error (connecting included) into one clear message."""
        from airflow_provider_wavy.exceptions import WavySqlError
        from airflow_provider_wavy.transfers._context import describe_database_error, is_own_error

        try:
            return work()
        except Exception as error:
            if is_own_error(error):
                raise
            raise WavySqlError(describe_database_error(error, self.table, self.sql_conn_id)) from None

    def _sql_hook(self) -> Any:
        from airflow_provider_wavy.transfers._context import sql_hook

        return sql_hook(self.sql_conn_id)

    def _snapshot_moment(self, context: Context) -> datetime:
        from airflow_provider_wavy.transfers._context import snapshot_moment

        return snapshot_moment(self.snapshot_at, context)

    def _csv_error(self, error: Exception, download: FileDownload) -> Exception:
        from airflow_provider_wavy.exceptions import WavyDownloadError

        return WavyDownloadError(
            f"The file at {download.shown_url} is not the {self._export().title} CSV: {error}. "
            f"Nothing was loaded: {self.table} holds what it held before."
        )

    def _annotate_outlets(self, context: Context, result: dict[str, Any]) -> None:
        """Attach the summary to the asset events of this task's outlets, for downstream consumers."""
        from airflow.providers.common.compat.sdk import Asset

        events = context.get("outlet_events")
        if events is None:
            return
        for outlet in self.outlets or ():
            if isinstance(outlet, Asset):
                events[outlet].extra.update(
                    {k: result[k] for k in ("table", "rows", "sha256", "snapshot_at")}
                )


def _key_tuple(key: LoadKey) -> tuple[str, str | None, str, str]:
    return key.customer, key.sub_account, key.list_type, key.snapshot_at


def _iso_utc(moment: datetime) -> str:
    from datetime import UTC

    utc = moment.astimezone(UTC)
    fraction = f".{utc.microsecond:06d}" if utc.microsecond else ""
    return utc.strftime("%Y-%m-%dT%H:%M:%S") + fraction + "Z"


__all__ = ["WavyToSqlOperator"]
