"""Bad input: a 4xx whose JSON body names the field at fault, and nothing written."""

from __future__ import annotations

from collections.abc import AsyncIterator
from typing import Any

import httpx
import pytest

from rollout import Rollout
from rollout.admin import create_app

from .api_helpers import BEARER, TOKEN, asgi_client, seeded

pytestmark = pytest.mark.anyio

MAX_BODY = 2_000


@pytest.fixture
async def api(flags: Rollout) -> AsyncIterator[httpx.AsyncClient]:
    seeded(flags)
    app = create_app(flags, token=TOKEN, max_body=MAX_BODY)
    async with asgi_client(app, headers=BEARER) as client:
        yield client


JSON = {"Content-Type": "application/json"}
P = "/api/v1/flags/chat"

# (method, path, raw body or None, status, code, field)
CASES: list[tuple[str, str, str | None, int, str, str | None]] = [
    # percentage out of range, and of the wrong type
    ("PUT", f"{P}/percentage", '{"percentage": 150}', 422, "invalid", "percentage"),
    ("PUT", f"{P}/percentage", '{"percentage": -0.5}', 422, "invalid", "percentage"),
    ("PUT", f"{P}/percentage", '{"percentage": 1e400}', 422, "invalid", "percentage"),
    ("PUT", f"{P}/percentage", '{"percentage": ' + "9" * 400 + "}", 422, "invalid", "percentage"),
    ("PUT", f"{P}/percentage", '{"percentage": "50"}', 422, "invalid", "percentage"),
    ("PUT", f"{P}/percentage", '{"percentage": true}', 422, "invalid", "percentage"),
    ("PUT", f"{P}/percentage", '{"percentage": null}', 422, "invalid", "percentage"),
    ("PUT", f"{P}/percentage_of_time", '{"percentage": 101}', 422, "invalid", "percentage"),
    # missing and unknown fields, a body that is not an object
    ("PUT", f"{P}/percentage", "{}", 422, "invalid", "percentage"),
    ("PUT", f"{P}/percentage", '{"percentage": 5, "pct": 5}', 422, "invalid", "pct"),
    ("PUT", f"{P}/percentage", "[50]", 422, "invalid", None),
    ("PUT", f"{P}/active", '{"active": "yes"}', 422, "invalid", "active"),
    ("PUT", f"{P}/active", '{"active": 1}', 422, "invalid", "active"),
    # users: a list of non-empty ids; the last item bad means none of them is written
    ("POST", f"{P}/users", '{"users": "u9"}', 422, "invalid", "users"),
    ("POST", f"{P}/users", '{"users": []}', 422, "invalid", "users"),
    ("POST", f"{P}/users", '{"users": ["u8", "u9", ""]}', 422, "invalid", "users"),
    ("POST", f"{P}/users", '{"users": ["u8", true]}', 422, "invalid", "users"),
    ("POST", f"{P}/users", '{"users": ["u8", {"id": 1}]}', 422, "invalid", "users"),
    ("PUT", f"{P}/users", '{"users": ["u8", null]}', 422, "invalid", "users"),
    ("POST", f"{P}/excluded_users", '{"users": [1.5]}', 422, "invalid", "users"),
    # groups and data
    ("POST", f"{P}/groups", '{"group": ""}', 422, "invalid", "group"),
    ("POST", f"{P}/groups", '{"group": 5}', 422, "invalid", "group"),
    ("POST", f"{P}/groups", '{"group": "a\\u0000b"}', 422, "invalid", "group"),
    ("PUT", f"{P}/data", '{"data": []}', 422, "invalid", "data"),
    ("PUT", f"{P}/data", '{"data": {}}', 422, "invalid", "data"),
    ("PUT", f"{P}/data", '{"data": {"": 1}}', 422, "invalid", "data"),
    ("PUT", f"{P}/data", '{"data": {"ok": 1, "bad\\n": 2}}', 422, "invalid", "data"),
    ("PUT", f"{P}/data", '{"data": {"huge": 1e999}}', 422, "invalid", "data"),
    ("PUT", f"{P}/data", '{"data": {"deep": ' + "[" * 40 + "]" * 40 + "}}", 422, "invalid", "data"),
    # bad flag and group names in the path
    ("PUT", "/api/v1/flags/a%01b/percentage", '{"percentage": 5}', 422, "invalid", "name"),
    ("PUT", f"/api/v1/flags/{'n' * 256}/percentage", '{"percentage": 5}', 422, "invalid", "name"),
    ("GET", "/api/v1/flags/%7F", None, 422, "invalid", "name"),
    ("PUT", "/api/v1/flags/%2E%2E/active", '{"active": true}', 422, "invalid", "name"),
    ("DELETE", f"{P}/groups/tab%09bed", None, 422, "invalid", "group"),
    # query parameters
    ("GET", f"{P}/history?limit=-1", None, 422, "invalid", "limit"),
    ("GET", f"{P}/history?limit=ten", None, 422, "invalid", "limit"),
    ("GET", f"{P}/check?user=", None, 422, "invalid", "user"),
    # malformed JSON
    ("PUT", f"{P}/percentage", '{"percentage": ', 400, "malformed_json", None),
    ("PUT", f"{P}/percentage", '{"percentage": NaN}', 400, "malformed_json", None),
    ("PUT", f"{P}/percentage", "", 400, "malformed_json", None),
    ("PUT", f"{P}/percentage", "[" * 100_000 + "]" * 100_000, 413, "too_large", None),
    # too large
    ("POST", f"{P}/users", '{"users": ["' + "u" * MAX_BODY + '"]}', 413, "too_large", None),
    # removing from a flag that does not exist does not create it
    ("POST", "/api/v1/flags/nope/users/remove", '{"users": ["u1"]}', 404, "not_found", "name"),
    (
        "POST",
        "/api/v1/flags/nope/excluded_users/remove",
        '{"users": [1]}',
        404,
        "not_found",
        "name",
    ),
    ("DELETE", "/api/v1/flags/nope/groups/admins", None, 404, "not_found", "name"),
    ("DELETE", "/api/v1/flags/nope/data", None, 404, "not_found", "name"),
    ("DELETE", "/api/v1/flags/nope", None, 404, "not_found", "name"),
]


