"""The flag check, ``Rollout.active``: the hot path of every request (DESIGN 2.4).

It is built as a closure over the replica's two dicts rather than written as a method: a closure
stored on the instance skips the method binding and the ``self.`` attribute lookups, which is a
third of the cost of a check whose whole budget is one ``dict.get`` and a little more. No lock,
no I/O; the dicts' entries are replaced whole by writers.
"""

from __future__ import annotations

import logging
from collections.abc import Callable, Mapping
from random import random
from typing import Any
from zlib import crc32

from ._bucketing import randomized_bucket, ruby_bucket
from ._feature import Check

__all__ = ["ActiveCheck", "build_active"]

ActiveCheck = Callable[..., bool]

logger = logging.getLogger("rollout")


def build_active(
    checks: Mapping[str, Check],
    anonymous: Mapping[str, bool],
    *,
    get_id: Callable[[Any], object],
    user_id: Callable[[object], str],
    uncompiled: Callable[[object, object], bool],
    on_group_error: Callable[[Check, Callable[[Any], object], object], None],
) -> ActiveCheck:
    """The check function for one Rollout.

    ``get_id`` is the fast id lookup (an attribute getter); ``user_id`` the full one that also
    raises a clear error for a bad user; ``uncompiled`` handles names that are not plain ``str``
    (Enum members) or not known.
    """
    anonymous_get = anonymous.get
    checks_get = checks.get

    def active(name: Any, user: Any = None) -> bool:
        try:
            if user is None:
                answer = anonymous_get(name)
                if answer is not None:
                    return answer
            check = checks_get(name)
        except TypeError:  # an unhashable name: let the slow path name the problem
            return uncompiled(name, user)
        if check is None:
            return uncompiled(name, user)
        if user is None:
            # Only a percentage of time leaves the answer without a user to chance.
            return random() * 100.0 < check.time_percentage

        kind = type(user)
        if kind is str:
            uid = user
        elif kind is int:
            uid = str(user)
        else:
            try:
                ident = get_id(user)
            except Exception:
                ident = None
            kind = type(ident)
            uid = ident if kind is str else str(ident) if kind is int else user_id(user)

        if uid in check.excluded:
            return False
        if check.time_percentage and random() * 100.0 < check.time_percentage:
            return True
        if uid in check.users or check.has_all:
            return True
        bound = check.bound
        if bound:
            randomize = check.randomize
            if randomize is False:
                bucket = crc32(uid.encode())
            elif randomize is True:
                bucket = randomized_bucket(uid, check.seed)
            else:
                bucket = ruby_bucket(uid, check.name, randomize=True)
            if bucket < bound:
                return True
        predicates = check.predicates
        if predicates:
            for predicate in predicates:
                try:
                    if predicate(user):
                        return True
                except Exception:
                    # A broken predicate never breaks the caller's request: it says no.
                    on_group_error(check, predicate, user)
        return False

    return active
