"""Who may evaluate: token scopes (``evaluate`` reaches OFREP and the check, nothing else), a
key limited to named flags, and CORS for OFREP only, for the configured origins."""

from __future__ import annotations

import asyncio
from typing import Any

import httpx
import pytest

from rollout import Rollout
from rollout.admin import create_app
from rollout.admin._throttle import Throttle

from .api_helpers import asgi_client, session
from .dashboard_server import serve as dashboard_serve

ADMIN, WEB, NARROW = "admin-secret", "web-secret", "narrow-secret"
TOKENS = {"ops": ADMIN, "web": WEB, "narrow": NARROW}
SCOPES = {"web": "evaluate", "narrow": "evaluate"}
ORIGIN = "http://localhost:3000"
BULK = "/ofrep/v1/evaluate/flags"
CONTEXT = {"context": {"targetingKey": "alice"}}


def app_for(flags: Rollout, **options: Any) -> Any:
    defaults: dict[str, Any] = {
        "tokens": TOKENS,
        "scopes": SCOPES,
        "token_flags": {"narrow": ["chat"]},
    }
    return create_app(flags, **(defaults | options))


def requests(
    calls: list[tuple[str, str, str | None, dict[str, Any]]],
    *,
    unchanged: bool = True,
    **options: Any,
) -> Any:
    """Each (method, path, token, httpx options) against one app: the responses. With
    ``unchanged``, the flags are checked to be as they were."""

    async def run() -> list[httpx.Response]:
        with Rollout() as flags:
            flags.activate("chat")
            flags.activate("beta")
            app = app_for(flags, **options)
            async with asgi_client(app) as http:
                out = []
                for method, path, token, extra in calls:
                    headers = dict(extra.pop("headers", {}))
                    if token is not None:
                        headers["Authorization"] = f"Bearer {token}"
                    out.append(await http.request(method, path, headers=headers, **extra))
                if unchanged:
                    assert flags.get("chat").percentage == 100
                return out

    return asyncio.run(run())


REFUSED_TO_EVALUATE = [
    ("GET", "/api/v1/flags", {}),
    ("GET", "/api/v1/flags/chat", {}),
    ("PUT", "/api/v1/flags/chat/active", {"json": {"active": False}}),
    ("DELETE", "/api/v1/flags/chat", {}),
    ("GET", "/api/v1/flags/chat/explain", {}),
    ("GET", "/api/v1/flags/chat/history", {}),
    ("GET", "/api/v1/openapi.json", {}),
    ("GET", "/metrics", {}),
    ("GET", "/events", {}),
    ("GET", "/", {}),
]


@pytest.mark.parametrize(("method", "path", "extra"), REFUSED_TO_EVALUATE)
def test_an_evaluate_token_can_neither_list_read_nor_change_flags(
    method: str, path: str, extra: dict[str, Any]
) -> None:
    [refused] = requests([(method, path, WEB, dict(extra))])  # and chat is unchanged
    assert refused.status_code == 403
    assert "scope is 'evaluate'" in refused.json()["error"]["message"]
    if path != "/events":  # a stream that an admin opens never ends
        [allowed] = requests([(method, path, ADMIN, dict(extra))], unchanged=False)
        assert allowed.status_code != 403


def test_an_evaluate_token_evaluates_through_ofrep_and_the_check() -> None:
    single, bulk, check = requests(
        [
            ("POST", f"{BULK}/chat", WEB, {"json": CONTEXT}),
            ("POST", BULK, WEB, {"json": CONTEXT}),
            ("GET", "/api/v1/flags/chat/check?user=alice", WEB, {}),
        ]
    )
    assert single.json()["value"] is True
    assert [a["key"] for a in bulk.json()["flags"]] == ["beta", "chat"]
    assert check.json()["active"] is True


