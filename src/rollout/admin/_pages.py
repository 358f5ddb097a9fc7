"""The dashboard: server-rendered pages (Jinja2), sign-in, live updates and static files.

The pages only *show* flags. Every change is made by the page's JavaScript through the JSON API
(``fetch`` with the ``X-CSRF-Token`` header from ``<meta name="csrf-token">``), so the API's
checks, errors and history attribution are the only ones there are. The pages listen to
``/events`` and fetch what changed, so they follow changes made anywhere without reloading.

Routes (all relative to where the app is mounted): ``/`` the flag list, ``/flags/{name}`` a flag
(``?fragment=history`` just its history, ``?fragment=flag`` the page's JSON of the flag: both
for updates), ``/rules`` the named rules, ``/login``, ``/logout``, ``/events``, ``/static/...``.
"""

from __future__ import annotations

import datetime
import hashlib
import json
import urllib.parse
from pathlib import Path
from typing import TYPE_CHECKING, Any

from starlette.middleware.gzip import GZipMiddleware
from starlette.requests import Request
from starlette.responses import HTMLResponse, JSONResponse, RedirectResponse, Response
from starlette.routing import BaseRoute, Mount, Route
from starlette.staticfiles import StaticFiles

from .._core import validate as _validate
from .._core.definition_shapes import rule_shape
from .._core.feature import Feature
from .._core.shapes import summary_shape
from ._auth import client_address
from ._events import MAX_STREAMS, ChangeCount, EventStream, StreamSlots
from ._grants import ADMIN
from ._listing import ListQuery, flag_page, usage
from ._page_views import (
    FIRST_PAGE,
    badge_state,
    description,
    history_lines,
    number,
    page_flag,
    percent,
    state_label,
    summary,
    when,
)
from ._routing import RawRoute
from ._scope import app_path
from ._throttle import retry_after

if TYPE_CHECKING:
    import jinja2

    from .._client.rollout import Rollout
    from ._auth import Auth

__all__ = ["page_routes"]

HERE = Path(__file__).parent
TEMPLATES = HERE / "templates"
STATIC = HERE / "static"

#: A sign-in form is a token and a path: anything bigger is not one.
MAX_FORM_BYTES = 16 * 1024

# The pages run no inline script and never need to be framed: a strict policy costs nothing and
# keeps a toggle from being clicked through an invisible frame (clickjacking).
_PAGE_HEADERS = {
    "Content-Security-Policy": (
        "default-src 'self'; script-src 'self'; style-src 'self'; img-src 'self' data:; "
        "connect-src 'self'; frame-ancestors 'none'; base-uri 'none'; form-action 'self'"
    ),
    "X-Frame-Options": "DENY",
    "X-Content-Type-Options": "nosniff",
    "Referrer-Policy": "same-origin",
    "Cache-Control": "no-store",  # pages carry the CSRF token and the state of the moment
}


def page_routes(
    flags: Rollout,
    auth: Auth,
    max_streams: int | StreamSlots = MAX_STREAMS,
    *,
    require_reason: bool = False,
    count: ChangeCount | None = None,
) -> list[BaseRoute]:
    """The dashboard's routes for ``flags``, protected by ``auth`` (see ``_auth.py``), with at
    most ``max_streams`` event streams open; ``require_reason``: the API refuses changes that
    do not say why, so the flag page asks for a reason before any change."""
    import jinja2  # only a dashboard needs it: importing rollout.admin stays light

    env = jinja2.Environment(
        loader=jinja2.FileSystemLoader(TEMPLATES),
        autoescape=True,
        undefined=jinja2.StrictUndefined,
        trim_blocks=True,
        lstrip_blocks=True,
    )
    versions = _static_versions()
    env.globals["static_url"] = lambda base, name: f"{base}/static/{name}?v={versions[name]}"
    env.filters.update(
        state_label=state_label,
        badge_state=badge_state,
        summary=summary,
        description=description,
        percent=percent,
        number=number,
        when=when,
        # A name as one URL path segment: "/" too is encoded (Jinja's urlencode keeps it), so a
        # name such as "a/../b" is not collapsed by the browser into another flag's page.
        segment=lambda name: urllib.parse.quote(name, safe=""),
        json_text=lambda value: json.dumps(value, indent=2, sort_keys=True, ensure_ascii=False),
    )
    env.globals["require_reason"] = require_reason
    count = count or ChangeCount(flags)  # never started: pages fetch when their stream opens
    pages = _Pages(flags, auth, env, count)
    return [
        Route("/", pages.flag_list, methods=["GET"]),
        Route("/flags/", pages.open_flag, methods=["GET"]),
        # The raw path: /flags/victim%2F is the page of "victim/" (and /flags/a/b that of "a/b").
        RawRoute("/flags/{name:path}", pages.flag_page, methods=["GET"]),
        Route("/rules", pages.rules_page, methods=["GET"]),
        Route("/login", pages.login_form, methods=["GET"]),
        Route("/login", pages.login, methods=["POST"]),
        Route("/logout", pages.logout, methods=["POST"]),
        Route(
            "/events",
            EventStream(flags, auth.session_open, max_streams, count=count, rules=True),
            methods=["GET"],
        ),
        # Scripts and the style sheet are compressed: they are public files with no secret in
        # them. Pages are not: a page holds the session's CSRF token and reflects the search
        # typed in its address, which is what BREACH needs to read a secret from sizes.
        Mount("/static", GZipMiddleware(StaticFiles(directory=STATIC)), name="static"),
    ]


