"""What resolving a flag answers (:class:`Resolution`): a module of its own, so the library can
name the type without loading the engine (it is loaded when the first rule is compiled)."""

from __future__ import annotations

from typing import NamedTuple

from .errors import JSON

__all__ = ["Resolution"]


class Resolution(NamedTuple):
    """What a flag resolves to for one context, in OpenFeature's (and flagd's) terms.

    ``value`` is the variant's own value, shared by every resolution of the flag (nothing is
    copied per check): an object variant must be treated as read-only.
    """

    value: JSON | None  # None: the caller's default applies (no default variant, DISABLED, ERROR)
    variant: str | None
    reason: str  # STATIC | TARGETING_MATCH | DEFAULT | DISABLED | ERROR
    error_code: str | None  # PARSE_ERROR | GENERAL | None
    error_message: str | None
