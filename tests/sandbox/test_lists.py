"""The sandbox's list endpoint, ``GET /v1/list/{type}``, over real loopback sockets: answers, knobs, files."""

from __future__ import annotations

import csv
import datetime as dt
import gzip
import http.client
import io
import json
import re
import time
from dataclasses import dataclass
from typing import TYPE_CHECKING, Any
from urllib.parse import urlsplit
from zoneinfo import ZoneInfo

import pytest

from airflow_provider_wavy.sandbox import (
    AUTH_ERROR_MESSAGE,
    LIST_TYPES,
    Scenario,
    WavySandbox,
    list_size,
)
from airflow_provider_wavy.sandbox.__main__ import banner

if TYPE_CHECKING:
    from collections.abc import Iterator

USER = "sandbox-user"
TOKEN = "sandbox-token-list-9d2f"
CUSTOMER = "42"
AUTH = {"UserName": USER, "authenticationToken": TOKEN, "Content-Type": "application/json"}
LIST_PATH = re.compile(r"^/\d{4}/\d{2}/\d{2}/[0-9a-f-]{36}/list-42-\d+\.csv$")
SAO_PAULO = ZoneInfo("America/Sao_Paulo")
ENVELOPE = {"success": True, "status": 200}


@dataclass
class Reply:
    """What a client saw: status, lower-cased headers, body and whether the body was complete."""

    status: int
    headers: dict[str, str]
    body: bytes
    complete: bool = True

    def json(self) -> Any:
        """Parse the body as JSON."""
        return json.loads(self.body)


def fetch(url: str, headers: dict[str, str] | None = None, method: str = "GET") -> Reply:
    """Send one request on a fresh connection, without following redirects."""
    parts = urlsplit(url)
    conn = http.client.HTTPConnection(parts.hostname or "", parts.port, timeout=10)
    try:
        conn.request(method, parts.path + (f"?{parts.query}" if parts.query else ""), headers=headers or {})
        response = conn.getresponse()
        names = {name.lower(): value for name, value in response.getheaders()}
        try:
            return Reply(response.status, names, response.read())
        except http.client.IncompleteRead as error:
            return Reply(response.status, names, error.partial, complete=False)
    finally:
        conn.close()


def call(sb: WavySandbox, list_type: str = "OPTOUT", query: str = f"customerId={CUSTOMER}") -> Reply:
    """Call a list endpoint with the right credentials."""
    return fetch(f"{sb.base_url}/v1/list/{list_type}?{query}", AUTH)


def list_file(sb: WavySandbox, list_type: str = "OPTOUT", query: str = f"customerId={CUSTOMER}") -> bytes:
    """Return the file of a ready list answer."""
    reply = call(sb, list_type, query)
    assert reply.status == 200, reply
    file = fetch(reply.json()["data"])
    assert (file.status, file.complete) == (200, True)
    return file.body


def rows_of(body: bytes, delimiter: str = ";") -> list[list[str]]:
    """Parse a CSV body with the csv module."""
    return list(csv.reader(io.StringIO(body.decode("utf-8-sig"), newline=""), delimiter=delimiter))


@pytest.fixture(scope="module")
def sb_server() -> Iterator[WavySandbox]:
    with WavySandbox(username=USER, token=TOKEN, customer_id=CUSTOMER) as server:
        yield server


@pytest.fixture
def sb(sb_server: WavySandbox) -> WavySandbox:
    """The module's sandbox, back on the happy path with empty records."""
    sb_server.scenario = Scenario()
    sb_server.list_scenarios = {}
    sb_server.reset()
    return sb_server


# -- answers -----------------------------------------------------------------------------------------------


