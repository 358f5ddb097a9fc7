"""The flag check, ``Rollout.active``: the hot path of every request.

It is built as a closure over the replica's two dicts rather than written as a method: a closure
stored on the instance skips the method binding and the ``self.`` attribute lookups, which is a
third of the cost of a check whose whole budget is one ``dict.get`` and a little more. (The class
declares ``active`` only as an annotation: a function of that name on the class would make every
instance lookup slower.) No lock, no I/O; the dicts' entries are replaced whole by writers.
"""

from __future__ import annotations

from collections.abc import Callable, Mapping
from random import random
from typing import Any, Protocol

from .feature import Check

__all__ = ["ActiveCheck", "build_active"]


class ActiveCheck(Protocol):
    def __call__(self, name: Any, user: Any = None) -> bool:
        """Whether the flag ``name`` is on (for ``user``: a str/int id or an object with an id)."""


def build_active(
    checks: Mapping[str, Check],
    anonymous: Mapping[str, bool],
    uncompiled: Callable[[object, object], bool],
) -> ActiveCheck:
    """The check function for one Rollout.

    ``uncompiled`` handles names that are not plain ``str`` (Enum members), unhashable, or not
    known. With a user, the flag's own specialised check does the rest (rollout._core.specialize).
    """
    anonymous_get = anonymous.get
    checks_get = checks.get

    def active(name: Any, user: Any = None) -> bool:
        # Few locals on purpose: a small frame is cheaper to enter (CPython 3.11).
        try:
            if user is None:
                answer = anonymous_get(name)
                if answer is not None:
                    return answer
            check = checks_get(name)
        except TypeError:  # an unhashable name: the slow path names the problem
            return uncompiled(name, user)
        if check is None:
            return uncompiled(name, user)
        if user is None:
            # Only a percentage of time leaves the answer without a user to chance.
            return random() * 100.0 < check.time_percentage
        return check.for_user(user)

    return active