def test_a_key_limited_to_named_flags_sees_only_those() -> None:
    bulk, other, other_check, own_check = requests(
        [
            ("POST", BULK, NARROW, {"json": CONTEXT}),
            ("POST", f"{BULK}/beta", NARROW, {"json": CONTEXT}),
            ("GET", "/api/v1/flags/beta/check", NARROW, {}),
            ("GET", "/api/v1/flags/chat/check", NARROW, {}),
        ]
    )
    assert [a["key"] for a in bulk.json()["flags"]] == ["chat"]
    assert (other.status_code, other.json()["errorCode"]) == (404, "FLAG_NOT_FOUND")
    assert other_check.status_code == 403
    assert own_check.json()["active"] is True


def test_a_dashboard_session_opened_with_an_evaluate_token_is_limited_too() -> None:
    async def run() -> int:
        with Rollout() as flags:
            app = app_for(flags)
            async with asgi_client(app) as http:
                headers = session(app.state.auth, "web")
                response = await http.get("/api/v1/flags", headers=headers)
                return response.status_code

    assert asyncio.run(run()) == 403


@pytest.mark.parametrize(
    ("options", "message"),
    [
        ({"scopes": {"nobody": "evaluate"}}, "'nobody' is not a token name"),
        ({"scopes": {"web": "read"}}, "must be one of ['admin', 'evaluate'], got 'read'"),
        ({"token_flags": {"ops": ["chat"]}}, "token 'ops' has scope 'admin'"),
        ({"token_flags": {"narrow": "chat"}}, "must be a list of flag names, got 'chat'"),
        ({"cors_origins": ["http://a.example/path"]}, "got 'http://a.example/path'"),
        ({"cors_origins": ["a.example"]}, "got 'a.example'"),
    ],
)
def test_bad_access_options_are_refused_by_name(options: dict[str, Any], message: str) -> None:
    with Rollout() as flags, pytest.raises((ValueError, TypeError), match=None) as raised:
        app_for(flags, **options)
    assert message in str(raised.value)


# CORS -----------------------------------------------------------------------------------------

PREFLIGHT = {
    "Origin": ORIGIN,
    "Access-Control-Request-Method": "POST",
    "Access-Control-Request-Headers": "authorization, content-type, if-none-match",
}


def test_an_allowed_origin_is_preflighted_and_reads_the_answer_and_its_etag() -> None:
    preflight, answer = requests(
        [
            ("OPTIONS", BULK, None, {"headers": PREFLIGHT}),
            ("POST", BULK, WEB, {"json": CONTEXT, "headers": {"Origin": ORIGIN}}),
        ],
        cors_origins=[ORIGIN],
    )
    assert preflight.status_code == 204
    assert preflight.headers["access-control-allow-origin"] == ORIGIN
    assert "if-none-match" in preflight.headers["access-control-allow-headers"]
    assert "POST" in preflight.headers["access-control-allow-methods"]
    assert answer.status_code == 200
    assert answer.headers["access-control-allow-origin"] == ORIGIN
    assert "ETag" in answer.headers["access-control-expose-headers"]


def test_other_origins_and_other_paths_get_no_cors() -> None:
    elsewhere = {**PREFLIGHT, "Origin": "https://evil.example"}
    foreign, api_preflight, api = requests(
        [
            ("OPTIONS", BULK, None, {"headers": elsewhere}),
            ("OPTIONS", "/api/v1/flags", None, {"headers": PREFLIGHT}),
            ("GET", "/api/v1/flags", ADMIN, {"headers": {"Origin": ORIGIN}}),
        ],
        cors_origins=[ORIGIN],
    )
    assert foreign.status_code == 403
    assert "access-control-allow-origin" not in foreign.headers
    assert "access-control-allow-origin" not in api_preflight.headers
    assert "access-control-allow-origin" not in api.headers


def test_without_cors_origins_no_page_elsewhere_may_read_ofrep() -> None:
    [answer] = requests([("POST", BULK, WEB, {"json": CONTEXT, "headers": {"Origin": ORIGIN}})])
    assert "access-control-allow-origin" not in answer.headers


