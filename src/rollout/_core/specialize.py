"""Per-flag check functions for a user, specialised to the rules the flag actually has.

A general check tests every rule kind on every call (exclusions, percentage of time, users,
``all``, buckets of three kinds, predicates); most flags use two or three of them. The function
for a flag contains only its own steps. Its source depends only on the flag's *shape* (which
rules are present), so it is compiled once per shape and cached; compiling a flag after a write
only makes a function of a copy of the cached code with the flag's values as its globals, which
keeps a write to a flag of 100,000 users as cheap as one to an empty flag.

The order of the steps is the README's ("Evaluation, in order"), except that cheap steps come
before predicates; the answer is an OR after the exclusion test, so the order does not change it.
"""

from __future__ import annotations

from collections import namedtuple
from collections.abc import Callable
from functools import cache
from keyword import iskeyword
from random import random
from types import FunctionType

from .bucketing import crc32_memo, randomized_bucket, remember_crc32, ruby_bucket
from .feature import Check

TYPE_CHECKING = False
if TYPE_CHECKING:
    from types import CodeType, ModuleType
    from typing import Any, NamedTuple, TypeAlias

__all__ = [
    "UserCheck",
    "answer_before_groups",
    "bucket_steps",
    "check_id",
    "getattr_reads_id",
    "inline_bound",
    "plain_attribute",
    "specialize",
]

UserCheck: TypeAlias = "Callable[[Any], bool]"
#: Called with the check, the predicate that raised, and the user.
GroupErrorHandler: TypeAlias = "Callable[[Check, Callable[[Any], object], object], None]"

_EVERY_BUCKET = 2**32  # crc32 and our bucket are below it: a bound this high lets everyone in


if TYPE_CHECKING:  # as clock.Timestamp

    class _Shape(NamedTuple):
        excluded: bool
        time: bool
        everyone: bool  # the `all` group, or a percentage of 100
        users: bool
        bucket: str  # "", "crc32", "randomized" or "ruby"
        predicates: int  # how many
        id_attribute: str  # the id read as ``user.<attribute>`` in the source; "" calls get_id
else:
    _Shape = namedtuple(
        "_Shape",
        ["excluded", "time", "everyone", "users", "bucket", "predicates", "id_attribute"],
    )


#: Up to this many predicates are called one after another in the source, each bound to a name
#: of its own; more are called in a loop (a loop over three costs about 40 ns a check more).
_UNROLLED = 8


def getattr_reads_id(attribute: str) -> bool:
    """Whether ``getattr(user, attribute, user)`` reads an object's id and passes a str or int
    user through as it is: no str or int has the attribute (``id``, ``user_id``)."""
    return bool(attribute) and not hasattr(str, attribute) and not hasattr(int, attribute)


def _id_steps(attribute: str) -> str:
    """The steps that set ``ident``: the user's id as an exact str or int, the way a check reads
    it (see :func:`check_id`).

    With an attribute that no str or int has (``id``, ``user_id``), one ``getattr`` with a
    default reads an object's id and passes a str or int user through as it is; otherwise the
    user's type is tested first. Either way an id of any other type (a bool, a float, None) goes
    to ``user_id``, which refuses it with the error a write gives.
    """
    if getattr_reads_id(attribute):
        return f"""\
        ident = getattr(user, {attribute!r}, user)
        kind = type(ident)
        if kind is not int and kind is not str:
            ident = user_id(user)
"""
    read = f"user.{attribute}" if attribute else "get_id(user)"
    return f"""\
        kind = type(user)
        if kind is str or kind is int:
            ident = user
        else:
            try:
                ident = {read}
            except Exception:
                ident = None
            kind = type(ident)
            if kind is not str and kind is not int:
                ident = user_id(user)
"""


def plain_attribute(name: str) -> bool:
    """Whether ``user.<name>`` in generated source reads the attribute ``getattr`` would.

    Not a keyword, and ASCII: the parser NFKC-normalises identifiers (``user.\ufb01`` would read
    ``fi``), so a non-ASCII name is read through ``attrgetter`` instead.
    """
    return name.isascii() and name.isidentifier() and not iskeyword(name)