@pytest.mark.parametrize("list_type", [pytest.param(name, id=name) for name in LIST_TYPES])
def test_each_list_answers_a_csv_url_on_the_cdn(sb: WavySandbox, list_type: str) -> None:
    reply = call(sb, list_type)
    assert (reply.status, reply.headers["content-type"]) == (200, "application/json")
    body = reply.json()
    assert body == {**ENVELOPE, "data": body["data"]}
    assert body["data"].startswith(f"{sb.cdn_url}/")
    assert LIST_PATH.match(urlsplit(body["data"]).path)
    file = fetch(body["data"])
    assert file.headers["content-type"] == "text/csv; charset=utf-8"
    assert file.body.startswith(b"source;createdAt\n")
    rows = rows_of(file.body)
    assert rows[0] == ["source", "createdAt"]
    assert len(rows) == 26
    assert all(len(row) == 2 and re.fullmatch(r"55\d{11}", row[0]) for row in rows[1:])
    assert file.body == sb.expected_bytes(list_type=list_type)
    assert sb.list_calls == {name: int(name == list_type) for name in LIST_TYPES}
    assert sb.api_calls == 0


@pytest.mark.parametrize(
    "path",
    [
        pytest.param("/v1/list/optout", id="lower-case"),
        pytest.param("/v1/list/OptOut", id="mixed-case"),
        pytest.param("/v1/list/SESSIONS", id="unknown-type"),
        pytest.param("/v1/list/", id="no-type"),
        pytest.param("/v1/list/OPTOUT/extra", id="trailing-segment"),
    ],
)
def test_unknown_list_types_are_json_404s(sb: WavySandbox, path: str) -> None:
    for headers in (AUTH, {}):
        reply = fetch(f"{sb.base_url}{path}?customerId={CUSTOMER}", headers)
        assert reply.status == 404
        body = reply.json()
        assert body["errorCode"] == 404
        assert "OPTOUT, OPTIN, BLACKLIST, WHITELIST" in body["errorMessage"]
    assert sb.list_calls == dict.fromkeys(LIST_TYPES, 0)


def test_list_checks_credentials_parameters_and_method(sb: WavySandbox) -> None:
    bad = fetch(f"{sb.base_url}/v1/list/OPTIN?customerId=42", {"UserName": USER, "authenticationToken": "x"})
    assert (bad.status, bad.json()) == (401, {"errorCode": 401, "errorMessage": AUTH_ERROR_MESSAGE})
    missing = call(sb, "OPTIN", "customerId=")
    assert missing.status == 400
    assert "customerId" in missing.json()["errorMessage"]
    post = fetch(f"{sb.base_url}/v1/list/OPTIN?customerId=42", AUTH, method="POST")
    assert (post.status, post.headers["allow"]) == (405, "GET")


def test_sub_account_gives_another_list(sb: WavySandbox) -> None:
    plain = list_file(sb)
    sub = list_file(sb, query=f"customerId={CUSTOMER}&subAccountId=7")
    assert sub == sb.expected_bytes(sub_account_id="7", list_type="OPTOUT")
    assert plain != sub


# -- phases ------------------------------------------------------------------------------------------------


def test_one_list_gets_its_own_scenario(sb: WavySandbox) -> None:
    sb.list_scenarios = {"OPTOUT": Scenario(ready_after=2, rows=0)}
    assert [call(sb).json() for _ in range(2)] == [ENVELOPE, ENVELOPE]
    assert list_file(sb) == b"source;createdAt\n"
    # The sessions file and the other lists follow the sandbox's scenario: ready at once, 25 rows.
    session = fetch(f"{sb.base_url}/v1/session?customerId={CUSTOMER}", AUTH)
    assert "file_url" in session.json()
    assert len(rows_of(list_file(sb, "OPTIN"))) == 26
    assert sb.list_calls == {"OPTOUT": 3, "OPTIN": 1, "BLACKLIST": 0, "WHITELIST": 0}
    assert sb.api_calls == 1


def test_each_endpoint_counts_its_own_phases(sb: WavySandbox) -> None:
    sb.scenario = Scenario(ready_after=1)
    assert fetch(f"{sb.base_url}/v1/session?customerId={CUSTOMER}", AUTH).json() == {}
    assert call(sb, "BLACKLIST").json() == ENVELOPE
    assert "data" in call(sb, "BLACKLIST").json()
    assert call(sb, "WHITELIST").json() == ENVELOPE


