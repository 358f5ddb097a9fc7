"""Auth on every route: each (method, path) of the OpenAPI document, requested every way a
client can get it wrong, answers 401/403 and changes nothing; the right ways work."""

from __future__ import annotations

from collections.abc import AsyncIterator
from dataclasses import dataclass

import httpx
import pytest
from starlette.applications import Starlette

from rollout import Rollout
from rollout.admin import Auth, create_app
from rollout.admin._gate import HOSTS_REMEMBERED
from rollout.admin._openapi import openapi_document

from .api_helpers import (
    LOCAL,
    READ_ONLY,
    actors,
    asgi_client,
    body_for,
    csrf_token,
    fill,
    hold_from_the_future,
    latest_actor,
    operations,
    session,
    with_a_definition,
)

pytestmark = pytest.mark.anyio

TOKENS = {"alice": "alice-secret", "ci": "ci-secret"}
DOCUMENT = openapi_document("/api/v1", secured=True)
OPERATIONS = operations(DOCUMENT)
UNSAFE = [(method, path) for method, path in OPERATIONS if method != "GET"]
READS = [(method, path) for method, path in OPERATIONS if method == "GET"]


@dataclass
class Admin:
    flags: Rollout
    app: Starlette
    auth: Auth
    client: httpx.AsyncClient

    async def request(
        self, method: str, path: str, headers: dict[str, str] | None = None
    ) -> httpx.Response:
        body = body_for(DOCUMENT, method, path)
        return await self.client.request(method, fill(path), json=body, headers=headers)


@pytest.fixture
async def admin(flags: Rollout) -> AsyncIterator[Admin]:
    hold_from_the_future(with_a_definition(flags))
    app = create_app(flags, tokens=TOKENS, session_secret="sessions")
    async with asgi_client(app) as client:
        yield Admin(flags, app, app.state.auth, client)


async def test_the_table_is_the_document_the_app_serves(admin: Admin) -> None:
    bearer = {"Authorization": "Bearer ci-secret"}
    served = (await admin.client.get("/api/v1/openapi.json", headers=bearer)).json()
    assert operations(served) == OPERATIONS
    # 21, the quarantine: list, accept, drop; explain; a flag's users and exclusions by pages;
    # targeting as data: a definition (read, write), targeting (set, remove), an evaluation,
    # named rules (list, read, write, remove, history), flagd files (export, import)
    assert len(OPERATIONS) == 39


@pytest.mark.parametrize(("method", "path"), OPERATIONS)
@pytest.mark.parametrize(
    "authorization",
    [None, "Bearer wrong", "Bearer ", "Bearer alice-secretX", "Basic YWxpY2U6YWxpY2Utc2VjcmV0"],
)
async def test_without_the_right_token_every_route_is_401_and_nothing_changes(
    admin: Admin, method: str, path: str, authorization: str | None
) -> None:
    before = admin.flags.export()
    headers = {"Authorization": authorization} if authorization is not None else {}
    response = await admin.request(method, path, headers)
    assert response.status_code == 401
    assert response.json()["error"]["code"] == "unauthorized"
    assert response.headers["www-authenticate"] == 'Bearer realm="rollout"'
    assert admin.flags.export() == before


@pytest.mark.parametrize(("method", "path"), OPERATIONS)
async def test_a_bearer_token_opens_every_route_and_needs_no_csrf_header(
    admin: Admin, method: str, path: str
) -> None:
    # Even with a foreign Origin: a page on another site cannot know the token to send.
    headers = {"Authorization": "Bearer ci-secret", "Origin": "https://evil.example"}
    response = await admin.request(method, path, headers)
    assert response.status_code == 200, response.text
    if method != "GET" and (method, path) not in READ_ONLY:
        assert latest_actor(admin.flags, path) == "ci"


