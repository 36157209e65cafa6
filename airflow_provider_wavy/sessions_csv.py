"""
The names the open-sessions checker had before the CSV code moved to :mod:`airflow_provider_wavy.csv`.

Kept so that existing imports work. The behaviour lives in the package: patch
``airflow_provider_wavy.csv.counter.vector_module`` (not the name here) to change how rows are counted.
"""

from __future__ import annotations

from typing import Final

from airflow_provider_wavy.csv.checker import (
    CsvChecker,
    CsvError,
    CsvSummary,
    SessionsCsvChecker,
    SessionsCsvError,
    SessionsCsvSummary,
)
from airflow_provider_wavy.csv.counter import VECTOR_MIN_BYTES, vector_module
from airflow_provider_wavy.csv.header import DELIMITERS, MAX_HEADER_BYTES, parse_header
from airflow_provider_wavy.exports import OPEN_SESSIONS

#: Header names of the phone column, in order of preference: the English/Spanish pages say ``source``, the
#: Portuguese page ``origem`` (a translation of ``origin``, Wavy's word for the business number).
PHONE_COLUMNS: Final[tuple[str, ...]] = OPEN_SESSIONS.columns.phone
CREATED_AT_COLUMN: Final = OPEN_SESSIONS.columns.timestamp

__all__ = [
    "CREATED_AT_COLUMN",
    "DELIMITERS",
    "MAX_HEADER_BYTES",
    "PHONE_COLUMNS",
    "VECTOR_MIN_BYTES",
    "CsvChecker",
    "CsvError",
    "CsvSummary",
    "SessionsCsvChecker",
    "SessionsCsvError",
    "SessionsCsvSummary",
    "parse_header",
    "vector_module",
]
