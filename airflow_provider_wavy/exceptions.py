"""Errors raised by the Wavy provider: each one says what is wrong and what to do about it."""

from __future__ import annotations

from airflow.providers.common.compat.sdk import AirflowException, AirflowFailException


class WavyError(AirflowException):
    """Base class of every error the Wavy provider raises."""


class WavyFatalError(WavyError, AirflowFailException):
    """
    An error that neither waiting nor retrying can fix: the task fails at once, without its retries.

    Being an ``AirflowFailException``, it also makes sensors honour ``soft_fail``.
    """


class WavyConfigurationError(WavyFatalError):
    """The ``wavy`` connection is incomplete or holds an invalid value."""


class WavyAuthenticationError(WavyFatalError):
    """The API rejected the connection's UserName and authentication token (HTTP 401/403)."""


class WavyRequestError(WavyFatalError):
    """The API rejected the request itself (HTTP 400, 404 and other non-transient 4xx answers)."""


class WavyResponseError(WavyFatalError):
    """The API answered success with a body that is not the documented ``{"file_url": ...}`` shape."""


class WavyRedirectError(WavyFatalError):
    """The API redirected to another origin, where the token must not follow."""


class WavyTransientError(WavyError):
    """The API stayed unreachable, slow, rate limited or failing (5xx) after every allowed retry."""


class WavyDownloadError(WavyError):
    """The sessions file could not be downloaded whole, or is not the documented CSV."""


class WavyDataLocationError(WavyFatalError):
    """The example DAGs' data folder is local where tasks run on several machines (see data_location)."""


class WavyTimestampError(WavyFatalError):
    """A timestamp in an export's CSV is not one the provider can read (``on_bad_timestamp="fail"``)."""


class WavySqlHookError(WavyFatalError):
    """``sql_conn_id`` does not name a connection whose hook is a common-sql ``DbApiHook``."""


class WavySqlError(WavyError):
    """The database refused the load; the transaction was rolled back and the table is as it was."""