@pytest.mark.parametrize(("method", "path"), OPERATIONS)
async def test_a_session_cookie_with_its_csrf_token_opens_every_route(
    admin: Admin, method: str, path: str
) -> None:
    headers = {
        **session(admin.auth, "alice"),
        "Origin": LOCAL,
        "Sec-Fetch-Site": "same-origin",
    }
    response = await admin.request(method, path, headers)
    assert response.status_code == 200, response.text
    if method != "GET" and (method, path) not in READ_ONLY:
        assert latest_actor(admin.flags, path) == "alice"


@pytest.mark.parametrize(("method", "path"), READS)
async def test_reads_with_a_session_cookie_need_no_csrf_header(
    admin: Admin, method: str, path: str
) -> None:
    cookie = session(admin.auth, "alice")["Cookie"]
    assert (await admin.request(method, path, {"Cookie": cookie})).status_code == 200


def _cross_site(auth: Auth) -> dict[str, dict[str, str]]:
    alice, ci = session(auth, "alice"), session(auth, "ci")
    return {
        "no CSRF header": {"Cookie": alice["Cookie"]},
        "a wrong CSRF token": {"Cookie": alice["Cookie"], "X-CSRF-Token": "0" * 64},
        "another session's CSRF token": {
            "Cookie": alice["Cookie"],
            "X-CSRF-Token": ci["X-CSRF-Token"],
        },
        "a foreign Origin": {**alice, "Origin": "https://evil.example"},
        "another port's Origin": {**alice, "Origin": "http://127.0.0.1:8081"},
        "a null Origin": {**alice, "Origin": "null"},
        "Sec-Fetch-Site cross-site": {**alice, "Sec-Fetch-Site": "cross-site"},
    }  # fmt: skip


CROSS_SITE = list(_cross_site(Auth(tokens=TOKENS)))


@pytest.mark.parametrize(("method", "path"), UNSAFE)
@pytest.mark.parametrize("how", CROSS_SITE)
async def test_cross_site_changes_with_a_session_cookie_are_403_and_change_nothing(
    admin: Admin, method: str, path: str, how: str
) -> None:
    before = admin.flags.export()
    response = await admin.request(method, path, _cross_site(admin.auth)[how])
    assert response.status_code == 403, response.text
    assert response.json()["error"]["code"] == "forbidden"
    assert admin.flags.export() == before


async def test_a_session_is_refused_once_tampered_with_ended_or_shown_to_another_app(
    admin: Admin, flags: Rollout
) -> None:
    good = admin.auth.session_cookie("alice")
    ended = admin.auth.session_cookie("alice")
    admin.auth.sessions.end(ended)
    # Sessions live in the app that made them: the same tokens and secret do not share them.
    same = create_app(flags, tokens=TOKENS, session_secret="sessions")
    changed = good[:-1] + ("A" if good[-1] != "A" else "B")
    refused = [
        changed,
        good + "A",
        ended,
        same.state.auth.session_cookie("alice"),
        "",
        "a.b",
        "é" * 43,
    ]
    for cookie in refused:
        response = await admin.client.get(
            "/api/v1/flags", headers={b"Cookie": f"rollout_session={cookie}".encode()}
        )
        assert response.status_code == 401, cookie
    assert admin.auth.check_session(good) == "alice"
    assert same.state.auth.check_session(good) is None
    # A wrong bearer token is not rescued by a good cookie.
    headers = {"Authorization": "Bearer nope", "Cookie": f"rollout_session={good}"}
    assert (await admin.client.get("/api/v1/flags", headers=headers)).status_code == 401


# Pages, /metrics, /events and the public paths ------------------------------------------------


async def test_pages_without_a_session_go_to_the_login_page(admin: Admin) -> None:
    for path, login in [
        ("/", "/login?next=%2F"),
        ("/flags/chat", "/login?next=%2Fflags%2Fchat"),
        ("/?q=ch&x=1", "/login?next=%2F%3Fq%3Dch%26x%3D1"),
    ]:
        response = await admin.client.get(path)
        assert response.status_code == 303, path
        assert response.headers["location"] == login


