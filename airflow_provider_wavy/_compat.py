"""
The one place for differences between Airflow 2.11 and 3 not covered by ``airflow.providers.common.compat``.

Keep it tiny: every name here is a version branch someone has to maintain.
"""

from __future__ import annotations

# The helper exists in apache-airflow-providers-common-compat >= 1.23 (a declared dependency) and was
# checked on Airflow 2.11.2 and 3.3.2: on 2.11 it runs the synchronous lookup in a worker thread, on 3 it
# uses the asynchronous, supervisor-safe one. Triggers import it from here so that a future branch has
# one home.
# Extras are read from ``conn.extra`` by ``settings.read_extra``, not ``get_async_extra_dejson``: that one
# hands every extra value to the secrets masker (see read_extra).
from airflow.providers.common.compat.connection import get_async_connection


def airflow_has_fs(scheme: str) -> bool:
    """
    Tell whether Airflow has a file system registered for ``scheme`` (the installed providers' schemes).

    common-compat has no such helper; Airflow's own public ``has_fs`` moved with the Task SDK.

    :param scheme: a URL scheme, lower case.
    """
    try:
        from airflow.sdk.io.fs import has_fs
    except ImportError:  # Airflow 2.11
        from airflow.io import has_fs  # type: ignore[no-redef,attr-defined,unused-ignore]
    return bool(has_fs(scheme))


__all__ = ["airflow_has_fs", "get_async_connection"]