Case = tuple[str, str, str | None, int, str, str | None]


@pytest.mark.parametrize("case", CASES, ids=[f"{c[0]} {c[1][:60]} {c[5]}" for c in CASES])
async def test_bad_input_is_named_and_changes_nothing(
    api: httpx.AsyncClient, flags: Rollout, case: Case
) -> None:
    method, path, body, status, code, field = case
    before = flags.export()
    headers = JSON if body is not None else {}
    response = await api.request(method, path, content=body, headers=headers)
    assert response.status_code == status, response.text
    error: dict[str, Any] = response.json()["error"]
    assert (error["code"], error["field"]) == (code, field), error
    assert error["message"]
    assert flags.export() == before
    assert flags.features() == ["chat", "signup"]


async def test_messages_say_what_is_wrong(api: httpx.AsyncClient) -> None:
    async def message(path: str, body: str) -> str:
        response = await api.put(f"{P}/{path}", content=body, headers=JSON)
        return str(response.json()["error"]["message"])

    assert await message("percentage", '{"percentage": 150}') == (
        "percentage must be a number from 0 to 100, got 150"
    )
    assert await message("percentage", '{"percentage": 5, "pct": 5}') == (
        "unknown field 'pct'; expected ['percentage', 'reason']"
    )
    assert await message("percentage", "{}") == "percentage is required"
    assert (await message("percentage", "{")).startswith("the body is not valid JSON: ")
    assert await message("users", '{"users": ["a", ""]}') == (
        "users[1] must be a non-empty string or an integer, got ''"
    )


@pytest.mark.parametrize(
    "content_type", [None, "text/plain", "application/x-www-form-urlencoded", "multipart/form-data"]
)
async def test_a_body_not_sent_as_json_is_415(
    api: httpx.AsyncClient, flags: Rollout, content_type: str | None
) -> None:
    before = flags.export()
    headers = {"Content-Type": content_type} if content_type else {}
    response = await api.put(f"{P}/percentage", content=b'{"percentage": 5}', headers=headers)
    assert response.status_code == 415
    assert response.json()["error"]["code"] == "unsupported_media_type"
    assert flags.export() == before


@pytest.mark.parametrize("content_type", ["application/json; charset=utf-8", "application/x+json"])
async def test_json_media_types_with_parameters_or_suffixes_are_accepted(
    api: httpx.AsyncClient, content_type: str
) -> None:
    response = await api.put(
        f"{P}/percentage", content=b'{"percentage": 5}', headers={"Content-Type": content_type}
    )
    assert response.status_code == 200


async def test_a_streamed_body_without_a_length_is_cut_at_the_limit(
    api: httpx.AsyncClient, flags: Rollout
) -> None:
    chunks_sent = 0

    async def body() -> AsyncIterator[bytes]:
        nonlocal chunks_sent
        yield b'{"users": ["'
        for _ in range(100):
            chunks_sent += 1
            yield b"u" * 500
        yield b'"]}'

    before = flags.export()
    response = await api.post(f"{P}/users", content=body(), headers=JSON)
    assert "content-length" not in response.request.headers
    assert response.status_code == 413
    assert response.json()["error"]["code"] == "too_large"
    assert flags.export() == before


async def test_a_content_length_over_the_limit_is_refused_before_reading(
    api: httpx.AsyncClient, flags: Rollout
) -> None:
    before = flags.export()
    headers = {**JSON, "Content-Length": str(MAX_BODY + 1)}
    response = await api.post(f"{P}/users", content=b"x" * (MAX_BODY + 1), headers=headers)
    assert response.status_code == 413
    assert flags.export() == before


async def test_a_body_at_the_limit_is_accepted(api: httpx.AsyncClient, flags: Rollout) -> None:
    prefix, suffix = b'{"users": ["', b'"]}'
    user = "u" * (MAX_BODY - len(prefix) - len(suffix))
    response = await api.post(f"{P}/users", content=prefix + user.encode() + suffix, headers=JSON)
    assert response.status_code == 200
    assert user in flags.get("chat").users


async def test_json_nested_deeper_than_python_can_parse_is_malformed(flags: Rollout) -> None:
    seeded(flags)
    before = flags.export()
    async with asgi_client(create_app(flags, token=TOKEN), headers=BEARER) as api:
        body = '{"percentage": ' + "[" * 100_000 + "]" * 100_000 + "}"
        response = await api.put(f"{P}/percentage", content=body, headers=JSON)
    assert response.status_code == 400
    assert response.json()["error"] == {
        "code": "malformed_json",
        "field": None,
        "message": "the body is nested too deeply",
    }
    assert flags.export() == before


def test_create_app_checks_its_own_arguments(flags: Rollout) -> None:
    with pytest.raises(TypeError, match=r"flags must be a rollout\.Rollout, got 'x'"):
        create_app("x")  # type: ignore[arg-type]
    with pytest.raises(ValueError, match="max_body must be a positive int"):
        create_app(flags, max_body=0)
    with pytest.raises(ValueError, match="token 'admin' must be a non-empty str"):
        create_app(flags, token="")
