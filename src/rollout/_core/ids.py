"""How user ids are ordered wherever a person reads a list of them (``rollout show``, the
dashboard, the API's pages of users): numeric ids by value, then the others as text."""

from __future__ import annotations

__all__ = ["user_order"]


def user_order(user: str) -> tuple[int, int, str]:
    """Numeric ids by value (2 before 10), first; other ids after them, as text."""
    if user.isascii() and user.isdigit():
        return (0, int(user), user)
    return (1, 0, user)
