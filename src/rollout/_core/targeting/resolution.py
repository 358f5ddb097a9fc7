"""What resolving a flag answers (:class:`Resolution`): a module of its own, so the library can
name the type without loading the engine (it is loaded when the first rule is compiled)."""

from __future__ import annotations

from collections import namedtuple

from .errors import JSON

TYPE_CHECKING = False
if TYPE_CHECKING:
    from typing import NamedTuple

__all__ = ["Resolution"]

_DOC = """What a flag resolves to for one context, in OpenFeature's (and flagd's) terms.

    ``value`` is the variant's own value, shared by every resolution of the flag (nothing is
    copied per check): an object variant must be treated as read-only.
    """

# The type checker sees a typing.NamedTuple; at run time the same named tuple is built by
# collections.namedtuple, without loading typing (rollout._core.clock.Timestamp does the same).
if TYPE_CHECKING:

    class Resolution(NamedTuple):
        value: JSON | None  # None: the caller's default applies (no default variant, DISABLED...)
        variant: str | None
        reason: str  # STATIC | TARGETING_MATCH | DEFAULT | DISABLED | ERROR
        error_code: str | None  # PARSE_ERROR | GENERAL | None
        error_message: str | None

else:
    Resolution = namedtuple(
        "Resolution", ["value", "variant", "reason", "error_code", "error_message"]
    )
    Resolution.__doc__ = _DOC
