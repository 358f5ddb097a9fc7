"""Every route of the JSON API, through the real ASGI app, and what it does to the flags."""

from __future__ import annotations

from collections.abc import AsyncIterator
from typing import Any

import httpx
import pytest
from fastapi import FastAPI
from starlette.applications import Starlette
from starlette.responses import PlainTextResponse
from starlette.routing import Mount, Route

from rollout import Rollout
from rollout.admin import create_app
from rollout.testing.cluster import free_port

from .api_helpers import BEARER, TOKEN, asgi_client, seeded

pytestmark = pytest.mark.anyio


@pytest.fixture
async def api(flags: Rollout) -> AsyncIterator[httpx.AsyncClient]:
    seeded(flags)
    async with asgi_client(create_app(flags, tokens={"alice": TOKEN}), headers=BEARER) as c:
        yield c


#: The fields of both flag shapes that say what is known of its use (times vary per run).
USAGE = ("last_changed", "last_changed_by", "on_since", "last_checked", "checks")


def flag(**fields: Any) -> dict[str, Any]:
    """A flag in full as the API shows it, its usage fields left out: empty unless given."""
    shown: dict[str, Any] = {
        "flag": "x",
        "state": "off",
        "percentage": 0.0,
        "percentage_of_time": 0.0,
        "users": [],
        "excluded_users": [],
        "groups": [],
        "data": {},
    }
    shown.update(fields)
    shown["counts"] = {k: len(shown[k]) for k in ("users", "excluded_users", "groups")}
    return shown


def rules(shown: dict[str, Any]) -> dict[str, Any]:
    """A flag's JSON without its usage fields (which are checked on their own)."""
    assert all(key in shown for key in USAGE), shown
    return {key: value for key, value in shown.items() if key not in USAGE}


def summary(full: dict[str, Any]) -> dict[str, Any]:
    """The summary shape of the full shape ``full`` (usage left out)."""
    description = full["data"].get("description")
    return {
        "flag": full["flag"],
        "state": full["state"],
        "percentage": full["percentage"],
        "percentage_of_time": full["percentage_of_time"],
        "counts": full["counts"],
        "data_keys": sorted(full["data"]),
        "description": description if isinstance(description, str) else None,
    }


CHAT = flag(
    flag="chat",
    state="partial",
    percentage=20.0,
    users=["u1", "u2"],
    excluded_users=["x1"],
    groups=["admins"],
    data={"owner": "web"},
)


async def test_healthz_answers_without_a_token_with_the_number_of_flags(
    api: httpx.AsyncClient,
) -> None:
    response = await api.get("/healthz", headers={"Authorization": ""})
    assert response.status_code == 200
    assert response.json() == {"status": "ok", "flags": 2}


async def test_list_flags_sorted_by_name_with_their_state(api: httpx.AsyncClient) -> None:
    response = await api.get("/api/v1/flags")
    assert response.status_code == 200
    assert response.headers["content-type"] == "application/json"
    listed = response.json()
    signup = flag(flag="signup", state="on", percentage=100.0)
    assert [rules(f) for f in listed["flags"]] == [summary(CHAT), summary(signup)]
    assert (listed["next_cursor"], listed["total"]) == (None, 2)


async def test_get_one_flag_or_404(api: httpx.AsyncClient) -> None:
    assert rules((await api.get("/api/v1/flags/chat")).json()) == CHAT
    missing = await api.get("/api/v1/flags/nope")
    assert missing.status_code == 404
    assert missing.json() == {
        "error": {"code": "not_found", "field": "name", "message": "no flag named 'nope'"}
    }


async def test_delete_forgets_the_flag_and_keeps_its_history(
    api: httpx.AsyncClient, flags: Rollout
) -> None:
    response = await api.delete("/api/v1/flags/chat")
    assert response.json() == {"deleted": "chat"}
    assert flags.features() == ["signup"]
    assert (await api.delete("/api/v1/flags/chat")).status_code == 404
    history = (await api.get("/api/v1/flags/chat/history")).json()["events"]
    assert history[0]["action"] == "delete"
    assert history[0]["actor"] == "alice"


async def test_active_true_turns_on_for_everybody_false_turns_off(
    api: httpx.AsyncClient, flags: Rollout
) -> None:
    on = await api.put("/api/v1/flags/chat/active", json={"active": True})
    assert on.status_code == 200
    # On for everybody but an excluded user: "partial" until the exclusion goes.
    assert rules(on.json()) == {**CHAT, "percentage": 100.0}
    assert flags.active("chat", "someone")
    assert not flags.active("chat", "x1")
    off = await api.put("/api/v1/flags/chat/active", json={"active": False})
    assert rules(off.json()) == flag(flag="chat", data={"owner": "web"})  # data is kept
    assert not flags.active("chat", "u1")
    created = await api.put("/api/v1/flags/new/active", json={"active": True})
    assert rules(created.json()) == flag(flag="new", state="on", percentage=100.0)


