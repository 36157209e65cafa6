"""
The exchange loop's timing on a fake clock: backoff, Retry-After, the call's deadline, the per-send wait.

A scripted transport answers each ``Send`` and records each ``Sleep`` instead of sleeping, moving the fake
clock the call's ``Deadline`` reads; so these cases are exact, instant and cannot flake. The transports'
real sleeping is shown end to end by the contract table (tests/hooks/test_contract.py).
"""

from __future__ import annotations

import logging
from dataclasses import dataclass, field
from typing import TYPE_CHECKING, Any

import pytest

from airflow_provider_wavy.calls import ExportCall, FileCall
from airflow_provider_wavy.exceptions import WavyDownloadError, WavyTransientError
from airflow_provider_wavy.exchange import Answer, Failure, Reply, Send, Sleep, exchange
from airflow_provider_wavy.outcomes import Done, ReadBody
from airflow_provider_wavy.settings import WavySettings
from airflow_provider_wavy.timing import RETRY_AFTER_CAP, Deadline, RetryPolicy

if TYPE_CHECKING:
    from collections.abc import Sequence

OK = Answer(200, {}, b'{"file_url": "https://cdn.example/f.csv"}')
REFUSED = Failure("cannot connect to https://api.example: Connection refused")


def unavailable(status: int = 503, retry_after: str | None = None) -> Answer:
    return Answer(status, {"retry-after": retry_after} if retry_after is not None else {}, b"busy")


class FakeClock:
    """A monotonic clock that moves only when told."""

    def __init__(self) -> None:
        self.now = 1000.0

    def __call__(self) -> float:
        return self.now


@dataclass
class Transcript:
    """What a scripted transport saw: the waits it was given per send, and the pauses it was asked for."""

    send_timeouts: list[float] = field(default_factory=list)
    sleeps: list[float] = field(default_factory=list)


def drive(
    call: Any,
    script: Sequence[Reply | tuple[float, Reply]],
    clock: FakeClock,
    timeout: float = 30.0,
    transcript: Transcript | None = None,
) -> Any:
    """
    Drive ``exchange(call)`` as a transport does, answering from ``script``; sleeping moves the clock.

    A script item ``(seconds, reply)`` is an answer that took that long to come. What the transport saw
    goes into ``transcript`` (also when the call fails); returns the call's outcome.
    """
    seen = transcript if transcript is not None else Transcript()
    steps = exchange(call, timeout, logging.getLogger("test_exchange"))
    replies = iter(script)
    try:
        step = next(steps)
        while True:
            if isinstance(step, Sleep):
                seen.sleeps.append(step.seconds)
                clock.now += step.seconds
                step = steps.send(None)
                continue
            assert isinstance(step, Send)
            seen.send_timeouts.append(step.timeout)
            item = next(replies)
            if isinstance(item, tuple):
                clock.now += item[0]
                item = item[1]
            step = steps.send(item)
    except StopIteration as stop:
        return stop.value


def settings() -> WavySettings:
    return WavySettings.from_connection(
        conn_id="wavy_default",
        host="https://api.example",
        port=None,
        login="user",
        password="tok-EXCHANGE-SECRET",
        extra={"customer_id": "1001"},
    )


def api_call(clock: FakeClock, *, seconds: float | None = 600.0, **policy: Any) -> ExportCall:
    policy = {"max_retries": 3, "backoff_base": 1.0, **policy}
    deadline = Deadline(seconds, what="The Wavy API call", setting="call_timeout", clock=clock)
    return ExportCall(settings(), policy=RetryPolicy(**policy), deadline=deadline)


@pytest.mark.parametrize(
    ("script", "sleeps"),
    [
        pytest.param([unavailable(420, "1"), OK], [1.0], id="420-retry-after-seconds"),
        pytest.param([unavailable(429, "Thu, 01 Jan 1970 00:00:00 GMT"), OK], [0.0], id="429-date-passed"),
        pytest.param([unavailable(503, "100000"), OK], [RETRY_AFTER_CAP], id="retry-after-capped"),
        pytest.param([unavailable(503, "soon"), OK], None, id="unreadable-retry-after-is-backoff"),
    ],
)
def test_retry_after_is_the_pause(script: list[Reply], sleeps: list[float] | None) -> None:
    clock = FakeClock()
    transcript = Transcript()
    outcome = drive(api_call(clock), script, clock, transcript=transcript)
    assert outcome == Done("https://cdn.example/f.csv")
    if sleeps is None:
        assert 0.5 <= transcript.sleeps[0] <= 1.0, "backoff with equal jitter: half to all of the base"
    else:
        assert transcript.sleeps == sleeps


