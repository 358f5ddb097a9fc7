"""Per-flag check functions for a user, specialised to the rules the flag actually has.

A general check tests every rule kind on every call (exclusions, percentage of time, users,
``all``, buckets of three kinds, predicates); most flags use two or three of them. The function
for a flag contains only its own steps. Its source depends only on the flag's *shape* (which
rules are present), so it is generated once per shape and cached; compiling a flag after a write
only calls the cached factory with the flag's values, which keeps a write to a flag of 100,000
users as cheap as one to an empty flag.

The order of the steps is the README's ("Evaluation, in order"), except that cheap steps come
before predicates; the answer is an OR after the exclusion test, so the order does not change it.
"""

from __future__ import annotations

from collections.abc import Callable
from functools import cache
from random import random
from typing import Any, NamedTuple
from zlib import crc32

from .bucketing import id_bytes, randomized_bucket, ruby_bucket
from .feature import Check

__all__ = ["UserCheck", "specialize"]

UserCheck = Callable[[Any], bool]
#: Called with the check, the predicate that raised, and the user.
GroupErrorHandler = Callable[[Check, Callable[[Any], object], object], None]

_EVERY_BUCKET = 2**32  # crc32 and our bucket are below it: a bound this high lets everyone in


class _Shape(NamedTuple):
    excluded: bool
    time: bool
    everyone: bool  # the `all` group, or a percentage of 100
    users: bool
    bucket: str  # "", "crc32", "randomized" or "ruby"
    predicates: bool


_ID_STEPS = """\
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
"""


def check_id(
    user: object, get_id: Callable[[Any], object], user_id: Callable[[object], str]
) -> str:
    """The id ``_ID_STEPS`` gives the compiled check, for ``explain`` (which must agree with it).

    A str or an object's str id is taken as it is, as the check takes it (an empty id or one no
    UTF-8 encoder takes is answered for, not refused); anything else goes through ``user_id``.
    """
    kind = type(user)
    if kind is str:
        return user  # type: ignore[return-value]
    if kind is int:
        return str(user)
    try:
        ident = get_id(user)
    except Exception:
        ident = None
    kind = type(ident)
    return ident if kind is str else str(ident) if kind is int else user_id(user)  # type: ignore[return-value]


_STEPS = {
    "excluded": "        if uid in excluded:\n            return False\n",
    "time": "        if random() * 100.0 < time_percentage:\n            return True\n",
    "everyone": "        return True\n",
    "users": "        if uid in users:\n            return True\n",
    # try costs nothing in 3.11 until it catches: the id no UTF-8 encoder takes is the rare one.
    "crc32": """\
        try:
            key = uid.encode()
        except UnicodeEncodeError:
            key = id_bytes(uid)
        if crc32(key) < bound:
            return True
""",
    "randomized": "        if randomized_bucket(uid, seed) < bound:\n            return True\n",
    "ruby": "        if ruby_bucket(uid, name, randomize=True) < bound:\n            return True\n",
    "predicates": """\
        for predicate in predicates:
            try:
                if predicate(user):
                    return True
            except Exception:
                on_group_error(check, predicate, user)
""",
}


@cache
def _factory(shape: _Shape) -> Callable[..., UserCheck]:
    body = [_ID_STEPS]
    if shape.excluded:
        body.append(_STEPS["excluded"])
    if shape.time:
        body.append(_STEPS["time"])
    if shape.everyone:
        body.append(_STEPS["everyone"])
    else:
        if shape.users:
            body.append(_STEPS["users"])
        if shape.bucket:
            body.append(_STEPS[shape.bucket])
        if shape.predicates:
            body.append(_STEPS["predicates"])
        body.append("        return False\n")
    source = (
        "def make(check, excluded, users, time_percentage, bound, seed, name, predicates,\n"
        "         get_id, user_id, on_group_error):\n"
        "    def user_check(user):\n" + "".join(body) + "    return user_check\n"
    )
    namespace: dict[str, Any] = {
        "crc32": crc32,
        "id_bytes": id_bytes,
        "random": random,
        "randomized_bucket": randomized_bucket,
        "ruby_bucket": ruby_bucket,
    }
    exec(compile(source, f"<rollout check {shape}>", "exec"), namespace)
    make: Callable[..., UserCheck] = namespace["make"]
    return make


def specialize(
    check: Check,
    get_id: Callable[[Any], object],
    user_id: Callable[[object], str],
    on_group_error: GroupErrorHandler,
) -> UserCheck:
    """The check of ``check``'s flag for a user (never None: that is Rollout's job)."""
    everyone = check.has_all or check.bound >= _EVERY_BUCKET
    bucket = ""
    if check.bound and not everyone:
        randomize = check.randomize
        bucket = "crc32" if randomize is False else "randomized" if randomize is True else "ruby"
    shape = _Shape(
        excluded=bool(check.excluded),
        time=check.time_percentage > 0,
        everyone=everyone,
        users=bool(check.users),
        bucket=bucket,
        predicates=bool(check.predicates),
    )
    return _factory(shape)(
        check,
        check.excluded,
        check.users,
        check.time_percentage,
        check.bound,
        check.seed,
        check.name,
        check.predicates,
        get_id,
        user_id,
        on_group_error,
    )
