"""FastAPI with Rollout: a page and an endpoint gated by flags for the current user.

    uvicorn fastapi_app:app --app-dir examples
    rollout --store memory:// --peers 127.0.0.1:7946 activate-user new_checkout alice
    curl -H 'X-User: alice' http://127.0.0.1:8000/

The user is whoever the X-User header names (a login proxy in front would set it); without
``user=`` the default reads ``request.user`` from Starlette's AuthenticationMiddleware.
"""

from __future__ import annotations

import os
from typing import Annotated

import jinja2
from fastapi import Depends, FastAPI, HTTPException, Request
from fastapi.responses import HTMLResponse, PlainTextResponse
from fastapi.templating import Jinja2Templates

from rollout.integrations import UserFlags
from rollout.integrations.asgi import ASGIRollout

rollout = ASGIRollout(
    os.environ.get("ROLLOUT_STORE", "sqlite:///flags.db"),
    user=lambda request: request.headers.get("x-user"),
    # Where the CLI and other processes send flag changes (rollout --peers 127.0.0.1:7946).
    listen=os.environ.get("ROLLOUT_LISTEN", "127.0.0.1:7946"),
)
app = FastAPI(lifespan=rollout.lifespan)  # opens the Rollout at start-up, closes it at shutdown
#: The flags bound to the request's user, as a parameter: `flags: CurrentFlags`.
CurrentFlags = Annotated[UserFlags, Depends(rollout.user_flags)]

HOME = """<!doctype html>
<title>Shop</title>
<p>Hello {{ request.headers.get("x-user", "stranger") }}.</p>
{% if flags.active("new_checkout") %}
  <p id="checkout">new checkout</p>
{% else %}
  <p id="checkout">old checkout</p>
{% endif %}
{% if flags["holiday-banner"] %}<p id="banner">holiday sale</p>{% endif %}
"""
templates = Jinja2Templates(
    env=jinja2.Environment(loader=jinja2.DictLoader({"home.html": HOME}), autoescape=True),
    context_processors=[rollout.template_context],  # {{ flags }} in every template
)


@app.get("/", response_class=HTMLResponse)
def home(request: Request) -> HTMLResponse:
    return templates.TemplateResponse(request, "home.html")


@app.get("/beta", response_class=PlainTextResponse)
def beta(flags: CurrentFlags) -> str:
    if not flags.active("beta"):
        raise HTTPException(404, "no beta for you")
    return f"beta for {flags.user}"