@pytest.mark.parametrize(
    ("method", "path"), [("GET", "/metrics"), ("GET", "/events"), ("POST", "/logout")]
)
async def test_machine_paths_and_unsafe_methods_without_credentials_are_401(
    admin: Admin, method: str, path: str
) -> None:
    response = await admin.client.request(method, path)
    assert response.status_code == 401
    assert response.json()["error"]["code"] == "unauthorized"


@pytest.mark.parametrize("path", ["/healthz", "/livez", "/readyz", "/login", "/static/app.css"])
async def test_public_paths_need_no_credentials(admin: Admin, path: str) -> None:
    response = await admin.client.get(path)
    assert response.status_code not in (401, 303, 403)


async def test_the_login_form_refuses_a_post_from_another_site(admin: Admin) -> None:
    form = {"token": "alice-secret", "next": "/"}
    foreign = await admin.client.post(
        "/login", data=form, headers={"Origin": "https://evil.example"}
    )
    assert foreign.status_code == 403
    cross = await admin.client.post("/login", data=form, headers={"Sec-Fetch-Site": "cross-site"})
    assert cross.status_code == 403
    # Same origin: up to the login page (no CSRF header: a plain form cannot send one).
    own = await admin.client.post("/login", data=form, headers={"Origin": LOCAL})
    assert own.status_code not in (401, 403)


# Auth off: loopback only, and changes still need the CSRF token --------------------------------


@pytest.fixture
async def open_app(flags: Rollout) -> Starlette:
    with_a_definition(flags)
    return create_app(flags)


@pytest.mark.parametrize(
    "base_url",
    [
        "http://127.0.0.1:8080",
        "http://localhost",
        "http://localhost:8080",
        "http://[::1]:8080",
        "http://127.0.0.2",
        "http://flags.localhost:8080",
    ],
)
async def test_auth_off_serves_loopback_host_names(open_app: Starlette, base_url: str) -> None:
    async with asgi_client(open_app, base_url=base_url) as client:
        assert (await client.get("/api/v1/flags/chat")).status_code == 200
        assert (await client.get("/healthz")).status_code == 200


@pytest.mark.parametrize(
    "base_url",
    [
        "http://evil.example",
        "http://evil.example:8080",
        "http://10.0.0.5:8080",
        "http://testserver",
    ],
)
async def test_auth_off_refuses_other_host_names_against_dns_rebinding(
    open_app: Starlette, flags: Rollout, base_url: str
) -> None:
    before = flags.export()
    async with asgi_client(open_app, base_url=base_url) as client:
        for method, path in OPERATIONS:
            body = body_for(DOCUMENT, method, path)
            headers = {"X-CSRF-Token": _open_csrf(open_app)}
            response = await client.request(method, fill(path), json=body, headers=headers)
            assert response.status_code == 403, (method, path)
            assert "is not served here" in response.json()["error"]["message"]
        assert (await client.get("/healthz")).status_code == 403
    assert flags.export() == before


def _open_csrf(app: Starlette) -> str:
    auth: Auth = app.state.auth
    return csrf_token(auth)


async def test_auth_off_changes_need_the_csrf_token_and_record_the_client(
    open_app: Starlette, flags: Rollout
) -> None:
    before = flags.export()
    async with asgi_client(open_app) as client:
        for method, path in UNSAFE:
            response = await client.request(
                method, fill(path), json=body_for(DOCUMENT, method, path)
            )
            assert response.status_code == 403, (method, path)
        assert flags.export() == before
        token = {"X-CSRF-Token": _open_csrf(open_app)}
        response = await client.put(
            "/api/v1/flags/chat/percentage", json={"percentage": 9}, headers=token
        )
        assert response.status_code == 200
        assert flags.get("chat").percentage == 9.0
        # No token, no name: the client's address tells one person's changes from another's.
        assert actors(flags, "chat")[0] == "anonymous@127.0.0.1"
        # Reads need nothing.
        assert (await client.get("/api/v1/flags")).status_code == 200
        assert (await client.get("/")).status_code != 303


