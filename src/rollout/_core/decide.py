"""Per-flag decision functions: ``flags.explain``'s decision, specialised like the checks.

:func:`rollout._core.explain.decide_check` walks any flag's rules in the check's order and
returns the :data:`~rollout._core.explain.Decision` (the rule that decided and its numbers);
the OpenFeature provider asks for one on every targeted evaluation. This module generates, per
flag *shape* (which rules are present, as rollout._core.specialize does for the check itself),
a function of ``(uid, user)`` that contains only the flag's own steps, with the flag's values
and predicates as its globals (as the check has them), and reads the default bucket from the
process-wide CRC32 memo. Its decision is ``decide_check``'s, field for field
(``tests/core/test_decide.py`` compares them on every shape); it is about half the cost. Its
sibling, the resolution function (:func:`specialize_resolution`), takes the same steps and ends
each in the provider's result object instead of a decision tuple (a tuple per resolution cost
as much as the rest of the result).

Only for a check with a user (``uid`` is the id as the check reads it, a str); a check without
a user, and the words of an explanation, stay ``explain``'s.
"""

from __future__ import annotations

from collections.abc import Callable, Mapping
from functools import cache
from random import random
from types import CodeType, FunctionType, ModuleType
from typing import Any, NamedTuple, TypeVar

from .bucketing import crc32_memo, randomized_bucket, remember_crc32, ruby_bucket
from .explain import Decision
from .feature import Check
from .specialize import GroupErrorHandler, bucket_steps

__all__ = ["Decide", "specialize_decision", "specialize_resolution"]

T = TypeVar("T")

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
    active: str, reason: str, *, group: str = "None", bucket: str = "", drawn: bool = False
) -> str:
    """The source of one decision tuple (the fields of Explanation after its message);
    ``bucket``: the source of the bucket read ("" where no bucket step was taken)."""
    numbers = f"{bucket}, bound, kind" if bucket else "None, None, None"
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


#: ``ending(indent, active, reason, group, bucket, drawn)``: the lines that end a decision at
#: one return site of the function (indented by ``indent``): the source's literal ``True`` or
#: ``False``, the reason, the source of the deciding group (``"None"`` if none), whether a
#: bucket was read and whether the draw was taken.
Ending = Callable[[str, str, str, str, bool, bool], str]


def _return_decision(  # noqa: PLR0917 - an Ending
    indent: str, active: str, reason: str, group: str, bucket: bool, drawn: bool
) -> str:
    """A decision function's ending: the decision tuple."""
    tuple_source = _decision(
        active, reason, group=group, bucket="bucket" if bucket else "", drawn=drawn
    )
    return f"{indent}return {tuple_source}\n"


def _resolution_ending(constants: dict[str, str]) -> Ending:
    """A resolution function's ending: a new ``result`` (``object.__new__``, no ``__init__``)
    with ``value``, ``reason`` (``reasons[reason]``), ``variant`` (``on_variant`` or
    ``off_variant``), ``_view`` (``view``) and ``_decision`` set, and returned. No decision
    tuple is built where a flag's decisions differ by the bucket alone (the common ones): the
    site's template, built once (its bucket None), is ``_decision`` and the bucket is set as
    ``_bucket``. The names of what is built once, and their source, are added to
    ``constants``."""

    def ending(  # noqa: PLR0917 - an Ending
        indent: str, active: str, reason: str, group: str, bucket: bool, drawn: bool
    ) -> str:
        constants[f"reason_{reason}"] = f"reasons[{reason!r}]"
        lines = [
            "made = new(result)",
            f"made.value = {active}",
            f"made.reason = reason_{reason}",
            f"made.variant = {'on_variant' if active == 'True' else 'off_variant'}",
            "made._view = view",
        ]
        if drawn or group == "group":  # a draw, or a group of the loop: this decision's own
            tuple_source = _decision(
                active, reason, group=group, bucket="bucket" if bucket else "", drawn=drawn
            )
            lines.append(f"made._decision = {tuple_source}")
        else:
            name = f"decision_{active}_{reason}_{group}"
            constants[name] = _decision(
                active, reason, group=group, bucket="None" if bucket else ""
            )
            lines.append(f"made._decision = {name}")
            if bucket:
                lines.append("made._bucket = bucket")
        lines.append("return made")
        return "".join(f"{indent}{line}\n" for line in lines)

    return ending


