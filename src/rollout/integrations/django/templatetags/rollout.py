"""``{% load rollout %}``: the ``active`` filter, for flag names a template cannot spell.

``{% if flags.new_checkout %}`` needs no tag; a name with ``-`` or ``.`` cannot be written
that way, so: ``{% if flags|active:"new-checkout" %}``.
"""

from __future__ import annotations

from django import template  # type: ignore[import-untyped]

from ... import UserFlags

__all__ = ["active", "register"]

register = template.Library()


def active(flags: UserFlags, name: str) -> bool:
    if not isinstance(flags, UserFlags):
        # Not False: a missing context processor would silently hide every feature.
        raise TypeError(
            f"the active filter needs the flags from the rollout context processor, got {flags!r}"
        )
    return flags.active(name)


register.filter("active", active)