@pytest.mark.parametrize(
    ("style", "pending"),
    [
        pytest.param("missing", ENVELOPE, id="missing"),
        pytest.param("data", ENVELOPE, id="data"),
        pytest.param("null", {**ENVELOPE, "data": None}, id="null"),
        pytest.param("empty", {**ENVELOPE, "data": ""}, id="empty"),
    ],
)
def test_pending_styles_on_a_list(sb: WavySandbox, style: str, pending: dict[str, Any]) -> None:
    sb.scenario = Scenario(ready_after=1, pending_style=style)
    first = call(sb)
    assert (first.status, first.json()) == (200, pending)
    assert "data" in call(sb).json()


def test_error_phases_on_a_list(sb: WavySandbox) -> None:
    sb.scenario = Scenario(
        rate_limited_calls=1, rate_limit_status=420, retry_after="3", server_errors=1, failed_answers=1
    )
    limited, broken, failed, ready = (call(sb) for _ in range(4))
    assert (limited.status, limited.headers["retry-after"], limited.json()["errorCode"]) == (420, "3", 420)
    assert (broken.status, broken.json()["errorCode"]) == (503, 503)
    assert failed.status == 200
    assert failed.json() == {"success": False, "status": 500, "message": failed.json()["message"]}
    assert failed.json()["message"]
    assert ready.json()["data"]


@pytest.mark.parametrize(
    "path", [pytest.param("/v1/list/OPTOUT", id="list"), pytest.param("/v1/session", id="session")]
)
def test_success_false_answers_inside_http_200(sb: WavySandbox, path: str) -> None:
    sb.scenario = Scenario(failed_answers=2, failed_status=503)
    for _ in range(2):
        reply = fetch(f"{sb.base_url}{path}?customerId={CUSTOMER}", AUTH)
        assert reply.status == 200
        assert {key: reply.json()[key] for key in ("success", "status")} == {"success": False, "status": 503}
    reply = fetch(f"{sb.base_url}{path}?customerId={CUSTOMER}", AUTH)
    assert {"data", "file_url"} & set(reply.json())


def test_a_status_other_than_200_inside_a_200_answer(sb: WavySandbox) -> None:
    sb.scenario = Scenario(body_status=202)
    reply = call(sb, "WHITELIST")
    assert reply.status == 200
    assert reply.json() == {"success": True, "status": 202, "data": reply.json()["data"]}


def test_no_data_answer_issues_no_file(sb: WavySandbox) -> None:
    sb.list_scenarios = {"OPTIN": Scenario(no_data=True)}
    for _ in range(3):
        reply = call(sb, "OPTIN")
        assert (reply.status, reply.json()) == (200, ENVELOPE)
    # The sessions endpoint ignores the knob: it is the lists' way of saying "empty".
    sb.scenario = Scenario(no_data=True)
    assert "file_url" in fetch(f"{sb.base_url}/v1/session?customerId={CUSTOMER}", AUTH).json()


def test_api_status_on_a_list(sb: WavySandbox) -> None:
    sb.list_scenarios = {"BLACKLIST": Scenario(api_status=403)}
    reply = call(sb, "BLACKLIST")
    assert (reply.status, reply.json()["errorCode"]) == (403, 403)
    assert call(sb, "OPTOUT").status == 200


def test_slow_list_answers_for_the_first_calls(sb: WavySandbox) -> None:
    sb.scenario = Scenario(api_delay=0.3, slow_calls=1)
    started = time.monotonic()
    call(sb)
    middle = time.monotonic()
    call(sb)
    assert middle - started >= 0.3
    assert time.monotonic() - middle < 0.3


# -- redirects ---------------------------------------------------------------------------------------------


def test_same_origin_redirect_of_a_list(sb: WavySandbox) -> None:
    sb.scenario = Scenario(redirect="api-same-origin")
    reply = call(sb, "OPTIN", f"customerId={CUSTOMER}&subAccountId=3")
    assert reply.status == 307
    assert reply.headers["location"] == f"{sb.base_url}/v2/list/OPTIN?customerId={CUSTOMER}&subAccountId=3"
    landed = fetch(reply.headers["location"], AUTH)
    assert fetch(landed.json()["data"]).body == sb.expected_bytes(sub_account_id="3", list_type="OPTIN")


