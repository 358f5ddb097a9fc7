"""The app resolves a path to its route once (``ResolvedRouter``), reads a request's headers
once (``Asked``) and its query without Starlette's multi-dict: the answers are what routing and
reading every request afresh gave."""

from __future__ import annotations

import httpx
import pytest
from starlette.responses import PlainTextResponse
from starlette.routing import Route

from rollout import Rollout
from rollout.admin import create_app
from rollout.admin._routing import MEMO_SIZE, ResolvedRouter

from .api_helpers import BEARER, TOKEN, asgi_client

pytestmark = pytest.mark.anyio

CHECK = "/api/v1/flags/chat/check"


async def test_a_path_asked_again_gets_the_answers_it_got_first() -> None:
    with Rollout() as flags:
        flags.activate("chat")
        flags.activate("a/b")
        async with asgi_client(create_app(flags, token=TOKEN), headers=BEARER) as api:
            for _ in range(3):
                assert (await api.get(CHECK, params={"user": "1"})).json()["active"] is True
                # The same path, another method: 405 naming the methods, not the GET's route.
                refused = await api.delete(CHECK)
                assert refused.status_code == 405
                assert set(refused.headers["allow"].split(", ")) == {"GET", "HEAD"}
                assert (await api.head(CHECK)).status_code == 200
                # One encoded segment is the flag "a/b"; the same characters unencoded are
                # two segments, which no route has.
                encoded = await api.get("/api/v1/flags/a%2Fb/check")
                assert encoded.json()["flag"] == "a/b"
                assert (await api.get("/api/v1/flags/a/b/check")).status_code == 404


async def test_a_route_put_first_after_requests_were_served_is_the_one_reached() -> None:
    async def replacement(_request: object) -> PlainTextResponse:
        return PlainTextResponse("the replacement")

    with Rollout() as flags:
        flags.activate("chat")
        app = create_app(flags, token=TOKEN)
        async with asgi_client(app, headers=BEARER) as api:
            assert (await api.get(CHECK)).json()["active"] is True
            app.router.routes.insert(0, Route(CHECK, replacement))
            assert (await api.get(CHECK)).text == "the replacement"


async def test_what_the_router_remembers_is_bounded() -> None:
    with Rollout() as flags:
        app = create_app(flags, token=TOKEN)
        assert isinstance(app.router, ResolvedRouter)
        async with asgi_client(app, headers=BEARER) as api:
            for i in range(MEMO_SIZE + 50):
                assert (await api.get(f"/api/v1/flags/f{i}/check")).status_code == 200
            assert app.router.remembered == MEMO_SIZE
            # A path too long to be remembered is still answered.
            long = "x" * 255
            assert (await api.get(f"/api/v1/flags/{long}/check")).json()["flag"] == long


async def test_a_header_sent_twice_is_read_as_its_first_value() -> None:
    with Rollout() as flags:
        flags.activate("chat")
        async with asgi_client(create_app(flags, token=TOKEN)) as api:

            async def check(*authorizations: str) -> int:
                headers = [("authorization", a) for a in authorizations]
                return (await api.get(CHECK, headers=httpx.Headers(headers))).status_code

            assert await check(f"Bearer {TOKEN}", "Bearer wrong") == 200
            assert await check("Bearer wrong", f"Bearer {TOKEN}") == 401
    with Rollout() as flags:  # auth off: only loopback Host names are served
        async with asgi_client(create_app(flags)) as api:

            async def host(*names: str) -> int:
                headers = httpx.Headers([("host", name) for name in names])
                return (await api.get("/api/v1/flags", headers=headers)).status_code

            assert await host("127.0.0.1", "evil.example") == 200
            assert await host("evil.example", "127.0.0.1") == 403


async def test_a_query_parameter_sent_twice_is_read_as_its_last_value() -> None:
    with Rollout() as flags:
        flags.activate_user("chat", "b")
        async with asgi_client(create_app(flags, token=TOKEN), headers=BEARER) as api:
            last = (await api.get(f"{CHECK}?user=a&user=b")).json()
            assert (last["user"], last["active"]) == ("b", True)
            first = (await api.get(f"{CHECK}?user=b&user=a")).json()
            assert (first["user"], first["active"]) == ("a", False)
            assert (await api.get(f"{CHECK}?user=%E2%82%AC")).json()["user"] == "€"


@pytest.mark.parametrize(
    "query",
    ["user=42", "user=a&&user=", "user", "=x&user=1", "user=a=b", "user=42&", "user=x;y", "&&"],
)
async def test_a_query_with_nothing_to_decode_is_read_as_one_with_escapes(query: str) -> None:
    # A query without % or + is split directly, not by parse_qsl: each must read as the same
    # query with an escape in a parameter the check does not read (then parse_qsl reads it).
    with Rollout() as flags:
        flags.activate_user("chat", "a=b")
        flags.activate_user("chat", "x;y")
        async with asgi_client(create_app(flags, token=TOKEN), headers=BEARER) as api:
            plain = await api.get(f"{CHECK}?{query}")
            escaped = await api.get(f"{CHECK}?{query}&unread=%31")
            assert (plain.status_code, plain.json()) == (escaped.status_code, escaped.json())
