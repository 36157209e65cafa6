"""What the SQL transfer needs from Airflow: the database hook, the snapshot's moment, error wording."""

from __future__ import annotations

from datetime import UTC, datetime
from typing import TYPE_CHECKING, Any

if TYPE_CHECKING:
    from airflow.providers.common.compat.sdk import Context

#: The longest part of a database's message kept in ours (its first line).
_MAX_DETAIL = 300


def sql_hook(conn_id: str) -> Any:
    """
    Return the hook of ``conn_id``, which must be a common-sql ``DbApiHook``.

    :raises WavySqlHookError: common-sql is missing, or the connection's hook is something else.
    """
    from airflow.providers.common.compat.sdk import BaseHook

    from airflow_provider_wavy.exceptions import WavySqlHookError

    try:
        from airflow.providers.common.sql.hooks.sql import DbApiHook
    except ImportError:
        raise WavySqlHookError(
            "WavyToSqlOperator needs apache-airflow-providers-common-sql (and the provider of your database, "
            "e.g. apache-airflow-providers-postgres): install it on the workers."
        ) from None
    hook = BaseHook.get_connection(conn_id).get_hook()  # type: ignore[no-untyped-call]
    if not isinstance(hook, DbApiHook):
        raise WavySqlHookError(
            f"sql_conn_id={conn_id!r} gives a {type(hook).__name__}, not a SQL database hook (a common-sql "
            "DbApiHook such as PostgresHook, SqliteHook or MySqlHook): point sql_conn_id at a database "
            "connection, and install that database's Airflow provider."
        )
    return hook


def snapshot_moment(given: object, context: Context) -> datetime:
    """
    Return the moment a snapshot stands for: ``given`` (a datetime or ISO 8601 text, UTC when naive), else
    the run's data interval end, else its logical date.

    :raises ValueError: ``given`` is not a moment, or the run has none.
    """
    moment: object = given
    if moment is None or (isinstance(moment, str) and moment.strip() in ("", "None")):
        moment = context.get("data_interval_end") or context.get("logical_date")
        if moment is None:
            raise ValueError(
                "snapshot_at was not given and this run has neither a data interval nor a logical date "
                "(e.g. a manual run on Airflow 3): pass snapshot_at='{{ ts }}' or a fixed time."
            )
    if isinstance(moment, str):
        try:
            moment = datetime.fromisoformat(moment.strip().replace("Z", "+00:00"))
        except ValueError:
            raise ValueError(
                f"snapshot_at={given!r} is not an ISO 8601 date and time such as '2026-05-11T09:00:00Z'."
            ) from None
    if not isinstance(moment, datetime):
        raise ValueError(f"snapshot_at must be a datetime or ISO 8601 text, got {type(moment).__name__}.")
    return moment if moment.tzinfo is not None else moment.replace(tzinfo=UTC)


def is_own_error(error: BaseException) -> bool:
    """Tell the provider's and Airflow's own errors (raised as they are) from a database driver's."""
    from airflow.providers.common.compat.sdk import AirflowException

    return isinstance(error, AirflowException)


def describe_database_error(error: BaseException, table: str, conn_id: str) -> str:
    """Word a database failure: which table, the database's first line, what to do; no stack, no secrets."""
    lines = str(error).strip().splitlines()
    detail = lines[0][:_MAX_DETAIL] if lines else "no message"
    return (
        f"The database refused the load into {table} (sql_conn_id={conn_id!r}): {type(error).__name__}: "
        f"{detail}. The transaction was rolled back: the table holds exactly what it held before. Check "
        "that the table has the columns and types of docs/sql.md (or let the operator create it), that the "
        "connection's user may write it, then run the task again."
    )


__all__ = ["describe_database_error", "is_own_error", "snapshot_moment", "sql_hook"]