def test_cross_origin_redirect_of_a_list(sb: WavySandbox) -> None:
    sb.scenario = Scenario(redirect="api-cross-origin")
    reply = call(sb, "WHITELIST")
    assert reply.status == 302
    assert reply.headers["location"] == f"{sb.cdn_url}/redirected/v1/list/WHITELIST?customerId={CUSTOMER}"
    landed = fetch(reply.headers["location"], AUTH)
    assert landed.json()["success"] is True
    assert fetch(landed.json()["data"]).body == sb.expected_bytes(list_type="WHITELIST")
    assert sb.cdn_saw_credentials
    assert fetch(f"{sb.cdn_url}/redirected/v1/list/optout").status == 404


def test_file_redirect_of_a_list(sb: WavySandbox) -> None:
    sb.scenario = Scenario(redirect="file")
    url = call(sb).json()["data"]
    assert urlsplit(url).path.startswith("/r/")
    moved = fetch(url)
    assert moved.status == 302
    assert LIST_PATH.match(urlsplit(moved.headers["location"]).path)
    assert fetch(moved.headers["location"]).body == sb.expected_bytes(list_type="OPTOUT")


# -- the file ----------------------------------------------------------------------------------------------


@pytest.mark.parametrize(
    ("knobs", "first_line"),
    [
        pytest.param({"delimiter": ","}, b"source,createdAt\n", id="comma"),
        pytest.param({"bom": True}, b"\xef\xbb\xbfsource;createdAt\n", id="bom"),
        pytest.param({"crlf": True}, b"source;createdAt\r\n", id="crlf"),
        pytest.param({"quote": True}, b'"source";"createdAt"\n', id="quoted"),
        pytest.param({"final_newline": False}, b"source;createdAt\n", id="no-final-newline"),
        pytest.param({"extra_columns": ("note",)}, b"source;createdAt;note\n", id="extra-column"),
    ],
)
def test_csv_dialect_knobs_on_a_list(sb: WavySandbox, knobs: dict[str, Any], first_line: bytes) -> None:
    sb.scenario = Scenario(rows=5, **knobs)
    body = list_file(sb, "BLACKLIST")
    assert body.startswith(first_line)
    assert body == sb.expected_bytes(list_type="BLACKLIST")
    assert len(body) == list_size(CUSTOMER, None, "BLACKLIST", sb.scenario)
    rows = rows_of(body, knobs.get("delimiter", ";"))
    assert rows[0][:2] == ["source", "createdAt"]
    assert len(rows) == 6
    assert all(len(row) == len(rows[0]) for row in rows)
    assert body.endswith(b"\n") is knobs.get("final_newline", True)


@pytest.mark.parametrize(
    "knobs",
    [pytest.param({}, id="lf"), pytest.param({"crlf": True, "final_newline": False}, id="crlf-no-newline")],
)
def test_header_only_list(sb: WavySandbox, knobs: dict[str, Any]) -> None:
    sb.scenario = Scenario(rows=0, **knobs)
    body = list_file(sb)
    assert rows_of(body) == [["source", "createdAt"]]
    assert body == sb.expected_bytes(list_type="OPTOUT")


@pytest.mark.parametrize("chunked", [pytest.param(False, id="length"), pytest.param(True, id="chunked")])
def test_gzip_and_chunked_list(sb: WavySandbox, chunked: bool) -> None:
    sb.scenario = Scenario(rows=300, gzip=True, chunked=chunked)
    url = call(sb).json()["data"]
    file = fetch(url)
    assert file.headers["content-encoding"] == "gzip"
    assert ("content-length" in file.headers) is not chunked
    assert gzip.decompress(file.body) == sb.expected_bytes(list_type="OPTOUT")


def test_truncated_list_download(sb: WavySandbox) -> None:
    sb.scenario = Scenario(rows=300, truncate_at=1000)
    file = fetch(call(sb).json()["data"])
    assert not file.complete
    assert file.body == sb.expected_bytes(list_type="OPTOUT")[:1000]
    assert int(file.headers["content-length"]) == list_size(CUSTOMER, None, "OPTOUT", sb.scenario)


