"""
Both transports (WavyHook over requests, WavyAsyncHook over httpx) against hand-written hostile servers.

Each case scripts what the "API" (and, where it matters, a "file host") sends byte by byte, and states
what both hooks must do: the error class, words of its message, and what must never happen (the token
reaching another origin, a retry of what waiting cannot fix, a message quoting the server unbounded).
A second server on another loopback address plays the attacker's origin and records every request.
"""

from __future__ import annotations

import asyncio
import functools
import gzip
import json
import struct
import time
import zlib
from dataclasses import dataclass
from typing import TYPE_CHECKING, Any

import pytest

from airflow_provider_wavy.exceptions import (
    WavyConfigurationError,
    WavyDownloadError,
    WavyError,
    WavyRedirectError,
    WavyResponseError,
    WavyTransientError,
)
from airflow_provider_wavy.hooks.wavy import WavyHook
from airflow_provider_wavy.hooks.wavy_async import WavyAsyncHook
from tests.conftest import set_conn
from tests.hostile import HostileServer, RawRequest, answer, raw_answer

if TYPE_CHECKING:
    from collections.abc import Callable, Iterable, Iterator

TOKEN = "tok-HOSTILE-9c4e1f-SECRET"
CSV = b"source;session_created_at\n5511999990000;2026-11-24 10:00:00\n"
EVIL_HOST = "127.0.0.2"

# -- harness ------------------------------------------------------------------------------------------------


@dataclass
class Servers:
    """The API under test, the attacker's origin, and a file host, all on loopback."""

    api: HostileServer
    evil: HostileServer
    cdn: HostileServer

    def fill(self, text: str) -> str:
        """Put the servers' ports into a scripted string: {api}, {evil}, {evil_port}, {api_port}, {cdn}."""
        return text.format(
            api=self.api.url,
            evil=self.evil.url,
            cdn=self.cdn.url,
            api_port=self.api.port,
            evil_port=self.evil.port,
            token=TOKEN,
        )


def _evil_script(_request: RawRequest) -> Iterable[bytes | float]:
    # Answers like the API would, so that a leak also "works" and is not caught by an error by luck.
    yield answer(200, json.dumps({"file_url": "http://127.0.0.2:9/stolen"}).encode())


@pytest.fixture
def servers(monkeypatch: pytest.MonkeyPatch) -> Iterator[Callable[..., Servers]]:
    """Start the servers with the given scripts; point ``wavy_default`` at the API with a known token."""
    stack: list[HostileServer] = []

    def start(
        api_script: Any, cdn_script: Any = None, *, extra: dict[str, Any] | None = None, **conn: Any
    ) -> Servers:
        holder: dict[str, Servers] = {}
        api = HostileServer(lambda request: api_script(holder["s"], request)).__enter__()
        evil = HostileServer(_evil_script, host=EVIL_HOST).__enter__()
        cdn_fn = cdn_script or (lambda _s, _r: [answer(200, CSV, [("Content-Type", "text/csv")])])
        cdn = HostileServer(lambda request: cdn_fn(holder["s"], request)).__enter__()
        stack.extend([api, evil, cdn])
        holder["s"] = Servers(api=api, evil=evil, cdn=cdn)
        fields = {"conn_type": "wavy", "host": api.url, "login": "user", "password": TOKEN, **conn}
        extras = {"customer_id": "1001", "max_retries": 2, "timeout": 2, **(extra or {})}
        set_conn(monkeypatch, json.dumps(fields), extra=extras)
        return holder["s"]

    yield start
    for server in stack:
        server.__exit__(None, None, None)


def ask_api(transport: str) -> str | None:
    """Ask for the file URL through one transport."""
    if transport == "sync":
        return WavyHook(backoff_base=0.01).get_open_sessions_file_url()
    return asyncio.run(WavyAsyncHook(backoff_base=0.01).get_open_sessions_file_url())


def has_rows(transport: str, file_url: str) -> bool:
    """Look for a data row through one transport."""
    if transport == "sync":
        return WavyHook(backoff_base=0.01).file_has_rows(file_url)
    return asyncio.run(WavyAsyncHook(backoff_base=0.01).file_has_rows(file_url))


