"""Helpers for the admin API tests: an ASGI client, sessions, and the API's own route list."""

from __future__ import annotations

import contextlib
import threading
import time
from collections.abc import AsyncIterator, Iterator
from typing import Any

import httpx
import uvicorn
from starlette.applications import Starlette
from starlette.requests import Request

from rollout import Rollout
from rollout.admin import Auth
from rollout.testing.cluster import free_port

TOKEN = "s3cret"
BEARER = {"Authorization": f"Bearer {TOKEN}"}
LOCAL = "http://127.0.0.1"

#: A valid value for each body field the API has (the document names the fields).
#: Each changes something on ``seeded()``'s chat (a write that changes nothing records no event):
#: "u1" is listed and "x1" excluded, so adding and removing users or exclusions both change it.
VALID = {
    "active": True,
    "percentage": 50,
    "users": ["u1", "x1", 7],
    "group": "staff",
    "data": {"owner": "ops"},
    "key": "user:u1",  # the quarantine's: nothing is held there, so a 404
    "reason": "a test",
    # A flag's definition (flagd's words), its targeting, a named rule, a context, a flagd file.
    "variants": {"blue": "#00f", "red": "#f00"},
    "defaultVariant": "red",
    "targeting": {"if": [{"$ref": "pro"}, "blue", "red"]},
    "state": "ENABLED",
    "metadata": {"owner": "web"},
    "logic": {"in": [{"var": "plan"}, ["pro", "enterprise"]]},
    "context": {"targetingKey": "42", "plan": "pro"},
    "flags": {"chat": {"state": "ENABLED", "variants": {"on": True, "off": False},
                       "defaultVariant": "off"}},
    "$evaluators": {"pro": {"in": [{"var": "plan"}, ["pro", "team"]]}},
    "$schema": "https://flagd.dev/schema/v0/flags.json",
}  # fmt: skip
#: The one operation that is not a GET and writes nothing: an evaluation for a context.
READ_ONLY = frozenset({("POST", "/api/v1/flags/{name}/evaluate")})


@contextlib.asynccontextmanager
async def asgi_client(
    app: Starlette, *, base_url: str = LOCAL, headers: dict[str, str] | None = None
) -> AsyncIterator[httpx.AsyncClient]:
    """The app's lifespan run as a server runs it, and a client speaking ASGI to it."""
    transport = httpx.ASGITransport(app=app)
    async with (
        app.router.lifespan_context(app),
        httpx.AsyncClient(transport=transport, base_url=base_url, headers=headers) as client,
    ):
        yield client


def csrf_token(auth: Auth, cookie: str | None = None) -> str:
    """What ``auth.csrf_token`` gives a page served to a browser holding ``cookie``."""
    headers = [] if cookie is None else [(b"cookie", f"{auth.COOKIE_NAME}={cookie}".encode())]
    return auth.csrf_token(Request({"type": "http", "headers": headers}))


def session(auth: Auth, name: str) -> dict[str, str]:
    """The headers a dashboard page sends for a change: its session cookie and CSRF token."""
    cookie = auth.session_cookie(name)
    return {
        "Cookie": f"{auth.COOKIE_NAME}={cookie}",
        "X-CSRF-Token": csrf_token(auth, cookie),
    }


def operations(document: dict[str, Any]) -> list[tuple[str, str]]:
    """Every (METHOD, full path) of the API the OpenAPI document lists (not the public probes,
    ``/healthz`` and the like, which have their own server URL)."""
    base = document["servers"][0]["url"]
    return sorted(
        (method.upper(), base + path)
        for path, item in document["paths"].items()
        if "servers" not in item
        for method in item
    )


def flag_of(path: str) -> str:
    """The seeded flag an operation's path is filled with: a targeting rule needs variants, so
    it is ``color``'s; every other flag path is ``chat``'s."""
    return "color" if path.endswith("/targeting") else "chat"


def fill(path: str, name: str | None = None, group: str = "admins", rule: str = "pro") -> str:
    name = flag_of(path) if name is None else name
    return path.replace("{name}", name).replace("{group}", group).replace("{rule}", rule)


def body_for(document: dict[str, Any], method: str, path: str) -> dict[str, Any] | None:
    """A valid body for the operation (``path`` as the document has it, prefix included)."""
    relative = path.removeprefix(document["servers"][0]["url"])
    operation = document["paths"][relative][method.lower()]
    if "requestBody" not in operation:
        return None
    schema = operation["requestBody"]["content"]["application/json"]["schema"]
    return {field: VALID[field] for field in schema["properties"]}


def seeded(flags: Rollout) -> Rollout:
    """``chat`` with something in every part, so every change has something to change."""
    flags.activate_percentage("chat", 20)
    flags.activate_users("chat", ["u1", "u2"])
    flags.exclude_users("chat", ["x1"])
    flags.activate_group("chat", "admins")
    flags.set_feature_data("chat", {"owner": "web"})
    flags.activate("signup")
    flags.define_rule("pro", {"in": [{"var": "plan"}, ["pro"]]})  # not VALID's logic
    return flags


def with_a_definition(flags: Rollout) -> Rollout:
    """``seeded()``, and ``color``: variants and targeting (not VALID's), so that every
    operation, its targeting's set and removal too, has something to change."""
    seeded(flags).define_flag(
        "color",
        {"blue": "#00f", "red": "#f00"},
        default_variant="red",
        targeting={"if": [{"==": [{"var": "plan"}, "pro"]}, "blue", None]},
    )
    return flags


def hold_from_the_future(flags: Rollout) -> Rollout:
    """``chat``'s ``user:u1`` (and ``exists``) held in the quarantine: written by a replica whose
    clock runs an hour ahead, merged in. So accept and drop have something to resolve."""
    with Rollout(clock=lambda: int(time.time() * 1000) + 3_600_000) as ahead:
        ahead.activate_users("chat", ["u1"])
        flags.merge(ahead.export())
    assert flags.quarantined("chat"), "the merge must be held, not applied"
    return flags


def actors(flags: Rollout, name: str) -> list[str | None]:
    return [event.actor for event in flags.history(name)]


def latest_actor(flags: Rollout, path: str) -> str | None:
    """Who made the newest change an operation on ``path`` (as the document has it) recorded:
    a named rule's, in the rules' history; a flag's, in that flag's."""
    if path.startswith("/api/v1/rules/"):
        return flags.rule_history(1)[0].actor
    return actors(flags, flag_of(path))[0]


@contextlib.contextmanager
def served(app: Starlette) -> Iterator[str]:
    """``app`` under a real uvicorn server on a loopback port, in a thread; yields its URL."""
    port = free_port()
    config = uvicorn.Config(
        app, host="127.0.0.1", port=port, log_level="warning", ws="none", lifespan="on"
    )
    server = uvicorn.Server(config)
    thread = threading.Thread(target=server.run, name=f"uvicorn:{port}", daemon=True)
    thread.start()
    try:
        url = f"http://127.0.0.1:{port}"
        # Started when it listens; a thread that ended first failed to start.
        while not server.started:
            if not thread.is_alive():
                raise AssertionError("uvicorn did not start (see the log above)")
            thread.join(0.02)
        yield url
    finally:
        server.should_exit = True
        thread.join(30)
        assert not thread.is_alive(), "uvicorn did not stop"