async def test_percentages(api: httpx.AsyncClient, flags: Rollout) -> None:
    response = await api.put("/api/v1/flags/chat/percentage", json={"percentage": 37.5})
    assert response.json()["percentage"] == 37.5
    assert flags.get("chat").percentage == 37.5
    response = await api.put("/api/v1/flags/chat/percentage_of_time", json={"percentage": 100})
    assert response.json()["percentage_of_time"] == 100.0
    assert flags.get("chat").percentage_of_time == 100.0
    assert flags.active("chat")  # 100% of the time: on without a user too


async def test_users_add_remove_and_replace(api: httpx.AsyncClient, flags: Rollout) -> None:
    added = await api.post("/api/v1/flags/chat/users", json={"users": ["u3", 42]})
    assert added.json()["users"] == ["42", "u1", "u2", "u3"]
    removed = await api.post("/api/v1/flags/chat/users/remove", json={"users": ["u1", 42]})
    assert removed.json()["users"] == ["u2", "u3"]
    replaced = await api.put("/api/v1/flags/chat/users", json={"users": ["a", "b"]})
    assert replaced.json()["users"] == ["a", "b"]
    assert flags.get("chat").users == {"a", "b"}
    emptied = await api.put("/api/v1/flags/chat/users", json={"users": []})
    assert emptied.json()["users"] == []


async def test_excluded_users_add_and_remove(api: httpx.AsyncClient, flags: Rollout) -> None:
    excluded = await api.post("/api/v1/flags/chat/excluded_users", json={"users": ["u1"]})
    assert excluded.json()["excluded_users"] == ["u1", "x1"]
    assert not flags.active("chat", "u1")
    included = await api.post(
        "/api/v1/flags/chat/excluded_users/remove", json={"users": ["u1", "x1"]}
    )
    assert included.json()["excluded_users"] == []
    assert flags.active("chat", "u1")


async def test_groups_add_and_remove(api: httpx.AsyncClient, flags: Rollout) -> None:
    added = await api.post("/api/v1/flags/chat/groups", json={"group": "all"})
    assert added.json()["groups"] == ["admins", "all"]
    assert flags.active("chat", "anyone")
    removed = await api.delete("/api/v1/flags/chat/groups/all")
    assert removed.json()["groups"] == ["admins"]
    spaced = await api.post("/api/v1/flags/chat/groups", json={"group": "beta testers"})
    assert "beta testers" in spaced.json()["groups"]
    gone = await api.delete("/api/v1/flags/chat/groups/beta%20testers")
    assert gone.json()["groups"] == ["admins"]


async def test_data_merge_and_clear(api: httpx.AsyncClient, flags: Rollout) -> None:
    merged = await api.put("/api/v1/flags/chat/data", json={"data": {"limit": 5, "n": [1]}})
    assert merged.json()["data"] == {"owner": "web", "limit": 5, "n": [1]}
    cleared = await api.delete("/api/v1/flags/chat/data")
    assert cleared.json()["data"] == {}
    assert dict(flags.get("chat").data) == {}


async def test_data_replace_is_one_write(api: httpx.AsyncClient, flags: Rollout) -> None:
    events = len(flags.history("chat"))
    replaced = await api.put("/api/v1/flags/chat/data/replace", json={"data": {"limit": 7}})
    assert replaced.json()["data"] == {"limit": 7}
    assert dict(flags.get("chat").data) == {"limit": 7}
    assert len(flags.history("chat")) == events + 1
    assert flags.history("chat")[0].action == "replace_feature_data"


async def test_check_for_a_user_and_for_nobody(api: httpx.AsyncClient) -> None:
    listed = await api.get("/api/v1/flags/chat/check", params={"user": "u1"})
    assert listed.json() == {"flag": "chat", "user": "u1", "active": True, "state": "partial"}
    excluded = await api.get("/api/v1/flags/chat/check", params={"user": "x1"})
    assert excluded.json() == {"flag": "chat", "user": "x1", "active": False, "state": "partial"}
    nobody = await api.get("/api/v1/flags/chat/check")
    assert nobody.json() == {"flag": "chat", "user": None, "active": False, "state": "partial"}
    everybody = await api.get("/api/v1/flags/signup/check")
    assert everybody.json()["active"] is True
    unknown = await api.get("/api/v1/flags/nope/check", params={"user": "u1"})
    assert unknown.json() == {"flag": "nope", "user": "u1", "active": False, "state": "off"}


async def test_history_newest_first_with_the_token_name_as_actor(
    api: httpx.AsyncClient, flags: Rollout
) -> None:
    await api.put("/api/v1/flags/chat/percentage", json={"percentage": 60})
    events = (await api.get("/api/v1/flags/chat/history")).json()["events"]
    assert len(events) == 6  # five writes by seeded(), one by alice
    newest = events[0]
    assert newest == {
        "flag": "chat",
        "action": "activate_percentage",
        "before": {"percentage": 20.0},
        "after": {"percentage": 60.0},
        "at": newest["at"],
        "node": flags.node_name,
        "actor": "alice",
        "reason": None,
    }
    assert [e["actor"] for e in events[1:]] == [None] * 5  # written in code, not over HTTP
    limited = await api.get("/api/v1/flags/chat/history", params={"limit": 2})
    assert limited.json()["events"] == events[:2]
    never = await api.get("/api/v1/flags/never/history")
    assert (never.status_code, never.json()["error"]["message"]) == (
        404,
        "no flag named 'never' and no history for it",
    )
    flags.activate("gone")
    flags.delete("gone")  # deleted, its history kept: still read
    assert [
        e["action"] for e in (await api.get("/api/v1/flags/gone/history")).json()["events"]
    ] == [
        "delete",
        "activate",
    ]