TRANSPORTS = [pytest.param("sync", id="requests"), pytest.param("async", id="httpx")]


def api_requests(servers: Servers) -> int:
    return len([r for r in servers.api.requests if r.target.startswith("/v1/session")])


def check_error(error: BaseException, servers: Servers, words: str) -> None:
    """What every failure must satisfy: named, bounded, no token anywhere."""
    message = str(error)
    assert words in message, message
    assert TOKEN not in message
    assert len(message) < 2000, f"a {len(message)}-character message"
    assert not servers.evil.saw(TOKEN), "the token reached another origin"


# -- 1. redirects never carry the token elsewhere ------------------------------------------------------------


def redirect_to(location: str, status: int = 302) -> Any:
    def script(s: Servers, request: RawRequest) -> Iterable[bytes | float]:
        if request.target.startswith("/v1/session"):
            yield raw_answer(f"HTTP/1.1 {status} Found", [b"Location: " + s.fill(location).encode()])
        else:
            yield answer(200, s.fill('{{"file_url": "{cdn}/f.csv"}}').encode())

    return script


#: Locations that different URL parsers read differently, or that are malformed: all must be refused
#: before any request, without a retry, and never reach the attacker's origin.
HOSTILE_LOCATIONS = [
    pytest.param("http://127.0.0.1:{api_port}\\@127.0.0.2:{evil_port}/v1/session", id="backslash-before-at"),
    pytest.param("http://127.0.0.2:{evil_port}\\@127.0.0.1:{api_port}/v1/session", id="backslash-evil-first"),
    pytest.param("http://127.0.0.1:{api_port}\t@127.0.0.2:{evil_port}/", id="tab-in-authority"),
    pytest.param("http://127.0.0.1:{api_port} @127.0.0.2:{evil_port}/", id="space-in-authority"),
    pytest.param("http://127.0.0.2:{evil_port}\x00.127.0.0.1:{api_port}/", id="nul-in-host"),
    pytest.param("http:\\\\127.0.0.2:{evil_port}/v1/session", id="backslashes-for-slashes"),
    pytest.param("http://user:pw@127.0.0.1:{api_port}/v1/session", id="userinfo-same-host"),
    pytest.param("http://127.0.0.1:{api_port}@127.0.0.2:{evil_port}/", id="userinfo-evil-host"),
    pytest.param("//127.0.0.2:{evil_port}/v1/session", id="scheme-relative-cross-origin"),
    pytest.param("HTTP://127.0.0.2:{evil_port}/v1/session", id="upper-case-cross-origin"),
    pytest.param("http://127.0.0.1:99999/v1/session", id="port-out-of-range"),
    pytest.param("http://127.0.0.1:0/v1/session", id="port-zero"),
    pytest.param("http://127.0.0.1:{api_port}:80/v1/session", id="two-ports"),
    pytest.param("http://[::1/v1/session", id="broken-ipv6"),
    pytest.param("http://[::1]x:{api_port}/", id="junk-after-ipv6"),
    pytest.param("ftp://127.0.0.1:{api_port}/v1/session", id="ftp-scheme"),
    pytest.param("file:///etc/passwd", id="file-scheme"),
    pytest.param("javascript:alert(1)", id="javascript-scheme"),
    pytest.param("http://%31%32%37.0.0.2:{evil_port}/", id="percent-encoded-host"),
    pytest.param("http://\uff11\uff12\uff17.0.0.2:{evil_port}/", id="fullwidth-digits"),
    pytest.param("http://127.0.0.2:{evil_port}/steal/{token}", id="token-in-cross-origin-path"),
]


@pytest.mark.parametrize("transport", TRANSPORTS)
@pytest.mark.parametrize("location", HOSTILE_LOCATIONS)
def test_hostile_location_is_refused_at_once(
    transport: str, location: str, servers: Callable[..., Servers]
) -> None:
    s = servers(redirect_to(location))
    with pytest.raises(WavyRedirectError) as info:
        ask_api(transport)
    check_error(info.value, s, "")
    assert s.evil.requests == [], "nothing at all goes to the attacker's origin"
    assert api_requests(s) == 1, "a malformed redirect is not retried"


