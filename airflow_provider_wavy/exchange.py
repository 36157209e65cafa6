"""
The one exchange loop: a call's requests, pauses and redirects, for any transport.

:func:`exchange` is a generator driven by a transport. It hands out steps, :class:`Send` ("send this
request") and :class:`Sleep` ("wait this long"), and receives what the transport saw: an :class:`Answer`
or a :class:`Failure`. It returns the call's final outcome. The loop, its "retry n of m" log line and the
deadline checks exist here once; ``WavyHook`` (requests) and ``WavyAsyncHook`` (httpx) only send and sleep.
"""

from __future__ import annotations

import logging
from dataclasses import dataclass
from typing import TYPE_CHECKING, Any

from airflow_provider_wavy.protocol import Done, FollowRedirect, ReadBody, Retry

if TYPE_CHECKING:
    from collections.abc import Generator, Mapping

    from airflow_provider_wavy.protocol import Call, HttpRequest

log = logging.getLogger(__name__)


@dataclass(frozen=True)
class Send:
    """
    Send ``request`` and report what came back.

    :param request: the request.
    :param timeout: the longest wait for a connection or for the next bytes, cut to the call's time left.
    :param carries_token: the transport must check, with its own URL parser, that the request goes to the
        connection's origin before sending it.
    """

    request: HttpRequest
    timeout: float
    carries_token: bool


@dataclass(frozen=True)
class Sleep:
    """Wait ``seconds`` before the next step."""

    seconds: float


@dataclass(frozen=True)
class Answer:
    """
    What a server answered.

    :param status: the HTTP status.
    :param headers: the headers, by lower-case name.
    :param body: the body, read up to the call's ``body_limit(status)`` plus one byte (empty when the
        limit is None: the transport keeps the body open for the caller).
    """

    status: int
    headers: Mapping[str, str]
    body: bytes


@dataclass(frozen=True)
class Failure:
    """The request got no answer; ``description`` says why, in words fit for a message."""

    description: str


Step = Send | Sleep
Reply = Answer | Failure | None


def exchange(call: Call, timeout: float, logger: Any = None) -> Generator[Step, Reply, Done | ReadBody]:
    """
    Drive ``call`` to its end.

    :param call: the call (its request, retry policy, deadline and the meaning of answers).
    :param timeout: the transport's wait for a connection or the next bytes (the connection's ``timeout``).
    :param logger: where retries are logged (the hook's logger: stdlib or Airflow's structlog one).
    :return: the call's outcome: :class:`Done` for an API call, :class:`ReadBody` for a file.
    :raises WavyError: what the call decides is fatal, or the deadline passing.
    """
    logger = logger or log
    request = call.request
    while True:
        wait = call.deadline.bound(timeout)
        if wait <= 0:
            raise call.deadline.exceeded()
        reply = yield Send(request, wait, call.carries_token)
        if isinstance(reply, Failure):
            outcome: Done | ReadBody | Retry | FollowRedirect = call.on_transport_error(reply.description)
        elif isinstance(reply, Answer):
            outcome = call.on_response(reply.status, reply.headers, reply.body)
        else:  # pragma: no cover - a transport answers every Send
            raise TypeError(f"a transport answered Send with {reply!r}")
        if isinstance(outcome, Retry):
            logger.warning(
                "Wavy: %s; retry %d of %d in %.1fs.",
                outcome.reason,
                outcome.number,
                call.policy.max_retries,
                outcome.delay,
            )
            yield Sleep(outcome.delay)
        elif isinstance(outcome, FollowRedirect):
            request = outcome.request
        else:
            return outcome


__all__ = ["Answer", "Failure", "Reply", "Send", "Sleep", "Step", "exchange"]