def _static_versions() -> dict[str, str]:
    """A content hash per static file, put in its URL: a new release is never served stale."""
    return {
        path.name: hashlib.sha256(path.read_bytes()).hexdigest()[:12]
        for path in STATIC.iterdir()
        if path.is_file()
    }


class _Pages:
    def __init__(
        self, flags: Rollout, auth: Auth, env: jinja2.Environment, count: ChangeCount
    ) -> None:
        self.flags = flags
        self.auth = auth
        self.env = env
        self.count = count

    def _drawn_at(self) -> int | None:
        """The count of changes, read before a page's data: a change after it is fetched again.
        Counting starts with the app (its lifespan), or here for an app served without one
        (whose subscription then lasts as long as the Rollout, as OFREP's does)."""
        self.count.start()
        return self.count.value

    # Pages ------------------------------------------------------------------------------------

    async def flag_list(self, request: Request) -> Response:
        # Summaries, as GET /api/v1/flags answers: counts, never member lists, so a flag with a
        # million users costs this page a few hundred bytes.
        generation = self._drawn_at()
        every = ListQuery(limit=max(1, len(self.flags.features())))
        summaries = flag_page(self.flags, every, datetime.datetime.now(datetime.UTC)).flags
        blank = summary_shape(Feature(""))  # the row list.js copies for flags that appear later
        return self.render(
            request,
            "list.html",
            flags=summaries,
            blank=blank,
            state=request.query_params.get("state", ""),
            stale=_stale(request),
            q=request.query_params.get("q", ""),
            generation=generation,
        )

    async def open_flag(self, request: Request) -> Response:
        """``/flags/?name=x`` (the list's "new flag" box without JavaScript) → ``/flags/x``."""
        name = request.query_params.get("name", "").strip()
        if not name:
            return RedirectResponse(_base(request) + "/", status_code=303)
        return RedirectResponse(_flag_url(request, name), status_code=303)

    async def flag_page(self, request: Request) -> Response:
        try:
            name = _validate.flag_name(request.path_params["name"])
        except ValueError as exc:
            return self.error(request, 404, "No such flag", str(exc))
        fragment = request.query_params.get("fragment")
        if fragment == "history":
            history = history_lines(self.flags.history(name))
            return self.render(request, "_history.html", history=history)
        generation = self._drawn_at()
        feature = self.flags.get(name)
        # The first page of its users only: the page asks the API for the rest.
        flag = page_flag(feature, usage(self.flags, feature))
        exists = self.flags.exists(name)
        if fragment == "flag":
            return JSONResponse({**flag, "exists": exists}, headers={"Cache-Control": "no-store"})
        history = history_lines(self.flags.history(name))
        rules = self.flags.rules()  # named rules are groups too ("segments")
        groups = sorted({*self.flags.groups(), *feature.groups, *rules})
        return self.render(
            request,
            "flag.html",
            flag=flag,
            exists=exists,
            groups=groups,
            rules=sorted(rules),
            history=history,
            first_page=FIRST_PAGE,
            generation=generation,
        )

    async def rules_page(self, request: Request) -> Response:
        """The named rules (flagd's $evaluators; segments as groups), each with its editor."""
        generation = self._drawn_at()
        rules = [rule_shape(name, logic) for name, logic in sorted(self.flags.rules().items())]
        return self.render(request, "rules.html", rules=rules, generation=generation)

    # Signing in and out -----------------------------------------------------------------------

    async def login_form(self, request: Request) -> Response:
        next_path = _safe_next(request, request.query_params.get("next", ""))
        if not self.auth.enabled:
            return RedirectResponse(next_path, status_code=303)
        return self.render(request, "login.html", next=next_path, error=None, csrf=False)

    async def login(self, request: Request) -> Response:
        # A sign-in posted from another site (login CSRF) never gets here: the app's gate
        # refuses it by its Origin and Sec-Fetch-Site headers.
        form = await _read_form(request)
        if form is None:
            return self.error(request, 400, "Bad request", "Expected a sign-in form.")
        next_path = _safe_next(request, form.get("next", ""))
        if not self.auth.enabled:
            return RedirectResponse(next_path, status_code=303)
        client = client_address(request)
        wait = await self.auth.throttle.turn(client)
        if wait > 0:
            # The token is not checked at all: the answer must say nothing about a guess.
            page = self.render(
                request,
                "login.html",
                status=429,
                next=next_path,
                error="Too many wrong tokens have been tried. Wait "
                f"{retry_after(wait)} seconds, then try again.",
                csrf=False,
            )
            page.headers["Retry-After"] = retry_after(wait)
            return page
        name = self.auth.check_token(form.get("token", ""))
        if name is None:
            self.auth.throttle.failed(client)
            return self.render(
                request,
                "login.html",
                status=401,
                next=next_path,
                error="That token is not valid.",
                csrf=False,
            )
        self.auth.throttle.succeeded(client, trust=self.auth.grant(name).scope == ADMIN)
        response = RedirectResponse(next_path, status_code=303)
        response.set_cookie(
            self.auth.COOKIE_NAME,
            self.auth.session_cookie(name),
            max_age=self.auth.SESSION_MAX_AGE,
            path="/",
            httponly=True,
            samesite="strict",
            secure=request.url.scheme == "https",
        )
        return response

    async def logout(self, request: Request) -> Response:
        """End the session, here and for every copy of its cookie, and delete the cookie (the
        page posts here with fetch and the CSRF header)."""
        self.auth.end_session(request)
        response = RedirectResponse(_base(request) + "/login", status_code=303)
        response.delete_cookie(self.auth.COOKIE_NAME, path="/", httponly=True, samesite="strict")
        return response

    # Rendering --------------------------------------------------------------------------------

    def render(
        self,
        request: Request,
        template: str,
        *,
        status: int = 200,
        csrf: bool = True,
        **context: Any,
    ) -> HTMLResponse:
        html = self.env.get_template(template).render(
            base=_base(request),
            actor=getattr(request.state, "actor", None),
            auth_enabled=self.auth.enabled,
            csrf_token=self.auth.csrf_token(request) if csrf else "",
            **context,
        )
        return HTMLResponse(html, status_code=status, headers=_PAGE_HEADERS)

    def error(self, request: Request, status: int, title: str, message: str) -> HTMLResponse:
        return self.render(
            request, "error.html", status=status, csrf=False, title=title, message=message
        )