@pytest.mark.parametrize(
    ("token", "host", "allowed"),
    [
        (None, "flags.internal", True),
        (None, "a.corp.example", True),
        (None, "corp.example", False),
        (None, "evil.example", False),
        (None, "localhost", True),
        ("t", "evil.example", False),
        ("t", "flags.internal", True),
        ("t", "127.0.0.1", True),
    ],
)
async def test_allowed_hosts_widen_auth_off_and_narrow_auth_on(
    flags: Rollout, token: str | None, host: str, allowed: bool
) -> None:
    app = create_app(flags, token=token, allowed_hosts=["flags.internal", "*.corp.example"])
    async with asgi_client(app, base_url=f"http://{host}") as client:
        response = await client.get("/api/v1/groups", headers={"Authorization": "Bearer t"})
    assert response.status_code == (200 if allowed else 403)


async def test_auth_on_serves_any_host_name_without_allowed_hosts(flags: Rollout) -> None:
    app = create_app(flags, token="t")
    async with asgi_client(app, base_url="http://flags.example.com") as client:
        response = await client.get("/api/v1/groups", headers={"Authorization": "Bearer t"})
    assert response.status_code == 200


# Auth itself -------------------------------------------------------------------------------------


def test_tokens_are_checked_by_name() -> None:
    auth = Auth(token="one", tokens={"ci": "two"})
    assert auth.enabled
    assert auth.names == ["admin", "ci"]
    assert auth.check_token("one") == "admin"
    assert auth.check_token("two") == "ci"
    assert auth.check_token("on") is None
    assert auth.check_token("") is None
    assert auth.check_token("héllo") is None
    assert not Auth().enabled


@pytest.mark.parametrize(
    ("token", "tokens", "error"),
    [
        ("", None, "token 'admin' must be a non-empty str"),
        ("a b", None, "token 'admin' must not contain spaces"),
        (None, {"ci": "x\n"}, "token 'ci' must not contain spaces"),
        ("x", {"admin": "y"}, "the name 'admin' is given twice"),
        (None, {"a": "same", "b": "same"}, "two names share one secret"),
        (None, {"": "x"}, "a name must be a non-empty printable str"),
    ],
)
def test_bad_tokens_are_refused_by_name(
    token: str | None, tokens: dict[str, str] | None, error: str
) -> None:
    with pytest.raises(ValueError, match=error):
        Auth(token=token, tokens=tokens)


def test_a_session_can_only_be_made_for_a_token_name() -> None:
    with pytest.raises(ValueError, match=r"name must be one of the token names \['admin'\]"):
        Auth(token="x").session_cookie("bob")


async def test_host_verdicts_stay_right_when_remembered_and_when_forgotten(
    open_app: Starlette,
) -> None:
    # The middleware keeps each Host header's verdict: asked again, and after more distinct
    # names than it keeps (it then empties), a refused name stays refused and a loopback one
    # served, with the refusal naming the host.
    async def status(client: httpx.AsyncClient, host: str) -> int:
        response = await client.get("/healthz", headers={"Host": host})
        if response.status_code == 403:
            assert f"{host.partition(':')[0]!r} is not served here" in response.text
        return response.status_code

    async with asgi_client(open_app) as client:
        for _ in range(2):
            assert await status(client, "evil.example") == 403
            assert await status(client, "127.0.0.1:8080") == 200
        for i in range(HOSTS_REMEMBERED + 10):
            assert await status(client, f"h{i}.example") == 403
        assert await status(client, "localhost:8080") == 200
        assert await status(client, "evil.example") == 403
        assert await status(client, "127.0.0.1:8080") == 200
