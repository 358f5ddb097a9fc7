"""``{{ flags }}`` in templates: ``{% if flags.new_checkout %}``, ``{{ flags|active:"a-b" }}``."""

from __future__ import annotations

from functools import partial
from typing import Any

from django.utils.functional import SimpleLazyObject  # type: ignore[import-untyped]

from . import flags_for

__all__ = ["flags"]


def flags(request: Any) -> dict[str, Any]:
    """The request user's flags as ``flags`` (looked up only if the template uses them)."""
    return {"flags": SimpleLazyObject(partial(flags_for, request))}