def test_an_evaluate_token_evaluates_a_flag_whose_name_holds_a_slash() -> None:
    with Rollout() as flags:
        flags.activate("checkout/new-flow")
        flags.activate("checkout/other")
        app = app_for(flags, token_flags={"narrow": ["checkout/new-flow"]})
        with dashboard_serve(app) as url, httpx.Client(base_url=url, timeout=30.0) as http:
            answers = {
                token: http.post(
                    f"{BULK}/{name.replace('/', '%2F')}",
                    json=CONTEXT,
                    headers={"Authorization": f"Bearer {token}"},
                )
                for token, name in [(WEB, "checkout/new-flow"), (NARROW, "checkout/other")]
            }
    assert answers[WEB].status_code == 200
    assert answers[WEB].json()["key"] == "checkout/new-flow"
    assert answers[WEB].json()["value"] is True
    # The flag limit still holds for such names.
    assert answers[NARROW].status_code == 404
    assert answers[NARROW].json()["errorCode"] == "FLAG_NOT_FOUND"


def test_a_browser_key_does_not_exempt_its_holder_from_the_global_throttle() -> None:
    """A right admin token earns its address a pass through the global throttle; a browser
    key, which every visitor has, must not: else each of many addresses could show it once and
    then guess the admin token past the bound on guesses from everywhere."""
    with Rollout() as flags:
        app = app_for(flags)
        # Small numbers: one wrong guess from anywhere fills the global bucket for an hour,
        # and nobody waits in line for it (a 429 at once).
        app.state.auth.throttle = Throttle(global_burst=1, global_interval=3600.0, max_delay=0)
        with dashboard_serve(app) as url:

            def client(address: str, token: str) -> httpx.Client:
                return httpx.Client(
                    base_url=url,
                    headers={"Authorization": f"Bearer {token}"},
                    timeout=30.0,
                    transport=httpx.HTTPTransport(local_address=address),
                )

            with (
                client("127.0.0.6", WEB) as visitor,
                client("127.0.0.7", ADMIN) as operator,
                client("127.0.0.5", "wrong-guess") as guesser,
            ):
                assert visitor.post(BULK, json=CONTEXT).status_code == 200
                assert operator.get("/api/v1/flags").status_code == 200
                assert guesser.get("/api/v1/flags").status_code == 401  # the bucket is full
                # The operator, known by a right admin token, is not held back by it...
                assert operator.get("/api/v1/flags").status_code == 200
                # ...but the visitor's guess at the admin token waits its turn like any other.
                guess = visitor.get("/api/v1/flags", headers={"Authorization": "Bearer nope"})
                assert guess.status_code == 429
                assert guess.json()["error"]["code"] == "too_many_requests"


def test_an_evaluate_token_under_a_mount_point_reaches_only_checks() -> None:
    # Mounted, the scope is judged on the path the router matches: a name that ends in
    # "%2Fcheck" is a flag's record (admin only), not a check of the name before it.
    from starlette.applications import Starlette
    from starlette.routing import Mount

    from .api_helpers import served

    with Rollout() as flags:
        flags.activate_percentage("chat", 100)
        flags.activate_user("chat/check", "someone")
        outer = Starlette(routes=[Mount("/admin", app=app_for(flags))])
        with served(outer) as url, httpx.Client(base_url=url) as client:
            narrow = {"Authorization": f"Bearer {NARROW}"}
            check = client.get("/admin/api/v1/flags/chat/check?user=1", headers=narrow)
            assert (check.status_code, check.json()["active"]) == (200, True)
            record = client.get("/admin/api/v1/flags/chat%2Fcheck", headers=narrow)
            assert record.status_code == 403, record.text
            assert "someone" not in record.text
            admin = client.get(
                "/admin/api/v1/flags/chat%2Fcheck", headers={"Authorization": f"Bearer {ADMIN}"}
            )
            assert admin.status_code == 200
            assert "someone" in admin.text