def _source(shape: _Shape, ending: Ending) -> str:
    """The body of ``decide`` for a shape: decide_check's steps, the absent ones left out, each
    decision ended by ``ending``."""

    def end(
        indent: int, active: str, reason: str, *, group: str = "None", bucket: bool = False
    ) -> str:
        # The draw, once taken (before every step but the exclusion), is reported.
        drawn = shape.time and reason != "excluded"
        return ending(" " * indent, active, reason, group, bucket, drawn)

    body = []
    if shape.excluded:  # before the draw: an excluded user's decision has no draw
        body.append(f"        if uid in excluded:\n{end(12, 'False', 'excluded')}")
    if shape.time:
        body.append(
            "        drawn = random() * 100.0\n"
            f"        if drawn < of_time:\n{end(12, 'True', 'percentage_of_time')}"
        )
    if shape.everyone:
        body.append(end(8, "True", "everybody"))
        return "".join(body)
    if shape.users:
        body.append(f"        if uid in users:\n{end(12, 'True', 'listed')}")
    if shape.bucket:
        body.append(_BUCKETS[shape.bucket])
        body.append(f"        if bucket < bound:\n{end(12, 'True', 'bucket', bucket=True)}")
    if shape.predicates > _UNROLLED:
        body.append(
            "        for group, predicate in zip(groups, predicates):\n"
            "            try:\n"
            "                if predicate(user):\n"
            f"{end(20, 'True', 'group', group='group')}"
            "            except Exception:\n"
            "                on_group_error(check, predicate, user)\n"
        )
    else:
        body.extend(
            "        try:\n"
            f"            if p{i}(user):\n"
            f"{end(16, 'True', 'group', group=f'g{i}')}"
            "        except Exception:\n"
            f"            on_group_error(check, p{i}, user)\n"
            for i in range(shape.predicates)
        )
    if shape.bucket:
        body.append(end(8, "False", "bucket", bucket=True))
    elif shape.time:
        body.append(end(8, "False", "percentage_of_time"))
    else:
        body.append(end(8, "False", "off"))
    return "".join(body)


#: The parameters of every family's ``make``, and those a resolution function adds.
_PARAMETERS = (
    "check, excluded, users, percentage, of_time, bound, kind, seed, name, predicates, groups, "
    "on_group_error"
)
_RESOLUTION_PARAMETERS = ", result, view, reasons, on_variant, off_variant"
#: What the steps call besides the flag's own values: the same for every flag.
_HELPERS: dict[str, Any] = {
    "memo_get": crc32_memo.get,
    "new": object.__new__,
    "random": random,
    "randomized_bucket": randomized_bucket,
    "remember_crc32": remember_crc32,
    "ruby_bucket": ruby_bucket,
}
#: The names each unrolled predicate and its group are bound to.
_UNPACKED = {f"{letter}{i}" for letter in "pg" for i in range(_UNROLLED)}


