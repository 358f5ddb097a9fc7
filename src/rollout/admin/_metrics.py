"""``GET /metrics`` (skeleton: the operations engineer replaces this)."""

from __future__ import annotations

from typing import TYPE_CHECKING

if TYPE_CHECKING:
    from starlette.routing import BaseRoute

    from .._rollout import Rollout


def metrics_routes(flags: Rollout) -> list[BaseRoute]:
    return []