def _stale(request: Request) -> str:
    """The list's stale filter from the address (``unchecked_days=30``), as its menu names it."""
    for key in ("unchecked_days", "on_days"):
        value = request.query_params.get(key, "")
        if value:
            return f"{key}={value}"
    return ""


def _base(request: Request) -> str:
    """Where the app is mounted (``""`` at the root): every link starts with it."""
    path: str = request.scope["path"]
    inside = app_path(request.scope)  # this request's path within the app
    if inside != "/" and path.endswith(inside):
        return path[: len(path) - len(inside)].rstrip("/")
    return str(request.scope.get("root_path", "")).rstrip("/")


def _flag_url(request: Request, name: str) -> str:
    return f"{_base(request)}/flags/{urllib.parse.quote(name, safe='')}"


def _safe_next(request: Request, value: str) -> str:
    """Where to go after signing in: a path on this site, never another site (open redirect)."""
    if (
        value.startswith("/")
        and not value.startswith(("//", "/\\"))
        and value.isprintable()
        and "\\" not in value
    ):
        return value
    return _base(request) + "/"


async def _read_form(request: Request) -> dict[str, str] | None:
    """An urlencoded form, read without python-multipart (which the admin extra does not need)."""
    if request.headers.get("content-type", "").split(";")[0].strip() != (
        "application/x-www-form-urlencoded"
    ):
        return None
    body = bytearray()
    async for chunk in request.stream():
        body += chunk
        if len(body) > MAX_FORM_BYTES:
            return None
    try:
        pairs = urllib.parse.parse_qsl(body.decode(), max_num_fields=10)
    except (UnicodeDecodeError, ValueError):
        return None
    return dict(pairs)