async def test_groups_lists_the_defined_ones_and_all(
    api: httpx.AsyncClient, flags: Rollout
) -> None:
    assert (await api.get("/api/v1/groups")).json() == {"groups": ["all"]}
    flags.define_group("admins", lambda user: False)
    assert (await api.get("/api/v1/groups")).json() == {"groups": ["admins", "all"]}


async def test_members_of_a_node_without_peers(api: httpx.AsyncClient, flags: Rollout) -> None:
    response = await api.get("/api/v1/members")
    assert response.json() == {
        "node": flags.node_name,
        "node_id": flags.stats()["node"],
        "members": [],
        "clock": None,  # no peers: nobody judges its clock
        "quarantined": 0,
    }


async def test_members_lists_the_peers_this_node_knows() -> None:
    here, there = f"127.0.0.1:{free_port()}", f"127.0.0.1:{free_port()}"
    with (
        Rollout(listen=there, insecure=True, node_name="there") as peer,
        Rollout(listen=here, peers=[there], insecure=True, node_name="here") as flags,
    ):
        peer.activate("from-peer")
        assert flags.wait_synced(30, peers=1)
        async with asgi_client(create_app(flags, token=TOKEN), headers=BEARER) as api:
            body = (await api.get("/api/v1/members")).json()
            assert (await api.get("/api/v1/flags/from-peer")).status_code == 200
    assert body["node"] == "here"
    assert [m["address"] for m in body["members"]] == [there]
    assert body["members"][0]["node"] == peer.stats()["node"]
    assert body["clock"]["state"] in ("ok", "unconfirmed")  # its own verdict, by its one peer
    assert body["clock"]["max_offset_ms"] == flags.stats()["sync"]["clock"]["max_offset_ms"]


async def test_unknown_paths_and_methods_get_json_errors(api: httpx.AsyncClient) -> None:
    unknown = await api.get("/api/v1/nothing-here")
    assert unknown.status_code == 404
    assert unknown.json()["error"]["code"] == "not_found"
    wrong = await api.post("/api/v1/flags/chat", json={})
    assert wrong.status_code == 405
    assert wrong.json()["error"]["code"] == "method_not_allowed"
    assert set(wrong.headers["allow"].replace(" ", "").split(",")) >= {"GET", "DELETE"}


async def test_writes_to_a_closed_rollout_are_refused_with_503(flags: Rollout) -> None:
    seeded(flags)
    async with asgi_client(create_app(flags, token=TOKEN), headers=BEARER) as api:
        flags.close()
        before = flags.export()
        response = await api.put("/api/v1/flags/chat/percentage", json={"percentage": 5})
        assert response.status_code == 503
        assert response.json()["error"]["code"] == "unavailable"
        assert flags.export() == before
        assert rules((await api.get("/api/v1/flags/chat")).json()) == CHAT  # reads still answer


# Mounted inside another app ---------------------------------------------------------------------


def _home(request: object) -> PlainTextResponse:
    return PlainTextResponse("the team's own page")


@pytest.mark.parametrize("framework", ["starlette", "fastapi"])
async def test_mounted_under_a_prefix_in_a_starlette_or_fastapi_app(
    flags: Rollout, framework: str
) -> None:
    seeded(flags)
    admin = create_app(flags, token=TOKEN)
    outer: Starlette
    if framework == "starlette":
        outer = Starlette(routes=[Route("/", _home), Mount("/admin", app=admin)])
    else:
        outer = FastAPI()
        outer.add_route("/", _home)
        outer.mount("/admin", admin)
    async with asgi_client(outer) as client:
        assert (await client.get("/")).text == "the team's own page"  # not guarded
        assert (await client.get("/admin/healthz")).json() == {"status": "ok", "flags": 2}
        assert (await client.get("/admin/api/v1/flags/chat")).status_code == 401
        got = await client.get("/admin/api/v1/flags/chat", headers=BEARER)
        assert rules(got.json()) == CHAT
        changed = await client.put(
            "/admin/api/v1/flags/chat/percentage", json={"percentage": 1}, headers=BEARER
        )
        assert changed.json()["percentage"] == 1.0
        missing = await client.get("/admin/api/v1/flags/chat/nothing", headers=BEARER)
        assert missing.json()["error"]["code"] == "not_found"
        document = (await client.get("/admin/api/v1/openapi.json", headers=BEARER)).json()
        assert document["servers"] == [{"url": "/admin/api/v1"}]
        page = await client.get("/admin/flags/chat")
        assert page.status_code == 303
        assert page.headers["location"] == "/admin/login?next=%2Fadmin%2Fflags%2Fchat"
