"""
What Wavy exports, as data: one value per CSV the API hands out.

An export names its API path, the answer fields that may hold the file URL, the CSV's columns and its
timestamp column with the documented time zone. The open sessions are one export; the four lists
(OPT-OUT, OPT-IN, BLACKLIST, WHITELIST) are four more. Transports and checkers read these values: a new
endpoint is a new value here, not new transport code.
"""

from __future__ import annotations

import enum
from dataclasses import dataclass
from typing import Final


@dataclass(frozen=True)
class CsvColumns:
    """
    The columns a CSV export must have.

    :param phone: header names of the phone column, in order of preference (any one is enough).
    :param required: the other columns that must be present.
    :param timestamp: the column holding when the row was created.
    :param timezone: the documented time zone of naive timestamps (None when the documentation is silent).
    """

    phone: tuple[str, ...]
    required: tuple[str, ...]
    timestamp: str
    timezone: str | None = None


@dataclass(frozen=True)
class Export:
    """
    One CSV export of the Wavy API.

    :param key: a short machine name (``open_sessions``, ``list_optout``, ...), used in file names.
    :param title: how messages name it ("open-sessions file", "OPTOUT list").
    :param api_path: the path under the base URL, e.g. ``/v1/session``.
    :param url_fields: the answer fields that may hold the file URL, in order.
    :param columns: the CSV's columns.
    :param list_type: the list's type (``OPTOUT``, ...), None for the open sessions.
    """

    key: str
    title: str
    api_path: str
    url_fields: tuple[str, ...]
    columns: CsvColumns
    list_type: str | None = None


#: The English and Spanish pages say ``source``, the Portuguese page ``origem`` (``origin``); the time zone of
#: ``session_created_at`` is not documented.
OPEN_SESSIONS: Final = Export(
    key="open_sessions",
    title="open-sessions",
    api_path="/v1/session",
    # The sessions answer is documented as {"file_url": ...}; the lists' {"data": ...} shape is accepted too.
    url_fields=("file_url", "data"),
    columns=CsvColumns(
        phone=("source", "origin", "origem"), required=("session_created_at",), timestamp="session_created_at"
    ),
)


class WavyListType(enum.StrEnum):
    """The lists Wavy publishes (``GET /v1/list/{type}``)."""

    OPTOUT = "OPTOUT"
    OPTIN = "OPTIN"
    BLACKLIST = "BLACKLIST"
    WHITELIST = "WHITELIST"


#: "The createdAt column is in the America/Sao_Paulo time zone" (Wavy's lists page); also the default zone of
#: naive timestamps in the sessions file, whose zone is not documented (docs/timestamps.md).
DEFAULT_SOURCE_TIMEZONE: Final = "America/Sao_Paulo"
LIST_COLUMNS: Final = CsvColumns(
    phone=("source",), required=("createdAt",), timestamp="createdAt", timezone=DEFAULT_SOURCE_TIMEZONE
)

LISTS: Final = {
    list_type: Export(
        key=f"list_{list_type.value.lower()}",
        title=f"{list_type.value} list",
        api_path=f"/v1/list/{list_type.value}",
        url_fields=("data",),
        columns=LIST_COLUMNS,
        list_type=list_type.value,
    )
    for list_type in WavyListType
}


def list_export(list_type: str | WavyListType) -> Export:
    """
    Return the export of a list type, named in any case.

    :param list_type: ``OPTOUT``, ``OPTIN``, ``BLACKLIST`` or ``WHITELIST`` (or a :class:`WavyListType`).
    :raises ValueError: another value; the message names the four.
    """
    name = list_type.value if isinstance(list_type, WavyListType) else str(list_type).strip().upper()
    try:
        return LISTS[WavyListType(name)]
    except ValueError:
        allowed = ", ".join(t.value for t in WavyListType)
        raise ValueError(f"list_type must be one of {allowed} (any case); got {list_type!r}.") from None


def check_list_type(list_type: str | WavyListType) -> None:
    """
    Refuse a wrong list type when the DAG is parsed, not when it runs; a Jinja template is left for later.

    :param list_type: the ``list_type`` argument of ``WavyListSensor`` or ``WavyListOperator``.
    :raises ValueError: another value than the four; the message names them.
    """
    if "{{" not in str(list_type):
        list_export(list_type)


__all__ = [
    "DEFAULT_SOURCE_TIMEZONE",
    "LISTS",
    "OPEN_SESSIONS",
    "CsvColumns",
    "Export",
    "WavyListType",
    "check_list_type",
    "list_export",
]