def test_backoff_doubles_with_jitter_then_gives_up(caplog: pytest.LogCaptureFixture) -> None:
    clock = FakeClock()
    caplog.set_level(logging.WARNING, logger="test_exchange")
    transcript = Transcript()
    with pytest.raises(WavyTransientError, match="failed 4 times, last: HTTP 503") as info:
        drive(api_call(clock, backoff_base=2.0), [unavailable()] * 4, clock, transcript=transcript)
    assert len(transcript.sleeps) == 3
    for number, pause in enumerate(transcript.sleeps, start=1):
        step = 2.0 * 2 ** (number - 1)
        assert step / 2 <= pause <= step, (number, pause)
    assert "retry 3 of 3" in caplog.text
    assert "tok-EXCHANGE-SECRET" not in str(info.value)


def test_backoff_is_capped() -> None:
    policy = RetryPolicy(max_retries=20, backoff_base=1.0, backoff_cap=8.0)
    assert all(4.0 <= policy.delay(n) <= 8.0 for n in range(4, 20))


def test_transport_failures_are_retried_like_transient_answers() -> None:
    clock = FakeClock()
    transcript = Transcript()
    outcome = drive(api_call(clock, backoff_base=0.5), [REFUSED, REFUSED, OK], clock, transcript=transcript)
    assert outcome == Done("https://cdn.example/f.csv")
    assert len(transcript.sleeps) == 2
    assert 0.25 <= transcript.sleeps[0] <= 0.5
    assert 0.5 <= transcript.sleeps[1] <= 1.0


def test_a_pause_past_the_deadline_fails_at_once() -> None:
    """Retry-After longer than the time left: the call fails now, naming what went wrong, without sleeping."""
    clock = FakeClock()
    with pytest.raises(WavyTransientError, match=r"time limit of 10s \(last: HTTP 429") as info:
        drive(api_call(clock, seconds=10.0), [unavailable(429, "30")], clock)
    assert "tok-EXCHANGE-SECRET" not in str(info.value)
    assert clock.now == 1000.0, "no time was spent waiting for nothing"


def test_each_send_waits_no_longer_than_the_time_left() -> None:
    """Slow failures eat the deadline: each wait is cut to what is left, then the call runs out of time."""
    clock = FakeClock()
    call = api_call(clock, seconds=12.0, max_retries=10, backoff_base=0.0)
    timed_out = Failure("no answer from https://api.example within 5s")
    transcript = Transcript()
    with pytest.raises(WavyTransientError, match="time limit of 12s"):
        drive(call, [(5.0, timed_out)] * 2 + [(2.0, timed_out)], clock, timeout=5.0, transcript=transcript)
    assert transcript.send_timeouts == [5.0, 5.0, 2.0]
    assert clock.now == 1012.0


def test_an_answer_within_the_time_left_is_taken() -> None:
    clock = FakeClock()
    call = api_call(clock, seconds=12.0, max_retries=10, backoff_base=0.0)
    transcript = Transcript()
    script: list[Any] = [(5.0, Failure("no answer")), (5.0, Failure("no answer")), (1.0, OK)]
    outcome = drive(call, script, clock, timeout=5.0, transcript=transcript)
    assert outcome == Done("https://cdn.example/f.csv")
    assert transcript.send_timeouts == [5.0, 5.0, 2.0]


def test_no_deadline_means_only_the_retry_budget() -> None:
    clock = FakeClock()
    transcript = Transcript()
    outcome = drive(
        api_call(clock, seconds=None), [unavailable(503, "1000"), OK], clock, transcript=transcript
    )
    assert outcome == Done("https://cdn.example/f.csv")
    assert transcript.sleeps == [RETRY_AFTER_CAP]


def test_file_call_retries_then_reads_the_body() -> None:
    clock = FakeClock()
    deadline = Deadline(
        60.0, what="The download", setting="download_timeout", error=WavyDownloadError, clock=clock
    )
    call = FileCall("https://cdn.example/f.csv", policy=RetryPolicy(max_retries=2), deadline=deadline)
    transcript = Transcript()
    outcome = drive(call, [unavailable(503, "2"), Answer(200, {}, b"")], clock, transcript=transcript)
    assert outcome == ReadBody("https://cdn.example/f.csv")
    assert transcript.sleeps == [2.0]


def test_file_call_deadline_is_a_download_error() -> None:
    clock = FakeClock()
    deadline = Deadline(
        5.0, what="The download", setting="download_timeout", error=WavyDownloadError, clock=clock
    )
    call = FileCall("https://cdn.example/f.csv", policy=RetryPolicy(max_retries=5), deadline=deadline)
    with pytest.raises(WavyDownloadError, match=r"time limit of 5s \(last: HTTP 503\)"):
        drive(call, [unavailable(503, "6")], clock)


def test_file_call_without_a_deadline_never_runs_out_of_time() -> None:
    clock = FakeClock()
    call = FileCall("https://cdn.example/f.csv", policy=RetryPolicy(max_retries=1))
    transcript = Transcript()
    outcome = drive(
        call, [(10_000.0, unavailable(503, "100")), Answer(200, {}, b"")], clock, transcript=transcript
    )
    assert outcome == ReadBody("https://cdn.example/f.csv")
    assert transcript.send_timeouts == [30.0, 30.0]