@cache
def _factory(shape: _Shape, resolution: bool) -> Callable[..., Any]:
    """``make(...)`` of the shape's decision function, or of its resolution function.

    As for the checks (rollout._core.specialize), the flag's values are the function's globals,
    not closure variables: a call copies every closure variable into its frame and releases it
    after (about twenty for a resolution of three groups), while a global costs only when read.
    The code is compiled once per shape; each flag's function has its own copy of it, so that
    the specialised global lookups of one flag are not undone by another's."""
    unpack = ""
    if 0 < shape.predicates <= _UNROLLED:
        names = ", ".join(f"p{i}" for i in range(shape.predicates))
        groups = ", ".join(f"g{i}" for i in range(shape.predicates))
        unpack = f"    ({names},) = predicates\n    ({groups},) = groups\n"
    constants: dict[str, str] = {}
    body = _source(shape, _resolution_ending(constants) if resolution else _return_decision)
    kind = "resolution" if resolution else "decision"
    namespace: dict[str, Any] = {}
    exec(compile(f"def decide(uid, user):\n{body}", f"<rollout {kind} {shape}>", "exec"), namespace)
    code: CodeType = namespace["decide"].__code__
    built_once = "".join(f"    {name} = {source}\n" for name, source in constants.items())
    parameters = _PARAMETERS + (_RESOLUTION_PARAMETERS if resolution else "")
    known = {*_HELPERS, *parameters.split(", "), *constants, *_UNPACKED}
    # Only the names the code reads: a smaller dict is made faster and holds less.
    read = ", ".join(f"{name!r}: {name}" for name in code.co_names if name in known)
    source = (
        f"def make({parameters}):\n"
        + unpack
        + built_once
        + f"    return FunctionType(code.replace(), {{{read}}}, 'decide')\n"
    )
    namespace = {**_HELPERS, "code": code, "FunctionType": FunctionType}
    exec(compile(source, f"<rollout {kind} factory {shape}>", "exec"), namespace)
    make: Callable[..., Any] = namespace["make"]
    return make


def specialize_decision(check: Check, on_group_error: GroupErrorHandler) -> Decide:
    """``decide(uid, user)`` for ``check``'s flag: ``decide_check(check, uid, user, ...)``'s
    decision, with ``check``'s own predicates (a predicate that raises says no, and
    ``on_group_error(check, predicate, user)`` is told, as the compiled check tells it)."""
    shape, arguments = _shape_and_arguments(check, on_group_error)
    decide: Decide = _factory(shape, False)(*arguments)
    return decide


def specialize_resolution(
    check: Check,
    on_group_error: GroupErrorHandler,
    *,
    result: type[T],
    view: object,
    reasons: Mapping[str, object],
    on_variant: str,
    off_variant: str,
    speedups: ModuleType | None = None,
) -> Callable[[str, Any], T]:
    """``resolve(uid, user)`` for ``check``'s flag: :func:`specialize_decision`'s decision as a
    new ``result`` (made with ``object.__new__``) with ``value`` (the answer), ``reason``
    (``reasons[rule]``), ``variant`` (``on_variant`` or ``off_variant``), ``_view`` (``view``)
    and ``_decision`` set: the decision, except where it differs between users by the bucket
    alone: then ``_decision`` is the same for every user (its bucket None) and ``_bucket`` is
    the user's (the OpenFeature provider's resolution, without a tuple per decision).

    ``speedups``: the C accelerator (rollout._core.native) the flag's Rollout checks with; its
    ``Resolution`` takes the same steps and makes the same result (a group of more than eight
    has its decision shared, as for fewer: an equal tuple), or None for the Python function."""
    shape, arguments = _shape_and_arguments(check, on_group_error)
    if speedups is not None:
        accelerated: Callable[[str, Any], T] = speedups.Resolution(
            check=check,
            excluded=check.excluded,
            users=check.users,
            percentage=check.percentage,
            time_percentage=check.time_percentage,
            everyone=shape.everyone,
            bucket=getattr(speedups, f"BUCKET_{(shape.bucket or 'none').upper()}"),
            bound=check.bound,
            kind=shape.bucket or None,
            seed=check.seed,
            name=check.name,
            predicates=tuple(check.predicates),
            groups=tuple(check.predicate_groups),
            on_group_error=on_group_error,
            result=result,
            view=view,
            reasons=reasons,
            on_variant=on_variant,
            off_variant=off_variant,
        )
        return accelerated
    parts = (result, view, reasons, on_variant, off_variant)
    resolve: Callable[[str, Any], T] = _factory(shape, True)(*arguments, *parts)
    return resolve


def _shape_and_arguments(
    check: Check, on_group_error: GroupErrorHandler
) -> tuple[_Shape, tuple[object, ...]]:
    everyone, bucket = bucket_steps(check)
    shape = _Shape(
        excluded=bool(check.excluded),
        time=check.time_percentage > 0,
        everyone=everyone,
        users=bool(check.users),
        bucket=bucket,
        predicates=len(check.predicates),
    )
    arguments = (
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
    return shape, arguments