@pytest.mark.parametrize("transport", TRANSPORTS)
def test_same_origin_redirect_is_followed(transport: str, servers: Callable[..., Servers]) -> None:
    def script(s: Servers, request: RawRequest) -> Iterable[bytes | float]:
        if request.target.startswith("/v1/session"):
            yield answer(307, b"", [("Location", "/v2/session?customerId=1001")])
        else:
            assert request.headers.get("authenticationtoken") == TOKEN
            yield answer(200, s.fill('{{"file_url": "{cdn}/f.csv"}}').encode())

    s = servers(script)
    assert ask_api(transport) == f"{s.cdn.url}/f.csv"


@pytest.mark.parametrize("transport", TRANSPORTS)
def test_redirect_body_is_never_read_whole(transport: str, servers: Callable[..., Servers]) -> None:
    """A 3xx announcing a gigabyte and dripping it: the hook reads a few KiB, then follows at once."""

    def script(s: Servers, request: RawRequest) -> Iterable[bytes | float]:
        if request.target.startswith("/v1/session"):
            yield raw_answer("HTTP/1.1 302 Found", [b"Location: /next", b"Content-Length: 1000000000"])
            yield b"x" * 16384
            yield 20.0  # a reader of the whole body would wait here
        else:
            yield answer(200, s.fill('{{"file_url": "{cdn}/f.csv"}}').encode())

    s = servers(script)
    started = time.monotonic()
    assert ask_api(transport) == f"{s.cdn.url}/f.csv"
    assert time.monotonic() - started < 5


def file_redirect(location: str, body: Iterable[bytes | float] = ()) -> Any:
    def script(s: Servers, request: RawRequest) -> Iterable[bytes | float]:
        if request.target == "/f.csv":
            yield raw_answer("HTTP/1.1 302 Found", [b"Location: " + s.fill(location).encode("latin-1")])
            yield from body
        else:
            yield answer(200, CSV)

    return script


@pytest.mark.parametrize("transport", TRANSPORTS)
@pytest.mark.parametrize(
    ("location", "error", "words"),
    [
        pytest.param("ftp://127.0.0.1/x", WavyRedirectError, "not an absolute http(s) URL", id="ftp"),
        pytest.param("file:///etc/passwd", WavyRedirectError, "not an absolute http(s) URL", id="file"),
        pytest.param("http://127.0.0.1:70000/x", WavyRedirectError, "invalid port", id="bad-port"),
        pytest.param("http://a\\@127.0.0.2/x", WavyRedirectError, "not a valid URL", id="backslash"),
        pytest.param("/f.csv", WavyRedirectError, "more than 5 times", id="loop"),
    ],
)
def test_file_host_redirects_are_checked(
    transport: str,
    location: str,
    error: type[Exception],
    words: str,
    servers: Callable[..., Servers],
) -> None:
    s = servers(redirect_to("/unused"), file_redirect(location))
    with pytest.raises(error) as info:
        has_rows(transport, f"{s.cdn.url}/f.csv")
    check_error(info.value, s, words)


@pytest.mark.parametrize("transport", TRANSPORTS)
def test_file_host_may_redirect_elsewhere_without_credentials(
    transport: str, servers: Callable[..., Servers]
) -> None:
    """A CDN hop to another origin is followed (no credential goes to a file host), its body unread."""
    s = servers(
        redirect_to("/unused"),
        file_redirect("{cdn}/real.csv", [b"y" * 20000, 20.0]),
    )
    started = time.monotonic()
    assert has_rows(transport, f"{s.cdn.url}/f.csv") is True
    assert time.monotonic() - started < 5
    assert not s.cdn.saw(TOKEN)
    assert not s.cdn.saw("user")


# -- 2. nothing the server sends surfaces the token ---------------------------------------------------------


def api_answers(status: int, body: bytes, headers: list[tuple[str, str]] | None = None) -> Any:
    def script(s: Servers, _request: RawRequest) -> Iterable[bytes | float]:
        yield answer(status, s.fill(body.decode("latin-1")).encode("latin-1"), headers or [])

    return script


