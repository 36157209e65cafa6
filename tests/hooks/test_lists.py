"""The lists endpoint through both hooks (requests and httpx) against the sandbox: one table, both."""

from __future__ import annotations

import asyncio
from typing import TYPE_CHECKING, Any

import pytest

from airflow_provider_wavy.exceptions import WavyAuthenticationError, WavyResponseError
from airflow_provider_wavy.exports import WavyListType
from airflow_provider_wavy.hooks.wavy import WavyHook
from airflow_provider_wavy.hooks.wavy_async import WavyAsyncHook
from airflow_provider_wavy.sandbox import Scenario
from tests.conftest import SANDBOX_CUSTOMER, set_conn

if TYPE_CHECKING:
    from airflow_provider_wavy.sandbox import WavySandbox

TRANSPORTS = [pytest.param("sync", id="requests"), pytest.param("async", id="httpx")]


def ask(transport: str, list_type: Any, **kwargs: Any) -> str | None:
    if transport == "sync":
        return WavyHook(backoff_base=0.01).get_list_file_url(list_type, **kwargs)
    return asyncio.run(WavyAsyncHook(backoff_base=0.01).get_list_file_url(list_type, **kwargs))


def has_rows(transport: str, file_url: str) -> bool:
    from airflow_provider_wavy.exports import list_export

    export = list_export("OPTOUT")
    if transport == "sync":
        return WavyHook().file_has_rows(file_url, export=export)
    return asyncio.run(WavyAsyncHook().file_has_rows(file_url, export=export))


@pytest.mark.parametrize("transport", TRANSPORTS)
@pytest.mark.parametrize(
    "list_type",
    [
        pytest.param("OPTOUT", id="upper"),
        pytest.param("optin", id="lower"),
        pytest.param(" Blacklist ", id="mixed-spaces"),
        pytest.param(WavyListType.WHITELIST, id="enum"),
    ],
)
def test_each_list_type_answers_its_file(transport: str, list_type: Any, sandbox: WavySandbox) -> None:
    url = ask(transport, list_type)
    name = list_type.value if isinstance(list_type, WavyListType) else list_type.strip().upper()
    assert url is not None
    assert url.startswith(f"{sandbox.cdn_url}/")
    assert f"/list-{SANDBOX_CUSTOMER}-" in url
    [request] = [r for r in sandbox.requests if r.origin == "api"]
    assert request.path == f"/v1/list/{name}"
    assert sandbox.list_calls[name] == 1
    assert sandbox.api_calls == 0  # the sessions endpoint was not asked


@pytest.mark.parametrize("transport", TRANSPORTS)
@pytest.mark.parametrize("list_type", ["SPAM", "", "OPT OUT", "session"])
def test_unknown_list_type_is_refused_before_any_request(
    transport: str, list_type: str, sandbox: WavySandbox
) -> None:
    with pytest.raises(ValueError, match="OPTOUT, OPTIN, BLACKLIST, WHITELIST"):
        ask(transport, list_type)
    assert sandbox.requests == []


@pytest.mark.parametrize("transport", TRANSPORTS)
@pytest.mark.parametrize(
    ("scenario", "expected"),
    [
        pytest.param({"no_data": True}, None, id="nothing-to-list-is-no-file"),
        pytest.param({"ready_after": 1, "pending_style": "missing"}, None, id="not-yet"),
    ],
)
def test_no_data_means_no_file(
    transport: str, scenario: dict[str, Any], expected: None, sandbox: WavySandbox
) -> None:
    sandbox.list_scenarios = {"OPTOUT": Scenario(**scenario)}
    assert ask(transport, "OPTOUT") is expected


@pytest.mark.parametrize("transport", TRANSPORTS)
@pytest.mark.parametrize(
    ("scenario", "words"),
    [
        pytest.param(
            {"failed_answers": 1, "failed_status": 500}, "success=False and status=500", id="success-false"
        ),
        pytest.param({"body_status": 202}, "success=True and status=202", id="status-not-200"),
    ],
)
def test_a_200_that_says_it_failed_is_an_error_naming_both(
    transport: str, scenario: dict[str, Any], words: str, sandbox: WavySandbox
) -> None:
    sandbox.list_scenarios = {"OPTOUT": Scenario(**scenario)}
    with pytest.raises(WavyResponseError, match=words):
        ask(transport, "OPTOUT")


@pytest.mark.parametrize("transport", TRANSPORTS)
def test_lists_use_the_same_credentials_rules(
    transport: str, sandbox: WavySandbox, monkeypatch: pytest.MonkeyPatch
) -> None:
    set_conn(monkeypatch, sandbox.connection_json(), password="wrong-token")
    with pytest.raises(WavyAuthenticationError, match="HTTP 401"):
        ask(transport, "OPTOUT")


@pytest.mark.parametrize("transport", TRANSPORTS)
def test_sub_account_and_customer_arguments(transport: str, sandbox: WavySandbox) -> None:
    url = ask(transport, "OPTOUT", customer_id="2002", sub_account_id="7")
    assert url is not None
    assert "/list-2002-" in url
    [request] = [r for r in sandbox.requests if r.origin == "api"]
    assert request.query == {"customerId": "2002", "subAccountId": "7"}


@pytest.mark.parametrize("transport", TRANSPORTS)
def test_list_file_is_checked_with_the_list_columns(transport: str, sandbox: WavySandbox) -> None:
    url = ask(transport, "OPTOUT")
    assert url is not None
    assert has_rows(transport, url) is True
    sandbox.list_scenarios = {"OPTOUT": Scenario(rows=0)}
    header_only = ask(transport, "OPTOUT", customer_id="3003")
    assert header_only is not None
    assert has_rows(transport, header_only) is False
