"""What the SQL transfer tests share: the database under test, loading through the operator, files served."""

from __future__ import annotations

import csv
import io
import uuid
from collections import defaultdict
from dataclasses import dataclass
from datetime import UTC
from types import SimpleNamespace
from typing import Any

from airflow_provider_wavy.transfers.wavy_to_sql import WavyToSqlOperator
from tests.hostile import always, answer, serve

SQL_CONN = "wavy_sql_test"
T1 = "2026-05-11T09:00:00Z"
T2 = "2026-05-12T09:00:00Z"


@dataclass
class Db:
    """One database under test, reached through its Airflow connection ``wavy_sql_test``."""

    kind: str

    def hook(self) -> Any:
        from airflow.providers.common.compat.sdk import BaseHook

        return BaseHook.get_connection(SQL_CONN).get_hook()  # type: ignore[no-untyped-call]

    def rows(self, table: str) -> list[tuple[Any, ...]]:
        """Every row, in a stable order, as the database returns it (the byte-for-byte comparison)."""
        quoted = '"' + table.replace('"', '""') + '"'
        cols = "customer_id, sub_account_id, list_type, snapshot_at, phone, created_at, extra"
        extra = "extra::text" if self.kind == "postgres" else "extra"
        select = cols.replace("extra", extra)
        query = f"SELECT {select} FROM {quoted} ORDER BY {select}"  # noqa: S608 - a test's own names
        records = self.hook().get_records(query)
        return [tuple(r) for r in records]

    def run(self, *statements: str) -> None:
        hook = self.hook()
        conn = hook.get_conn()
        try:
            cur = conn.cursor()
            for statement in statements:
                cur.execute(statement)
            conn.commit()
        finally:
            conn.close()


def new_table() -> str:
    return f"wavy_{uuid.uuid4().hex[:10]}"


def make_context(**extra: Any) -> dict[str, Any]:
    events: defaultdict[Any, SimpleNamespace] = defaultdict(lambda: SimpleNamespace(extra={}))
    return {"run_id": "manual__2026-05-11", "outlet_events": events, **extra}


def load(table: str, **kwargs: Any) -> dict[str, Any]:
    kwargs.setdefault("snapshot_at", T1)
    operator = WavyToSqlOperator(task_id="to_sql", table=table, sql_conn_id=SQL_CONN, **kwargs)
    result: dict[str, Any] = operator.execute(make_context())  # type: ignore[arg-type]
    return result


def phones(body: bytes) -> list[str]:
    text = body.decode("utf-8-sig")
    reader = csv.reader(io.StringIO(text), delimiter=";" if ";" in text.partition("\n")[0] else ",")
    next(reader)
    return sorted(row[0] for row in reader if row)


def file_server(body: bytes) -> Any:
    return serve(always(answer(200, body, [("Content-Type", "text/csv")])))


def iso(value: Any) -> str | None:
    """A timestamp as the database returned it (datetime or text) in ISO UTC text."""
    if value is None or isinstance(value, str):
        return value
    return str(value.astimezone(UTC).strftime("%Y-%m-%dT%H:%M:%SZ"))


#: 50 good rows: a fault after them comes once the load has started.
GOOD_ROWS = "".join(f"55119{n:08d};2026-05-11T09:00:00Z\n" for n in range(50))


def body_with(last_lines: str) -> bytes:
    """The sessions header, the 50 good rows, then ``last_lines``."""
    return ("source;session_created_at\n" + GOOD_ROWS + last_lines).encode()