@pytest.mark.parametrize("transport", TRANSPORTS)
@pytest.mark.parametrize(
    ("status", "body", "error", "words"),
    [
        pytest.param(401, b'{{"errorMessage": "bad token {token}"}}', None, "bad token ***", id="401-echo"),
        pytest.param(400, b"echo {token} echo", None, "echo *** echo", id="400-plain-echo"),
        pytest.param(
            400, b"tok-HOSTILE-9c4e1f-SECRET".replace(b"-", b"%2D"), None, "HTTP 400", id="400-encoded-echo"
        ),
        pytest.param(
            200,
            b'{{"file_url": "http://127.0.0.2:9/f?auth={token}"}}',
            WavyResponseError,
            "contains the connection's authentication token",
            id="token-in-file-url",
        ),
        pytest.param(
            200,
            b'{{"file_url": "http://cdn.example/' + b"a" * 1_000_000 + b'"}}',
            WavyResponseError,
            "characters",
            id="megabyte-file-url",
        ),
    ],
)
def test_answers_never_surface_the_token(  # noqa: PLR0917 - a table row
    transport: str,
    status: int,
    body: bytes,
    error: type[Exception] | None,
    words: str,
    servers: Callable[..., Servers],
) -> None:
    s = servers(api_answers(status, body))
    with pytest.raises(error or WavyError) as info:
        ask_api(transport)
    check_error(info.value, s, words)


@pytest.mark.parametrize("transport", TRANSPORTS)
def test_megabyte_location_gives_a_bounded_message(transport: str, servers: Callable[..., Servers]) -> None:
    s = servers(redirect_to("http://127.0.0.2:{evil_port}/" + "a" * 1_000_000))
    # Both HTTP parsers refuse a header line this long (a malformed answer, retried); the message stays short.
    with pytest.raises(WavyError) as info:
        ask_api(transport)
    check_error(info.value, s, "")


# -- 3. hostile bodies: one clear error, bounded memory -----------------------------------------------------


@functools.cache
def gzip_bomb(decoded_mib: int, head: bytes = b"") -> bytes:
    """Return a gzip file of ``head`` then ``decoded_mib`` MiB of blank lines, compressing one MiB only."""
    block = b"\n" * 2**20
    compressor = zlib.compressobj(9, zlib.DEFLATED, -zlib.MAX_WBITS)
    start = compressor.compress(head) + compressor.flush(zlib.Z_FULL_FLUSH)
    # A full flush starts the compressor afresh: every block of the same bytes compresses to the same bytes.
    piece = compressor.compress(block) + compressor.flush(zlib.Z_FULL_FLUSH)
    end = compressor.flush()
    crc = zlib.crc32(head)
    for _ in range(decoded_mib):
        crc = zlib.crc32(block, crc)
    size = (len(head) + decoded_mib * len(block)) % 2**32
    header = b"\x1f\x8b\x08\x00\x00\x00\x00\x00\x02\xff"
    return header + start + piece * decoded_mib + end + struct.pack("<II", crc, size)


@pytest.mark.parametrize("transport", TRANSPORTS)
def test_gzip_bomb_stops_at_max_file_bytes(transport: str, servers: Callable[..., Servers]) -> None:
    """A valid header, then a gigabyte of blank lines compressed to a megabyte: stopped at the cap."""
    bomb = gzip_bomb(1024, b"source;session_created_at\n")

    def cdn(_s: Servers, _request: RawRequest) -> Iterable[bytes | float]:
        yield answer(200, bomb, [("Content-Encoding", "gzip"), ("Content-Type", "text/csv")])

    s = servers(redirect_to("/unused"), cdn, extra={"max_file_bytes": 8 * 2**20})
    started = time.process_time()
    with pytest.raises(WavyDownloadError) as info:
        has_rows(transport, f"{s.cdn.url}/f.csv")
    check_error(info.value, s, "larger than max_file_bytes=8,388,608")
    assert time.process_time() - started < 5, "the gigabyte was not inflated"


