"""``?view=summary``: a flag's read and its writes can answer the list's shape (counts, not
members), so a dashboard turning on a flag with 100,000 users does not download them all."""

from __future__ import annotations

from collections.abc import AsyncIterator
from typing import Any

import httpx
import pytest

from rollout import Rollout
from rollout.admin import create_app

from .api_helpers import BEARER, TOKEN, VALID, asgi_client, fill, seeded

pytestmark = pytest.mark.anyio

#: The summary's keys, as GET /api/v1/flags lists them.
SUMMARY_KEYS = {
    "flag", "state", "percentage", "percentage_of_time", "counts", "data_keys", "description",
    "last_changed", "last_changed_by", "on_since", "last_checked", "checks",
}  # fmt: skip


def answers(op: dict[str, Any]) -> Any:
    """The schema of an operation's 200 answer."""
    return op["responses"]["200"]["content"]["application/json"]["schema"]


@pytest.fixture
async def api(flags: Rollout) -> AsyncIterator[httpx.AsyncClient]:
    seeded(flags)
    async with asgi_client(create_app(flags, tokens={"alice": TOKEN}), headers=BEARER) as c:
        yield c


async def test_turning_on_a_flag_of_100000_users_answers_its_summary(
    api: httpx.AsyncClient, flags: Rollout
) -> None:
    flags.activate_users("large", [str(n) for n in range(100_000)])
    answer = await api.put("/api/v1/flags/large/active?view=summary", json={"active": True})
    assert answer.status_code == 200
    shown = answer.json()
    assert set(shown) == SUMMARY_KEYS
    assert (shown["state"], shown["counts"]["users"]) == ("on", 100_000)
    assert len(answer.content) < 1000
    listed = (await api.get("/api/v1/flags", params={"flag": "large"})).json()["flags"][0]
    assert shown == listed  # the very shape the list shows
    full = await api.put("/api/v1/flags/large/percentage", json={"percentage": 50})
    assert len(full.json()["users"]) == 100_000  # without it: the flag in full, as before


async def test_every_write_answering_a_flag_takes_the_view(api: httpx.AsyncClient) -> None:
    document = (await api.get("/api/v1/openapi.json")).json()
    schemas = document["components"]["schemas"]
    answering = 0
    for path, item in document["paths"].items():
        for method, op in item.items():
            if method == "servers" or answers(op) != {"$ref": "#/components/schemas/FlagView"}:
                continue
            answering += 1
            assert "view" in [p["name"] for p in op["parameters"]], (method, path)
            body = op.get("requestBody", {}).get("content", {}).get("application/json", {})
            fields = body.get("schema", {}).get("properties", {})
            request = api.build_request(
                method.upper(),
                "/api/v1" + fill(path),
                params={"view": "summary"},
                json={k: VALID[k] for k in fields} if fields else None,
            )
            answer = await api.send(request)
            assert answer.status_code == 200, (method, path, answer.text)
            assert set(answer.json()) == SUMMARY_KEYS, (method, path)
    assert answering == 14  # GET /flags/{name} and its 13 writes
    assert schemas["FlagView"] == {
        "oneOf": [
            {"$ref": "#/components/schemas/Flag"},
            {"$ref": "#/components/schemas/FlagSummary"},
        ]
    }


async def test_get_one_flag_as_a_summary(api: httpx.AsyncClient) -> None:
    shown = (await api.get("/api/v1/flags/chat", params={"view": "summary"})).json()
    assert set(shown) == SUMMARY_KEYS
    assert shown["counts"] == {"users": 2, "excluded_users": 1, "groups": 1}
    full = (await api.get("/api/v1/flags/chat", params={"view": "full"})).json()
    assert full["users"] == ["u1", "u2"]
    missing = await api.get("/api/v1/flags/nope", params={"view": "summary"})
    assert missing.status_code == 404


async def test_an_unknown_view_is_refused_and_nothing_is_written(
    api: httpx.AsyncClient, flags: Rollout
) -> None:
    before, changes = flags.get("chat"), len(flags.history("chat", None))
    answer = await api.put("/api/v1/flags/chat/active?view=tiny", json={"active": True})
    assert answer.status_code == 422
    assert answer.json() == {
        "error": {
            "code": "invalid",
            "field": "view",
            "message": "view must be full or summary, got 'tiny'",
        }
    }
    assert flags.get("chat") == before
    assert len(flags.history("chat", None)) == changes
