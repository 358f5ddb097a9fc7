"""The dashboard's pages (skeleton: the dashboard engineer replaces this)."""

from __future__ import annotations

from typing import TYPE_CHECKING

if TYPE_CHECKING:
    from starlette.routing import BaseRoute

    from .._rollout import Rollout
    from ._auth import Auth


def page_routes(flags: Rollout, auth: Auth) -> list[BaseRoute]:
    return []
