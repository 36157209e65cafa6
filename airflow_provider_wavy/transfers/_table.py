"""
The table ``WavyToSqlOperator`` loads: its name checked and quoted, its DDL, its statements.

Every identifier is quoted (the driver's own quoting for PostgreSQL, the hook's escape format elsewhere);
every value is a bound parameter or COPY data. Nothing from the file or the arguments is pasted into SQL.
"""

from __future__ import annotations

import unicodedata
from dataclasses import dataclass
from typing import TYPE_CHECKING, Final

if TYPE_CHECKING:
    from collections.abc import Callable

#: The loaded columns, in order; ``extra`` holds a row's columns beyond the export's as a JSON object.
COLUMNS: Final = ("customer_id", "sub_account_id", "list_type", "snapshot_at", "phone", "created_at", "extra")
#: ``list_type`` of the open sessions (a list's rows hold the list's name: OPTOUT, ...).
OPEN_SESSIONS_TYPE: Final = "OPEN_SESSIONS"
#: The index's name is the table's plus this (PostgreSQL cuts names at 63 bytes).
INDEX_SUFFIX: Final = "_wavy_key"

#: PostgreSQL: timestamptz, jsonb; the text kinds hold phone numbers exactly as served.
POSTGRES_TYPES: Final = {
    "customer_id": "text NOT NULL",
    "sub_account_id": "text",
    "list_type": "text NOT NULL",
    "snapshot_at": "timestamp with time zone NOT NULL",
    "phone": "text NOT NULL",
    "created_at": "timestamp with time zone",
    "extra": "jsonb",
}
#: SQLite: timestamps as ISO 8601 UTC text ("2026-05-11T09:00:00Z"), which sorts in time order.
SQLITE_TYPES: Final = {
    "customer_id": "TEXT NOT NULL",
    "sub_account_id": "TEXT",
    "list_type": "TEXT NOT NULL",
    "snapshot_at": "TEXT NOT NULL",
    "phone": "TEXT NOT NULL",
    "created_at": "TEXT",
    "extra": "TEXT",
}
#: Any other database (standard SQL): bounded VARCHARs for the indexed columns.
GENERIC_TYPES: Final = {
    "customer_id": "VARCHAR(255) NOT NULL",
    "sub_account_id": "VARCHAR(255)",
    "list_type": "VARCHAR(32) NOT NULL",
    "snapshot_at": "TIMESTAMP WITH TIME ZONE NOT NULL",
    "phone": "VARCHAR(255) NOT NULL",
    "created_at": "TIMESTAMP WITH TIME ZONE",
    "extra": "TEXT",
}
#: The delete key, indexed.
KEY: Final = ("customer_id", "sub_account_id", "list_type", "snapshot_at")


def split_table_name(table: str) -> tuple[str, ...]:
    """
    Split ``table`` or ``schema.table`` into its parts, taken literally (they are quoted, case kept).

    :raises ValueError: not text, an empty part, more than two parts, or a control character.
    """
    if not isinstance(table, str) or not table:
        raise ValueError(
            f"table must be a table name such as 'wavy_sessions' or 'schema.table', got {table!r}."
        )
    parts = tuple(table.split("."))
    if len(parts) > 2 or any(not part or part != part.strip() for part in parts):
        raise ValueError(
            f"table={table!r} is not 'table' or 'schema.table': each part must be non-empty, without "
            "surrounding spaces, and a name cannot contain a dot. Names are quoted as given (case kept)."
        )
    if any(unicodedata.category(char) == "Cc" for char in table):
        raise ValueError(f"table={table!r} contains a control character; use a plain table name.")
    return parts


def quote_with_format(word: str, escape_format: str) -> str:
    """
    Quote an identifier with a hook's escape format (``"{}"``, backquotes or brackets), doubling its closing
    character inside the name; any other format falls back to standard double quotes.
    """
    opening, _, closing = escape_format.partition("{}")
    if len(opening) != 1 or len(closing) != 1:
        opening = closing = '"'
    return f"{opening}{word.replace(closing, closing * 2)}{closing}"


@dataclass(frozen=True)
class Statements:
    """
    The SQL text of one load, identifiers already quoted; values are bound with ``placeholder``.

    :param parts: the table's name parts, unquoted.
    :param quote: quotes one identifier.
    :param types: column -> type and constraint.
    :param placeholder: the DB-API parameter marker (``%s``, ``?``).
    """

    parts: tuple[str, ...]
    quote: Callable[[str], str]
    types: dict[str, str]
    placeholder: str = "%s"

    @property
    def table(self) -> str:
        return ".".join(self.quote(part) for part in self.parts)

    @property
    def column_list(self) -> str:
        return ", ".join(self.quote(column) for column in COLUMNS)

    def create_table(self) -> str:
        body = ",\n    ".join(f"{self.quote(column)} {self.types[column]}" for column in COLUMNS)
        return f"CREATE TABLE IF NOT EXISTS {self.table} (\n    {body}\n)"

    def create_index(self, *, qualify_index: bool) -> str:
        """
        :param qualify_index: name the index ``schema.index`` and the table bare (SQLite's syntax); else the
            index bare and the table qualified (PostgreSQL's and most others').
        """
        index = self.quote(self.parts[-1] + INDEX_SUFFIX)
        table = self.table
        if qualify_index and len(self.parts) == 2:
            index, table = f"{self.quote(self.parts[0])}.{index}", self.quote(self.parts[1])
        columns = ", ".join(self.quote(column) for column in KEY)
        return f"CREATE INDEX IF NOT EXISTS {index} ON {table} ({columns})"

    def delete(self, *, with_snapshot: bool, sub_account: bool) -> str:
        """The delete of one key: snapshot mode includes ``snapshot_at``; no sub-account matches NULL."""
        mark = self.placeholder
        where = [f"{self.quote('customer_id')} = {mark}"]
        where.append(f"{self.quote('sub_account_id')} = {mark}" if sub_account else
                     f"{self.quote('sub_account_id')} IS NULL")  # fmt: skip
        where.append(f"{self.quote('list_type')} = {mark}")
        if with_snapshot:
            where.append(f"{self.quote('snapshot_at')} = {mark}")
        # Identifiers quoted, values bound: nothing from the file or the arguments is pasted in.
        return f"DELETE FROM {self.table} WHERE " + " AND ".join(where)  # noqa: S608

    def insert(self) -> str:
        marks = ", ".join([self.placeholder] * len(COLUMNS))
        return f"INSERT INTO {self.table} ({self.column_list}) VALUES ({marks})"  # noqa: S608

    def copy(self) -> str:
        return f"COPY {self.table} ({self.column_list}) FROM STDIN"


def delete_params(
    customer: str, sub_account: str | None, list_type: str, snapshot_at: object, *, with_snapshot: bool
) -> tuple[object, ...]:
    """The values bound to :meth:`Statements.delete`, in order."""
    params: list[object] = [customer]
    if sub_account is not None:
        params.append(sub_account)
    params.append(list_type)
    if with_snapshot:
        params.append(snapshot_at)
    return tuple(params)


__all__ = [
    "COLUMNS",
    "GENERIC_TYPES",
    "KEY",
    "OPEN_SESSIONS_TYPE",
    "POSTGRES_TYPES",
    "SQLITE_TYPES",
    "Statements",
    "delete_params",
    "quote_with_format",
    "split_table_name",
]
