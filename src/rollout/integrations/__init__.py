"""Web framework glue: one process-wide :class:`~rollout.Rollout`, checks bound to a user.

The framework modules (``rollout.integrations.django``, ``.flask``, ``.asgi``) import their
framework when they are imported, never before: ``import rollout.integrations`` stays light.
"""

from __future__ import annotations

from collections.abc import Iterator
from typing import TYPE_CHECKING

from .._client.rollout import Rollout

if TYPE_CHECKING:
    from .._core.validate import FlagName

__all__ = ["UserFlags"]


class UserFlags:
    """The flags as one user sees them: ``active(name)`` without passing the user again.

    ``user`` is whatever the Rollout's ``id_user_by`` understands (an object, a str or int
    id), or ``None`` for an anonymous visitor, who sees only flags that are on for everybody.
    ``flags["name"]`` is ``flags.active("name")``, so a Django template can write
    ``{% if flags.new_checkout %}`` and a Jinja2 template ``{% if flags["new-checkout"] %}``.
    """

    __slots__ = ("flags", "user")

    def __init__(self, flags: Rollout, user: object = None) -> None:
        if not isinstance(flags, Rollout):
            raise TypeError(f"flags must be a Rollout, got {flags!r}")
        self.flags = flags
        self.user = user

    def active(self, name: FlagName) -> bool:
        return self.flags.active(name, self.user)

    def inactive(self, name: FlagName) -> bool:
        return not self.flags.active(name, self.user)

    def __getitem__(self, name: FlagName) -> bool:
        return self.flags.active(name, self.user)

    # Without __iter__, iterating would fall back to __getitem__(0), (1), ... and fail on a
    # flag name that is not a str; iterating gives the names of the flags on for this user.
    def __iter__(self) -> Iterator[str]:
        return iter(self.active_features())

    def active_features(self) -> list[str]:
        """Names of the flags on for this user, sorted."""
        return self.flags.active_features(self.user)

    def feature_states(self) -> dict[str, bool]:
        """Every flag's name and whether it is on for this user."""
        return self.flags.feature_states(self.user)

    def __repr__(self) -> str:
        return f"<UserFlags user={self.user!r} flags={self.flags!r}>"