@pytest.mark.parametrize("transport", TRANSPORTS)
@pytest.mark.parametrize(
    ("encoding", "body", "words"),
    [
        pytest.param("gzip", b"\x1f\x8b\x08\x00garbage" * 10, "decode", id="corrupt-gzip"),
        pytest.param("br", b"\x0b\x02\x80hello", "Content-Encoding", id="unasked-brotli"),
    ],
)
def test_undecodable_file_is_a_download_error(
    transport: str, encoding: str, body: bytes, words: str, servers: Callable[..., Servers]
) -> None:
    def cdn(_s: Servers, _request: RawRequest) -> Iterable[bytes | float]:
        yield answer(200, body, [("Content-Encoding", encoding)])

    s = servers(redirect_to("/unused"), cdn)
    with pytest.raises(WavyDownloadError) as info:
        has_rows(transport, f"{s.cdn.url}/f.csv")
    check_error(info.value, s, words)


@functools.cache
def api_gzip_bomb() -> bytes:
    """Return an API answer that inflates to 64 MiB (compressed once for both transports)."""
    return gzip.compress(b'{"file_url": "' + b" " * (64 * 2**20) + b'"}')


@pytest.mark.parametrize("transport", TRANSPORTS)
def test_api_gzip_bomb_is_capped(transport: str, servers: Callable[..., Servers]) -> None:
    bomb = api_gzip_bomb()
    s = servers(lambda _s, _r: [answer(200, bomb, [("Content-Encoding", "gzip")])])
    with pytest.raises(WavyResponseError) as info:
        ask_api(transport)
    check_error(info.value, s, "over 1024 KiB")


@pytest.mark.slow  # inflates 200 MiB
def test_async_file_look_never_holds_the_loop(servers: Callable[..., Servers]) -> None:
    """The trigger's require_rows look decodes step by step: other tasks of its loop keep running."""
    bomb = gzip_bomb(256, b"source;session_created_at\n")

    def cdn(_s: Servers, request: RawRequest) -> Iterable[bytes | float]:
        body = gzip.compress(CSV) if request.target == "/small.csv" else bomb
        yield answer(200, body, [("Content-Encoding", "gzip")])

    s = servers(redirect_to("/unused"), cdn, extra={"max_file_bytes": 200 * 2**20})

    async def look_while_ticking() -> float:
        worst = 0.0
        done = asyncio.Event()

        async def tick() -> None:
            # CPU time of the loop's thread between two turns of this task: what the look held the loop
            # for, whatever else the machine is doing (wall time would also count being preempted).
            nonlocal worst
            last = time.thread_time()
            while not done.is_set():
                await asyncio.sleep(0)
                now = time.thread_time()
                worst = max(worst, now - last)
                last = now

        # Warm up: reading the connection and the first imports are once per process, not per look.
        hook = WavyAsyncHook(backoff_base=0.01)
        assert await hook.file_has_rows(f"{s.cdn.url}/small.csv") is True
        ticker = asyncio.ensure_future(tick())
        with pytest.raises(WavyDownloadError, match="max_file_bytes"):
            await hook.file_has_rows(f"{s.cdn.url}/f.csv")
        done.set()
        await ticker
        return worst

    worst = asyncio.run(look_while_ticking())
    # A whole network read inflated at once is tens of MiB here: hundreds of milliseconds of CPU.
    assert worst < 0.02, f"the loop was held for {worst * 1000:.1f} ms of CPU"


# -- 4. every call has a total deadline ---------------------------------------------------------------------


def drip(head: bytes, every: float, count: int = 200) -> Iterable[bytes | float]:
    yield head
    for _ in range(count):
        yield every
        yield b" "


@pytest.mark.parametrize("transport", TRANSPORTS)
@pytest.mark.parametrize(
    "script",
    [
        pytest.param(
            lambda s, r: drip(b"HTTP/1.1 200 OK\r\nContent-Length: 100000\r\n\r\n{", 0.2), id="body-drip"
        ),
        pytest.param(lambda s, r: drip(b"HTTP/1.1 200 OK\r\nX-Slow: a", 0.2), id="header-drip"),
    ],
)
def test_api_call_has_a_total_deadline(transport: str, script: Any, servers: Callable[..., Servers]) -> None:
    s = servers(script, extra={"call_timeout": 1.5, "timeout": 1})
    started = time.monotonic()
    with pytest.raises(WavyTransientError) as info:
        ask_api(transport)
    check_error(info.value, s, "time limit of 1.5s")
    assert time.monotonic() - started < 4


