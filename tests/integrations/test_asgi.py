"""rollout.integrations.asgi: the FastAPI example under uvicorn, and the glue in-process."""

# No `from __future__ import annotations`: FastAPI reads the endpoints' annotations at run time,
# and theirs name a local alias (each app's own `Depends(rollout.user_flags)`).

import contextlib
from collections.abc import AsyncIterator, Iterator
from pathlib import Path
from typing import Annotated

import httpx
import pytest
from fastapi import Depends, FastAPI, Request
from fastapi.templating import Jinja2Templates
from jinja2 import DictLoader, Environment
from starlette.applications import Starlette
from starlette.authentication import (
    AuthCredentials,
    AuthenticationBackend,
    BaseUser,
    SimpleUser,
)
from starlette.middleware.authentication import AuthenticationMiddleware
from starlette.requests import HTTPConnection
from starlette.responses import PlainTextResponse
from starlette.routing import Route

from rollout import Rollout, StoreError
from rollout.integrations import UserFlags
from rollout.integrations.asgi import ASGIRollout
from rollout.testing.cluster import free_port

from .example_servers import EXAMPLES, Server, check_the_example, example_env, python, seed, serve

# The example, as a real server ------------------------------------------------------------------


@pytest.fixture
def fastapi_example(tmp_path: Path) -> Iterator[Server]:
    env, store, peer = example_env(tmp_path)
    seed(store)
    port = free_port()
    command = python(
        "-m", "uvicorn", "fastapi_app:app", "--app-dir", str(EXAMPLES),
        "--host", "127.0.0.1", "--port", str(port),
    )  # fmt: skip
    log = tmp_path / "uvicorn.log"
    with serve(
        command, port=port, env=env, cwd=tmp_path, log_path=log, store=store, peer=peer
    ) as s:
        yield s


def test_the_fastapi_example_follows_flag_changes_per_user(fastapi_example: Server) -> None:
    check_the_example(fastapi_example)


# In-process: the real app over ASGI ------------------------------------------------------------
# (Not Starlette's TestClient: in Starlette 1.10 it warns unless the httpx2 package is installed.)


@contextlib.asynccontextmanager
async def client_for(app: Starlette) -> AsyncIterator[httpx.AsyncClient]:
    """The app's lifespan run as a server runs it, and a client speaking ASGI to the app."""
    transport = httpx.ASGITransport(app=app)
    async with (
        app.router.lifespan_context(app),
        httpx.AsyncClient(transport=transport, base_url="http://test") as client,
    ):
        yield client


class HeaderAuth(AuthenticationBackend):
    """Authenticates whoever the X-User header names, as Starlette's SimpleUser."""

    async def authenticate(self, conn: HTTPConnection) -> tuple[AuthCredentials, BaseUser] | None:
        name = conn.headers.get("x-user")
        return (AuthCredentials(["authenticated"]), SimpleUser(name)) if name else None


def whoami_app(rollout: ASGIRollout, *, auth: bool = False) -> FastAPI:
    """``GET /?flag=x``: ``<user> <on|off>``; the page template shows ``flags["x"]``."""
    app = FastAPI(lifespan=rollout.lifespan)
    if auth:
        app.add_middleware(AuthenticationMiddleware, backend=HeaderAuth())
    templates = Jinja2Templates(
        env=Environment(
            loader=DictLoader(
                {"page.html": '{{ flags.user }} {{ flags["x"] }} {{ flags|join(",") }}'}
            ),
            autoescape=True,
        ),
        context_processors=[rollout.template_context],
    )
    flags_dependency = Annotated[UserFlags, Depends(rollout.user_flags)]

    @app.get("/", response_class=PlainTextResponse)
    async def whoami(flags: flags_dependency, flag: str = "x") -> str:
        return f"{flags.user} {'on' if flags.active(flag) else 'off'}"

    @app.get("/page")
    def page(request: Request) -> object:
        return templates.TemplateResponse(request, "page.html")

    @app.get("/both")
    def both(request: Request, flags: flags_dependency) -> object:
        return templates.TemplateResponse(request, "page.html")

    return app


@pytest.mark.anyio
async def test_the_lifespan_opens_the_rollout_at_start_up_and_closes_it_at_shutdown(
    tmp_path: Path,
) -> None:
    rollout = ASGIRollout(f"sqlite:///{tmp_path / 'flags.db'}")
    async with client_for(whoami_app(rollout)) as client:
        flags = rollout.flags
        flags.activate("x")
        assert (await client.get("/")).text == "None on"
        assert rollout.flags is flags  # one Rollout for the whole process
    assert flags.stats()["closed"] is True
    with Rollout(f"sqlite:///{tmp_path / 'flags.db'}") as reopened:
        assert reopened.active("x")


@pytest.mark.anyio
async def test_a_store_that_cannot_be_opened_stops_the_start_up(tmp_path: Path) -> None:
    (tmp_path / "a-directory.db").mkdir()
    rollout = ASGIRollout(f"sqlite:///{tmp_path / 'a-directory.db'}")
    with pytest.raises(StoreError, match="a-directory"):
        async with client_for(whoami_app(rollout)):
            pass


