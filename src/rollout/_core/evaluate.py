"""The flag check, ``Rollout.active``: the hot path of every request.

It is a function made per Rollout whose globals are the replica's dicts' bound ``get`` methods
rather than a method that reads ``self``, so a check does no attribute lookup of its own (and,
unlike a closure, copies no variables into its frame on entry). Every Rollout has a class of its
own (``Rollout.__new__``) on which the function is set as the method ``active``: CPython 3.11
specialises ``flags.active(...)`` for a function found on the class (one type-version check),
while a callable stored on the instance goes through the generic attribute lookup every time,
which cost a quarter of the on-for-everybody check. No lock, no I/O; the dicts' entries are
replaced whole by writers.

A check with a user goes straight to the flag's own function (``user_checks``, built by
rollout._core.specialize), or, for a flag that is only a percentage of users, compares the
user's memoised bucket with its bound (``percentage_bounds``) itself; one without a user reads
the answer computed at compile time (``anonymous``) and needs the flag's :class:`Check` only for
a percentage of the time.
"""

from __future__ import annotations

from functools import cache
from random import random
from types import FunctionType

from .bucketing import crc32_memo, remember_crc32
from .feature import Check

TYPE_CHECKING = False
if TYPE_CHECKING:
    from collections.abc import Callable, Mapping
    from types import CodeType, ModuleType
    from typing import Any, Protocol

__all__ = ["ActiveCheck", "ActiveMethod", "build_active"]


if TYPE_CHECKING:  # types only: typing is not loaded at run time

    class ActiveCheck(Protocol):
        def __call__(self, name: Any, user: Any = None) -> bool:
            """Whether the flag ``name`` is on (for ``user``: a str/int id or an object with an
            id)."""

    class ActiveMethod(Protocol):
        def __call__(self, owner: Any, name: Any, user: Any = None) -> bool:
            """:class:`ActiveCheck` as a method of the Rollout's own class (``owner`` is unused)."""


# The source of ``active``, made a function per Rollout with that Rollout's dicts and callables
# as its globals rather than as closure variables: a call copies every closure variable into its
# frame (and releases it after), which the global check paid for the ones it never reads. Each
# Rollout's function has a copy of the code object of its own, so that the specialised global
# lookups of one Rollout are not undone by another's (the copy costs well under a microsecond;
# compiling the source for every Rollout cost 180). The names are as in build_active.
_SOURCE = """\
def active(owner, name, user=None):
    # Few locals on purpose: a small frame is cheaper to enter (CPython 3.11); the inlined
    # percentage reuses ``answer``, ``check`` and the unused ``owner`` rather than adding its own.
    if user is None:
        try:
            answer = anonymous_get(name)
            if answer is not None:
                return answer
            check = checks_get(name)
        except TypeError:  # an unhashable name: the slow path names the problem
            return uncompiled(name, user)
        if check is None:
            return uncompiled(name, user)
        # Only a percentage of time leaves the answer without a user to chance.
        return random() * 100.0 < check.time_percentage
    try:
        check = user_checks_get(name)
    except TypeError:
        return uncompiled(name, user)
    if check is not None:
        return check(user)
    # Looked up only when the name is not in user_checks, so other flags pay nothing.
    owner = bounds_get(name)  # the bound
    if owner is None:
        return uncompiled(name, user)
    # rollout._core.specialize's id and "crc32" steps, as they read for such an attribute.
    answer = getattr(user, %(attribute)r, user)
    check = type(answer)
    if check is not int and check is not str:
        answer = user_id(user)
    check = memo_get(answer)
    if check is None:
        check = remember_crc32(answer)
    return check < owner
"""


def build_active(
    checks: Mapping[str, Check],
    anonymous: Mapping[str, bool],
    user_checks: Mapping[str, Callable[[Any], bool]],
    uncompiled: Callable[[object, object], bool],
    *,
    percentage_bounds: Mapping[str, int],
    id_attribute: str,
    user_id: Callable[[object], str],
    speedups: ModuleType | None = None,
) -> ActiveMethod:
    """The check method for one Rollout.

    ``uncompiled`` handles names that are not plain ``str`` (Enum members), unhashable, or not
    known. With a user, the flag's own specialised check does the rest (rollout._core.specialize),
    except for a flag that is only a percentage of users with the default bucket: its bound is
    in ``percentage_bounds`` instead, and the check reads the user's ``id_attribute`` (one that
    no str or int has: the replica fills ``percentage_bounds`` only then) and compares the
    bucket itself. Such flags are the commonest per-user flags, and the call of a function of
    their own (a frame) was a tenth of their check.

    ``speedups``: the C accelerator (rollout._core.native) whose ``Active`` takes the same
    steps in C, or None for the Python function.
    """
    if speedups is not None:
        accelerated: ActiveMethod = speedups.Active(
            checks,
            anonymous,
            user_checks,
            uncompiled,
            percentage_bounds,
            id_attribute or "id",
            user_id,
        )
        return accelerated
    namespace: dict[str, Any] = {
        "anonymous_get": anonymous.get,
        "checks_get": checks.get,
        "user_checks_get": user_checks.get,
        "bounds_get": percentage_bounds.get,
        "uncompiled": uncompiled,
        "user_id": user_id,
        "memo_get": crc32_memo.get,
        "remember_crc32": remember_crc32,
        "random": random,
    }
    code = _compiled(id_attribute or "id").replace()  # a copy: see _SOURCE
    active: ActiveMethod = FunctionType(code, namespace, "active", (None,))
    return active


@cache
def _compiled(attribute: str) -> CodeType:
    namespace: dict[str, Any] = {}
    exec(compile(_SOURCE % {"attribute": attribute}, "<rollout active>", "exec"), namespace)
    code: CodeType = namespace["active"].__code__
    return code
