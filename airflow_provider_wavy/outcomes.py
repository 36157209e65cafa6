"""What a call decides an answer means: done, read the body, retry after a pause, or follow a redirect."""

from __future__ import annotations

from dataclasses import dataclass
from typing import TYPE_CHECKING

if TYPE_CHECKING:
    from airflow_provider_wavy.request import HttpRequest


@dataclass(frozen=True)
class Done:
    """The API call is over: the file URL, or None when the API has no file yet."""

    file_url: str | None


@dataclass(frozen=True)
class ReadBody:
    """The file host answered 2xx at ``url``: read the body now."""

    url: str


@dataclass(frozen=True)
class Retry:
    """Wait ``delay`` seconds, then send the same request again."""

    delay: float
    reason: str
    number: int = 1


@dataclass(frozen=True)
class FollowRedirect:
    """Send ``request`` next (a checked redirect)."""

    request: HttpRequest


Outcome = Done | Retry | FollowRedirect


__all__ = ["Done", "FollowRedirect", "Outcome", "ReadBody", "Retry"]