def test_download_has_a_total_deadline(servers: Callable[..., Servers]) -> None:
    def cdn(_s: Servers, _request: RawRequest) -> Iterable[bytes | float]:
        yield from drip(b"HTTP/1.1 200 OK\r\nContent-Length: 100000\r\n\r\n" + CSV[:20], 0.2)

    s = servers(redirect_to("/unused"), cdn, extra={"download_timeout": 1.5, "timeout": 1})
    started = time.monotonic()
    with pytest.raises(WavyDownloadError) as info, WavyHook().open_file(f"{s.cdn.url}/f.csv") as download:
        for _ in download.iter_chunks():
            pass
    check_error(info.value, s, "time limit of 1.5s")
    assert time.monotonic() - started < 4


@pytest.mark.parametrize("transport", TRANSPORTS)
def test_file_look_has_a_total_deadline(transport: str, servers: Callable[..., Servers]) -> None:
    def cdn(_s: Servers, _request: RawRequest) -> Iterable[bytes | float]:
        yield from drip(b"HTTP/1.1 200 OK\r\nContent-Length: 100000\r\n\r\nsource;sess", 0.2)

    s = servers(redirect_to("/unused"), cdn, extra={"download_timeout": 1.5, "timeout": 1})
    started = time.monotonic()
    with pytest.raises(WavyDownloadError) as info:
        has_rows(transport, f"{s.cdn.url}/f.csv")
    check_error(info.value, s, "time limit of 1.5s")
    assert time.monotonic() - started < 4


# -- 5. the right class for every failure -------------------------------------------------------------------


@pytest.mark.parametrize("transport", TRANSPORTS)
@pytest.mark.parametrize(
    ("conn", "words"),
    [
        pytest.param({"password": TOKEN + "\nX-Injected: 1"}, "Password", id="newline-in-token"),
        pytest.param({"password": TOKEN[:5] + "\r" + TOKEN[5:]}, "Password", id="cr-in-token"),
        pytest.param({"login": "us\ner"}, "Login", id="newline-in-login"),
        pytest.param({"login": "usér"}, "Login", id="non-ascii-login"),
        pytest.param({"host": "http://127.0.0.1\\@127.0.0.2"}, "host", id="backslash-host"),
    ],
)
def test_bad_connection_values_fail_before_any_request(
    transport: str, conn: dict[str, Any], words: str, servers: Callable[..., Servers]
) -> None:
    s = servers(api_answers(200, b'{{"file_url": "{cdn}/f.csv"}}'), **conn)
    started = time.monotonic()
    with pytest.raises(WavyConfigurationError) as info:
        ask_api(transport)
    check_error(info.value, s, words)
    assert s.api.requests == []
    assert time.monotonic() - started < 2, "not retried as a network error"


@pytest.mark.parametrize("transport", TRANSPORTS)
def test_missing_customer_id_is_a_configuration_error(
    transport: str, servers: Callable[..., Servers]
) -> None:
    s = servers(api_answers(200, b"{{}}"), extra={"customer_id": ""})
    with pytest.raises(WavyConfigurationError) as info:
        ask_api(transport)
    check_error(info.value, s, "customer_id")
    assert s.api.requests == []


@pytest.mark.parametrize("transport", TRANSPORTS)
def test_chunked_body_cut_short_says_so(transport: str, servers: Callable[..., Servers]) -> None:
    def cdn(_s: Servers, _request: RawRequest) -> Iterable[bytes | float]:
        yield b"HTTP/1.1 200 OK\r\nTransfer-Encoding: chunked\r\nConnection: close\r\n\r\n"
        yield b"1a\r\nsource;session_created_at\n\r\n"  # the header, then the connection closes

    s = servers(redirect_to("/unused"), cdn)
    with pytest.raises(WavyDownloadError) as info:
        has_rows(transport, f"{s.cdn.url}/f.csv")
    check_error(info.value, s, "the file host closed the connection after")
    assert "chunked" in str(info.value)
