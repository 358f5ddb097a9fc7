"""Per-flag decision functions: ``flags.explain``'s decision, specialised like the checks.

:func:`rollout._core.explain.decide_check` walks any flag's rules in the check's order and
returns the :data:`~rollout._core.explain.Decision` (the rule that decided and its numbers);
the OpenFeature provider asks for one on every targeted evaluation. This module generates, per
flag *shape* (which rules are present, as rollout._core.specialize does for the check itself),
a function of ``(uid, user)`` that contains only the flag's own steps, with the flag's values
and predicates bound as closure variables, and reads the default bucket from the process-wide
CRC32 memo. Its decision is ``decide_check``'s, field for field
(``tests/core/test_decide.py`` compares them on every shape); it is about half the cost.

Only for a check with a user (``uid`` is the id as the check reads it, a str); a check without
a user, and the words of an explanation, stay ``explain``'s.
"""

from __future__ import annotations

from collections.abc import Callable
from functools import cache
from random import random
from typing import Any, NamedTuple

from .bucketing import crc32_memo, randomized_bucket, remember_crc32, ruby_bucket
from .explain import Decision
from .feature import Check
from .specialize import GroupErrorHandler, bucket_steps

__all__ = ["Decide", "specialize_decision"]

#: ``decide(uid, user)``: the decision for the user whose id (as the check reads it) is uid.
Decide = Callable[[str, Any], Decision]

#: As in specialize: up to this many predicates are called one by one, more in a loop.
_UNROLLED = 8


class _Shape(NamedTuple):
    excluded: bool
    time: bool
    everyone: bool  # the `all` group, or a percentage of 100
    users: bool
    bucket: str  # "", "crc32", "randomized" or "ruby"
    predicates: int


def _decision(
    active: str, reason: str, *, group: str = "None", bucket: bool = False, drawn: bool = False
) -> str:
    """The source of one decision tuple (the fields of Explanation after its message)."""
    numbers = "bucket, bound, kind" if bucket else "None, None, None"
    draw = "drawn" if drawn else "None"
    return f"({active}, {reason!r}, percentage, of_time, {group}, {numbers}, {draw})"


_BUCKETS = {
    # The default bucket is the same for every flag: memoised per id for the whole process.
    "crc32": """\
        bucket = memo_get(uid)
        if bucket is None:
            bucket = remember_crc32(uid)
""",
    "randomized": "        bucket = randomized_bucket(uid, seed)\n",
    "ruby": "        bucket = ruby_bucket(uid, name, randomize=True)\n",
}


def _source(shape: _Shape) -> str:
    """The body of ``decide`` for a shape: decide_check's steps, the absent ones left out."""

    def decision(active: str, reason: str, *, group: str = "None", bucket: bool = False) -> str:
        # The draw, once taken (it is taken before every step but the exclusion), is reported.
        return _decision(active, reason, group=group, bucket=bucket, drawn=shape.time)

    body = []
    if shape.excluded:  # before the draw: an excluded user's decision has no draw
        body.append(
            f"        if uid in excluded:\n            return {_decision('False', 'excluded')}\n"
        )
    if shape.time:
        body.append(
            "        drawn = random() * 100.0\n"
            "        if drawn < of_time:\n"
            f"            return {decision('True', 'percentage_of_time')}\n"
        )
    if shape.everyone:
        body.append(f"        return {decision('True', 'everybody')}\n")
        return "".join(body)
    if shape.users:
        body.append(f"        if uid in users:\n            return {decision('True', 'listed')}\n")
    if shape.bucket:
        body.append(_BUCKETS[shape.bucket])
        body.append(
            "        if bucket < bound:\n"
            f"            return {decision('True', 'bucket', bucket=True)}\n"
        )
    if shape.predicates > _UNROLLED:
        body.append(
            "        for group, predicate in zip(groups, predicates):\n"
            "            try:\n"
            "                if predicate(user):\n"
            f"                    return {decision('True', 'group', group='group')}\n"
            "            except Exception:\n"
            "                on_group_error(check, predicate, user)\n"
        )
    else:
        body.extend(
            "        try:\n"
            f"            if p{i}(user):\n"
            f"                return {decision('True', 'group', group=f'g{i}')}\n"
            "        except Exception:\n"
            f"            on_group_error(check, p{i}, user)\n"
            for i in range(shape.predicates)
        )
    if shape.bucket:
        body.append(f"        return {decision('False', 'bucket', bucket=True)}\n")
    elif shape.time:
        body.append(f"        return {decision('False', 'percentage_of_time')}\n")
    else:
        body.append(f"        return {decision('False', 'off')}\n")
    return "".join(body)


@cache
def _factory(shape: _Shape) -> Callable[..., Decide]:
    unpack = ""
    if 0 < shape.predicates <= _UNROLLED:
        names = ", ".join(f"p{i}" for i in range(shape.predicates))
        groups = ", ".join(f"g{i}" for i in range(shape.predicates))
        unpack = f"    ({names},) = predicates\n    ({groups},) = groups\n"
    source = (
        "def make(check, excluded, users, percentage, of_time, bound, kind, seed, name,\n"
        "         predicates, groups, on_group_error):\n"
        + unpack
        + "    def decide(uid, user):\n"
        + _source(shape)
        + "    return decide\n"
    )
    namespace: dict[str, Any] = {
        "memo_get": crc32_memo.get,
        "random": random,
        "randomized_bucket": randomized_bucket,
        "remember_crc32": remember_crc32,
        "ruby_bucket": ruby_bucket,
    }
    exec(compile(source, f"<rollout decision {shape}>", "exec"), namespace)
    make: Callable[..., Decide] = namespace["make"]
    return make


def specialize_decision(check: Check, on_group_error: GroupErrorHandler) -> Decide:
    """``decide(uid, user)`` for ``check``'s flag: ``decide_check(check, uid, user, ...)``'s
    decision, with ``check``'s own predicates (a predicate that raises says no, and
    ``on_group_error(check, predicate, user)`` is told, as the compiled check tells it)."""
    everyone, bucket = bucket_steps(check)
    shape = _Shape(
        excluded=bool(check.excluded),
        time=check.time_percentage > 0,
        everyone=everyone,
        users=bool(check.users),
        bucket=bucket,
        predicates=len(check.predicates),
    )
    return _factory(shape)(
        check,
        check.excluded,
        check.users,
        check.percentage,
        check.time_percentage,
        check.bound,
        bucket or None,
        check.seed,
        check.name,
        check.predicates,
        check.predicate_groups,
        on_group_error,
    )