@pytest.mark.anyio
async def test_the_user_resolver_binds_each_request_to_its_user() -> None:
    rollout = ASGIRollout("memory://", user=lambda request: request.headers.get("x-user"))
    rollout.flags.activate_user("x", "alice")
    async with client_for(whoami_app(rollout)) as client:
        assert (await client.get("/", headers={"X-User": "alice"})).text == "alice on"
        assert (await client.get("/", headers={"X-User": "bob"})).text == "bob off"
        assert (await client.get("/")).text == "None off"
        rollout.flags.activate("x")
        assert (await client.get("/")).text == "None on"
        assert (await client.get("/", params={"flag": "unknown"})).text == "None off"


@pytest.mark.anyio
async def test_the_default_resolver_reads_the_authenticated_user_from_the_middleware() -> None:
    rollout = ASGIRollout("memory://", id_user_by="username")
    rollout.flags.activate_user("x", "alice")
    async with client_for(whoami_app(rollout, auth=True)) as client:
        # Starlette's SimpleUser has a username and no id: hence id_user_by="username".
        assert (await client.get("/", headers={"X-User": "alice"})).text.endswith(" on")
        assert (await client.get("/", headers={"X-User": "bob"})).text.endswith(" off")
        assert (await client.get("/")).text == "None off"  # unauthenticated: anonymous


@pytest.mark.anyio
async def test_without_the_authentication_middleware_every_request_is_anonymous() -> None:
    rollout = ASGIRollout("memory://")
    rollout.flags.activate_percentage("x", 100)
    async with client_for(whoami_app(rollout)) as client:
        assert (await client.get("/", headers={"X-User": "alice"})).text == "None on"


@pytest.mark.anyio
async def test_an_async_resolver_is_awaited_once_per_request() -> None:
    calls: list[str] = []

    async def resolve(request: Request) -> str | None:
        calls.append(request.url.path)
        return request.headers.get("x-user")

    rollout = ASGIRollout("memory://", user=resolve)
    rollout.flags.activate_user("x", "alice")
    async with client_for(whoami_app(rollout)) as client:
        assert (await client.get("/", headers={"X-User": "alice"})).text == "alice on"
        # The dependency and the template in one request share one UserFlags.
        assert (await client.get("/both", headers={"X-User": "alice"})).text == "alice True x"
    assert calls == ["/", "/both"]


@pytest.mark.anyio
async def test_templates_see_the_flags_of_the_request_user() -> None:
    rollout = ASGIRollout("memory://", user=lambda request: request.headers.get("x-user"))
    rollout.flags.activate_user("x", "alice")
    rollout.flags.activate("y")
    async with client_for(whoami_app(rollout)) as client:
        assert (await client.get("/page", headers={"X-User": "alice"})).text == "alice True x,y"
        assert (await client.get("/page")).text == "None False y"


@pytest.mark.anyio
async def test_templates_cannot_call_an_async_resolver_and_say_so() -> None:
    async def resolve(request: Request) -> str:
        return "alice"

    rollout = ASGIRollout("memory://", user=resolve)
    async with client_for(whoami_app(rollout)) as client:
        with pytest.raises(TypeError, match="Depends"):
            await client.get("/page")


@pytest.mark.anyio
async def test_a_plain_starlette_app_awaits_user_flags_itself() -> None:
    rollout = ASGIRollout("memory://", user=lambda request: request.query_params.get("user"))
    rollout.flags.activate_user("x", "7")

    async def endpoint(request: Request) -> PlainTextResponse:
        flags = await rollout.user_flags(request)
        return PlainTextResponse(str(flags["x"]))

    app = Starlette(routes=[Route("/", endpoint)], lifespan=rollout.lifespan)
    async with client_for(app) as client:
        assert (await client.get("/", params={"user": 7})).text == "True"
        assert (await client.get("/", params={"user": 8})).text == "False"


def test_bad_arguments_are_refused_when_the_app_is_built() -> None:
    with pytest.raises(TypeError, match="unexpected keyword argument 'lisen'"):
        ASGIRollout("memory://", lisen="127.0.0.1:0")
    with pytest.raises(TypeError, match="user must be a callable"):
        ASGIRollout("memory://", user="alice")  # type: ignore[arg-type]
    with pytest.raises(TypeError, match="store must be a URL string or a Store"):
        ASGIRollout(42)  # type: ignore[arg-type]


def test_without_a_lifespan_the_first_request_opens_it_and_close_closes_it() -> None:
    rollout = ASGIRollout("memory://", defaults={"x": True})
    first = rollout.flags
    assert first.active("x")
    rollout.close()
    assert first.stats()["closed"] is True
    second = rollout.flags
    assert second is not first
    assert second.stats()["closed"] is False
    rollout.close()