def test_cdn_not_in_sync_for_a_list(sb: WavySandbox) -> None:
    sb.scenario = Scenario(cdn_not_found_calls=1, cdn_status=403)
    url = call(sb).json()["data"]
    assert fetch(url).status == 403
    assert fetch(url).status == 200
    assert sb.cdn_calls == 2


# -- the values --------------------------------------------------------------------------------------------


def _local_kind(text: str) -> str:
    """Classify a São Paulo wall-clock time: ``standard``, ``dst``, ``ambiguous`` or ``nonexistent``."""
    naive = dt.datetime.strptime(text, "%Y-%m-%d %H:%M:%S")
    first, second = naive.replace(tzinfo=SAO_PAULO), naive.replace(tzinfo=SAO_PAULO, fold=1)
    back = first.astimezone(dt.UTC).astimezone(SAO_PAULO).replace(tzinfo=None)
    if back != naive:
        return "nonexistent"
    if first.utcoffset() != second.utcoffset():
        return "ambiguous"
    return "dst" if first.utcoffset() == dt.timedelta(hours=-2) else "standard"


def test_created_at_is_sao_paulo_local_time_with_old_dst(sb: WavySandbox) -> None:
    sb.scenario = Scenario(rows=120)
    rows = rows_of(list_file(sb))[1:]
    kinds = [_local_kind(created) for _source, created in rows]
    # Rows 1, 2 and 3 of every 50: ambiguous, inside DST, nonexistent (see docs/sandbox.md).
    assert [kinds[n] for n in (1, 2, 3, 51, 52, 53, 101, 102, 103)] == ["ambiguous", "dst", "nonexistent"] * 3
    walk = [kind for n, kind in enumerate(kinds) if n % 50 not in (1, 2, 3)]
    assert set(walk) <= {"standard", "dst", "ambiguous"}
    assert "dst" in walk
    assert "standard" in walk
    dst_years = {created[:4] for (_source, created), kind in zip(rows, kinds, strict=True) if kind == "dst"}
    assert dst_years <= {"2015", "2016", "2017", "2018", "2019"}
    years = {int(created[:4]) for _source, created in rows}
    assert min(years) <= 2018
    assert max(years) >= 2020


@pytest.mark.parametrize("list_type", [pytest.param(name, id=name) for name in LIST_TYPES])
def test_list_phones_overlap_the_sessions_phones_on_even_rows(sb: WavySandbox, list_type: str) -> None:
    session = fetch(f"{sb.base_url}/v1/session?customerId={CUSTOMER}", AUTH)
    sessions = [row[0] for row in rows_of(fetch(session.json()["file_url"]).body)[1:]]
    phones = [row[0] for row in rows_of(list_file(sb, list_type))[1:]]
    assert len(sessions) == len(phones) == 25
    assert len(set(phones)) == 25
    assert [phone in sessions for phone in phones] == [n % 2 == 0 for n in range(25)]
    assert phones[::2] == sessions[::2]
    # "Open sessions minus opt-outs" keeps the sessions on odd rows.
    assert [phone for phone in sessions if phone not in set(phones)] == sessions[1::2]


# -- configuration -----------------------------------------------------------------------------------------


def test_list_scenarios_are_checked(sb: WavySandbox) -> None:
    with pytest.raises(ValueError, match="OPTOUT"):
        sb.list_scenarios = {"optout": Scenario()}
    with pytest.raises(TypeError, match="Scenario"):
        sb.list_scenarios = {"OPTOUT": {"rows": 1}}  # type: ignore[dict-item]
    sb.list_scenarios = {"OPTOUT": Scenario(rows=1)}
    assert sb.list_scenarios == {"OPTOUT": Scenario(rows=1)}


def test_cli_banner_names_the_list_urls(sb: WavySandbox) -> None:
    text = banner(sb)
    for name in LIST_TYPES:
        assert f"{sb.base_url}/v1/list/{name}?customerId={CUSTOMER}" in text
    assert call(sb, "OPTIN").status == 200
