"""The ``require_rows`` check of both transports: does an export's file have a data row?"""

from __future__ import annotations

from contextlib import contextmanager
from typing import TYPE_CHECKING

from airflow_provider_wavy.exceptions import WavyResponseError
from airflow_provider_wavy.exports import OPEN_SESSIONS

if TYPE_CHECKING:
    from collections.abc import Iterator

    from airflow_provider_wavy.exports import Export


class FirstRowCheck:
    """
    Tell whether an export's file has a data row, reading it no further than that row.

    Feed the body's chunks as they arrive and stop reading once :meth:`feed` returns True; at the end of the
    body call :meth:`finish`.

    :param shown_url: the file URL as it may be shown, for messages.
    :param export: the export the file should be; the open sessions by default.
    """

    def __init__(self, shown_url: str, *, export: Export = OPEN_SESSIONS) -> None:
        """
        Start a check.

        :param shown_url: the file URL as it may be shown, for messages.
        :param export: the export the file should be.
        """
        # Imported here: the transports import this module, the checker's imports are paid by a check.
        from airflow_provider_wavy.csv.checker import CsvChecker

        self._checker = CsvChecker(export=export, hash_bytes=False)
        self._shown_url = shown_url
        self._title = export.title

    def feed(self, chunk: bytes) -> bool:
        """
        Verify the next chunk; return True once the file has shown a data row.

        :param chunk: the next bytes of the body.
        :raises WavyResponseError: the file is not the export's CSV.
        """
        with self._not_csv():
            self._checker.feed(chunk)
        return self._checker.rows_so_far > 0

    def finish(self) -> bool:
        """
        Complete the check at the end of the body; return whether the file has a data row.

        :raises WavyResponseError: the file is not the export's CSV.
        """
        with self._not_csv():
            return self._checker.finish().rows > 0

    @contextmanager
    def _not_csv(self) -> Iterator[None]:
        from airflow_provider_wavy.csv.errors import CsvError

        try:
            yield
        except CsvError as error:
            raise WavyResponseError(
                f"The file at {self._shown_url} is not the {self._title} CSV: {error}"
            ) from None


__all__ = ["FirstRowCheck"]
