"""``GET /api/v1/flags``: summaries (counts, not members), a page at a time, filtered."""

from __future__ import annotations

import time
from collections.abc import AsyncIterator

import httpx
import pytest

from rollout import Rollout
from rollout.admin import create_app
from rollout.testing import FakeClock

from .api_helpers import BEARER, TOKEN, asgi_client

pytestmark = pytest.mark.anyio

DAY_MS = 86_400_000


@pytest.fixture
async def api(flags: Rollout) -> AsyncIterator[httpx.AsyncClient]:
    async with asgi_client(create_app(flags, tokens={"alice": TOKEN}), headers=BEARER) as c:
        yield c


async def names(api: httpx.AsyncClient, **params: str | int) -> list[str]:
    response = await api.get("/api/v1/flags", params=params)
    assert response.status_code == 200, response.text
    return [flag["flag"] for flag in response.json()["flags"]]


async def test_a_flag_with_100000_users_is_counted_not_listed(
    api: httpx.AsyncClient, flags: Rollout
) -> None:
    flags.activate_users("big", [str(n) for n in range(100_000)])
    flags.exclude_users("big", ["x1", "x2"])
    flags.activate_group("big", "admins")
    flags.set_feature_data("big", {"description": "Huge", "owner": "web"})
    response = await api.get("/api/v1/flags")
    assert len(response.content) < 1_000  # it was 790 KB with every user listed
    [big] = response.json()["flags"]
    assert "users" not in big
    assert big["counts"] == {"users": 100_000, "excluded_users": 2, "groups": 1}
    assert (big["state"], big["description"], big["data_keys"]) == (
        "partial",
        "Huge",
        ["description", "owner"],
    )


async def test_pages_follow_the_cursor_to_the_end(api: httpx.AsyncClient, flags: Rollout) -> None:
    every = [f"flag_{n:02}" for n in range(7)]
    for name in every:
        flags.activate(name)
    seen: list[str] = []
    totals: list[int] = []
    cursor: str | None = None
    pages = 0
    while True:
        params = {"limit": 3} | ({"cursor": cursor} if cursor else {})
        page = (await api.get("/api/v1/flags", params=params)).json()
        totals.append(page["total"])
        seen += [flag["flag"] for flag in page["flags"]]
        pages += 1
        cursor = page["next_cursor"]
        if cursor is None:
            break
        if pages == 1:  # a flag deleted behind the cursor moves nothing
            flags.delete("flag_01")
    assert (pages, seen, totals) == (3, every, [7, 6, 6])


async def test_the_default_page_is_100_flags(api: httpx.AsyncClient, flags: Rollout) -> None:
    for n in range(101):
        flags.activate(f"f{n:03}")
    page = (await api.get("/api/v1/flags")).json()
    assert (len(page["flags"]), page["total"]) == (100, 101)
    rest = (await api.get("/api/v1/flags", params={"cursor": page["next_cursor"]})).json()
    assert ([f["flag"] for f in rest["flags"]], rest["next_cursor"]) == (["f100"], None)


async def test_filters_by_state_name_text_and_exact_name(
    api: httpx.AsyncClient, flags: Rollout
) -> None:
    flags.activate("Chat_On")
    flags.activate_percentage("chat_partial", 5)
    flags.set_feature_data("search_off", {"owner": "search"})
    assert await names(api, state="on") == ["Chat_On"]
    assert await names(api, state="partial") == ["chat_partial"]
    assert await names(api, state="off") == ["search_off"]
    assert await names(api, q="CHAT") == ["Chat_On", "chat_partial"]  # any case
    assert await names(api, q="chat", state="off") == []
    assert await names(api, flag="chat_partial") == ["chat_partial"]
    assert await names(api, flag="chat") == []  # exact, and no flag is called that


@pytest.mark.parametrize(
    ("params", "field"),
    [
        ({"limit": "0"}, "limit"),
        ({"limit": "1001"}, "limit"),
        ({"limit": "ten"}, "limit"),
        ({"cursor": "not-a-cursor"}, "cursor"),
        ({"state": "maybe"}, "state"),
        ({"q": "x" * 1001}, "q"),
        ({"unchecked_days": "-1"}, "unchecked_days"),
        ({"on_days": "1.5"}, "on_days"),
        ({"flag": "a\x01b"}, "flag"),
    ],
)
async def test_bad_list_parameters_are_refused_by_name(
    api: httpx.AsyncClient, params: dict[str, str], field: str
) -> None:
    response = await api.get("/api/v1/flags", params=params)
    assert response.status_code == 422
    error = response.json()["error"]
    assert (error["code"], error["field"]) == ("invalid", field)
    assert field in error["message"]


async def test_on_for_everybody_for_n_days_reads_history() -> None:
    now_ms = int(time.time() * 1000)
    clock = FakeClock(now_ms - 10 * DAY_MS)  # the flags' history begins ten days ago
    with Rollout(clock=clock) as flags:
        with flags.with_context(user="bob"):
            flags.activate("old_on")
            flags.activate("turned_on_lately")
            flags.activate_percentage("partial", 50)
            flags.deactivate("turned_on_lately")
        clock.advance(8 * DAY_MS)  # two days ago
        flags.activate("turned_on_lately")
        flags.activate_users("old_on", ["42"])  # a change that does not touch "on"
        async with asgi_client(create_app(flags, tokens={"a": TOKEN}), headers=BEARER) as api:
            assert await names(api, on_days=7) == ["old_on"]
            assert await names(api, on_days=1) == ["old_on", "turned_on_lately"]
            assert await names(api, on_days=11) == []
            [old] = (await api.get("/api/v1/flags", params={"flag": "old_on"})).json()["flags"]
    expected_since = time.strftime("%Y-%m-%dT%H:%M", time.gmtime((now_ms - 10 * DAY_MS) / 1000))
    assert old["on_since"].startswith(expected_since)
    assert old["last_changed"] > old["on_since"]  # the user added two days ago
    assert old["last_changed_by"] is None  # that change had no actor