def check_id(
    user: object, get_id: Callable[[Any], object], user_id: Callable[[object], str]
) -> str:
    """The id the compiled check uses, as a str, for ``explain`` (which must agree with it).

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


# The id as a str, for the steps that compare it with listed ids or hash it with the flag's name.
_UID = "        uid = ident if type(ident) is str else str(ident)\n"

_STEPS = {
    "excluded": "        if uid in excluded:\n            return False\n",
    "time": "        if random() * 100.0 < time_percentage:\n            return True\n",
    "everyone": "        return True\n",
    "users": "        if uid in users:\n            return True\n",
    # The default bucket is the same for every flag: memoised per id for the whole process.
    "crc32": """\
        bucket = memo_get(ident)
        if bucket is None:
            bucket = remember_crc32(ident)
        if bucket < bound:
            return True
""",
    "randomized": "        if randomized_bucket(uid, seed) < bound:\n            return True\n",
    "ruby": "        if ruby_bucket(uid, name, randomize=True) < bound:\n            return True\n",
    # try costs nothing in 3.11 until it catches; a predicate that raises says no.
    "predicate": """\
        try:
            if p{i}(user):
                return True
        except Exception:
            on_group_error(check, p{i}, user)
""",
    "predicate loop": """\
        for predicate in predicates:
            try:
                if predicate(user):
                    return True
            except Exception:
                on_group_error(check, predicate, user)
""",
}


#: The parameters of a shape's ``make``: the flag's values.
_PARAMETERS = (
    "check, excluded, users, time_percentage, bound, seed, name, predicates, get_id, user_id,"
    " on_group_error"
)
#: What the steps call besides the flag's own values: the same for every flag.
_HELPERS: dict[str, Any] = {
    "memo_get": crc32_memo.get,
    "random": random,
    "randomized_bucket": randomized_bucket,
    "remember_crc32": remember_crc32,
    "ruby_bucket": ruby_bucket,
}
_GLOBALS = {*_HELPERS, *_PARAMETERS.split(", "), *(f"p{i}" for i in range(_UNROLLED))}


@cache
def _factory(shape: _Shape) -> Callable[..., UserCheck]:
    """``make(<_PARAMETERS>)``: the check of a flag of ``shape``.

    The flag's values are the function's globals rather than closure variables: a call copies
    every closure variable into its frame and releases it after (seven for a flag of three
    groups: about 3% of its check), while a global costs only when read. Each flag's
    function has its own copy of the shape's code, so that the specialised global lookups of
    one flag are not undone by another's (as for flags.active, rollout._core.evaluate).
    """
    body = [_id_steps(shape.id_attribute)]
    if shape.excluded or shape.users or shape.bucket in ("randomized", "ruby"):
        body.append(_UID)
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
        if shape.predicates > _UNROLLED:
            body.append(_STEPS["predicate loop"])
        else:
            body.extend(_STEPS["predicate"].format(i=i) for i in range(shape.predicates))
        body.append("        return False\n")
    namespace: dict[str, Any] = {}
    source = "def user_check(user):\n" + "".join(body)
    exec(compile(source, f"<rollout check {shape}>", "exec"), namespace)
    code: CodeType = namespace["user_check"].__code__
    unpack = ""
    if 0 < shape.predicates <= _UNROLLED:
        names = ", ".join(f"p{i}" for i in range(shape.predicates))
        unpack = f"    ({names},) = predicates\n"
    # Only the names the code reads: a smaller dict is made faster and holds less.
    read = ", ".join(f"{name!r}: {name}" for name in code.co_names if name in _GLOBALS)
    source = (
        f"def make({_PARAMETERS}):\n"
        + unpack
        + f"    return FunctionType(code.replace(), {{{read}}}, 'user_check')\n"
    )
    namespace = {**_HELPERS, "code": code, "FunctionType": FunctionType}
    exec(compile(source, f"<rollout check factory {shape}>", "exec"), namespace)
    make: Callable[..., UserCheck] = namespace["make"]
    return make


#: The accelerator's number for each bucket step (its BUCKET_* constants).
_BUCKET_KINDS = {"": 0, "crc32": 1, "randomized": 2, "ruby": 3}


def bucket_steps(check: Check) -> tuple[bool, str]:
    """Whether ``check`` lets everyone in, and its bucket step: "", "crc32", "randomized" or
    "ruby" (the shape's two fields that the compiled check and the decision share)."""
    everyone = check.has_all or check.bound >= _EVERY_BUCKET
    bucket = ""
    if check.bound and not everyone:
        randomize = check.randomize
        bucket = "crc32" if randomize is False else "randomized" if randomize is True else "ruby"
    return everyone, bucket


def answer_before_groups(check: Check, uid: str) -> bool | None:
    """``check``'s answer for the id ``uid`` when a rule it tests before the groups gives it,
    else None (a predicate must be asked): False for an excluded user; True for a user listed,
    inside the percentage, or when the flag is on for everybody (whatever a draw of the
    percentage of time would say: it could only say yes too, so none is drawn).

    The answer itself, not whether there is one: asking the check again afterwards would read
    the flag a second time, and a write from another thread in between (a new check, or a
    kept one whose sets of users changed in place) could make that second reading call a
    predicate after all."""
    if uid in check.excluded:
        return False
    if uid in check.users:
        return True
    everyone, bucket = bucket_steps(check)
    if everyone:
        return True
    if not bucket:
        return None
    if bucket == "crc32":
        value = crc32_memo.get(uid)
        if value is None:
            value = remember_crc32(uid)
    elif bucket == "randomized":
        value = randomized_bucket(uid, check.seed)
    else:
        value = ruby_bucket(uid, check.name, randomize=True)
    return True if value < check.bound else None


def inline_bound(check: Check) -> int | None:
    """The bound of a flag that is only a percentage of users with the default bucket, which
    ``flags.active`` checks itself (rollout._core.evaluate); None for any other flag."""
    if (
        check.excluded
        or check.users
        or check.predicates
        or check.time_percentage > 0
        or bucket_steps(check) != (False, "crc32")
    ):
        return None
    return check.bound


def specialize(
    check: Check,
    get_id: Callable[[Any], object],
    user_id: Callable[[object], str],
    on_group_error: GroupErrorHandler,
    *,
    id_attribute: str = "",
    speedups: ModuleType | None = None,
) -> UserCheck:
    """The check of ``check``'s flag for a user (never None: that is Rollout's job).

    ``id_attribute``: the attribute ``get_id`` reads (``id_user_by="id"``), so the check can
    read it itself; empty when ``get_id`` is any other callable. ``speedups``: the C
    accelerator (rollout._core.native) to make the check with, or None for the Python one.
    """
    if id_attribute and not plain_attribute(id_attribute):
        raise ValueError(f"id_attribute must be a plain ASCII attribute name, got {id_attribute!r}")
    everyone, bucket = bucket_steps(check)
    shape = _Shape(
        excluded=bool(check.excluded),
        time=check.time_percentage > 0,
        everyone=everyone,
        users=bool(check.users),
        bucket=bucket,
        predicates=len(check.predicates),
        id_attribute=id_attribute,
    )
    if speedups is not None:  # the same steps in C
        accelerated: UserCheck = speedups.UserCheck(
            check=check,
            excluded=check.excluded,
            users=check.users,
            time_percentage=check.time_percentage,
            everyone=everyone,
            bucket=_BUCKET_KINDS[bucket],
            bound=check.bound,
            seed=check.seed,
            name=check.name,
            predicates=tuple(check.predicates),
            id_mode=0 if getattr_reads_id(id_attribute) else 1 if id_attribute else 2,
            attribute=id_attribute,
            get_id=get_id,
            user_id=user_id,
            on_group_error=on_group_error,
        )
        return accelerated
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
