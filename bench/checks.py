"""Check speed: a baseline, rollout's two checks, and the same two checks in peer libraries.

The checks, as an application calls them:

* baseline: ``baseline("on")``, a Python function doing one ``dict.get`` on a module dict;
* global: ``flags.active("on")`` on a flag that is on for everybody;
* per-user without groups: ``flags.active("chat-percentage-only", user)`` on a 20% flag;
* per-user: ``flags.active("chat", user)`` on a 20% flag with three groups (admins, beta,
  staff), for a user object in no group;

each per-user check timed two ways:

  - worst case: one fixed user outside the 20% for every library and both flags, so every rule
    is evaluated;
  - mean: over 10,000 distinct users (about 20% of them inside the percentage).

"rollout" is the check as installed: the C accelerator where it is built (rollout._core.native),
and then the pure-Python check, the fallback, is timed too. The floor of the per-user check with
groups is printed beside it: the baseline plus the three
group predicates called in a loop, which any check of those groups must call. Rollout keeps a
memo of recently seen ids' buckets (rollout._core.bucketing); the "new users" row is the mean
over more distinct users than the memo holds, so every check misses it.

Peers (see ``bench.peers``) run the same three flags, offline, with the same user objects.

The size of the world (:func:`measure_world_size`): the per-user check in a Rollout holding one
flag against one holding 10,000, and a listed user's check on a 3-user flag against a
1,000,000-user flag; a check's cost must not grow with either (target: within 1.2x).
"""

from __future__ import annotations

import sys
from collections.abc import Callable
from dataclasses import dataclass, field

from rollout import Rollout
from rollout._core import native
from rollout._core.bucketing import MEMO_SIZE

from ._timing import QUICK, ns_per_call, ns_per_item
from .peers import PeerChecks, build_all
from .peers import _User as User

__all__ = ["CheckResults", "CheckTimes", "User", "measure_checks"]

GROUPS = ("admins", "beta", "staff")
USER_COUNT = 10_000

TABLE: dict[str, bool] = {"on": True, "chat": False}

#: The same distinct users for rollout and every peer; all in no rule group.
USERS = [User(id=uid, groups=("customers",)) for uid in range(1, USER_COUNT + 1)]
#: More distinct users than the bucket memo holds, so a loop over them misses it every time.
NEW_USERS = [User(id=uid, groups=("customers",)) for uid in range(1, 3 * MEMO_SIZE + 1)]


def baseline(name: str) -> bool | None:
    """The floor a flag check is compared with: one function call and one ``dict.get``."""
    return TABLE.get(name)


@dataclass(frozen=True)
class CheckTimes:
    """Nanoseconds per check."""

    global_ns: float
    user_ns: float  # the flag with groups, the fixed worst-case user
    user_mean_ns: float  # the flag with groups, mean over USER_COUNT distinct users
    percent_ns: float  # the flag without groups, the worst-case user
    percent_mean_ns: float  # the flag without groups, mean over USER_COUNT users


@dataclass(frozen=True)
class CheckResults:
    baseline_ns: float
    baseline_loop_ns: float  # the baseline timed like the per-user mean (loop, less overhead)
    floor_ns: float  # the baseline plus three predicate calls: the groups' own cost
    rollout: CheckTimes
    new_users_mean_ns: float  # rollout's flag without groups, every id new to the memo
    worst_user_id: int
    peers: dict[str, CheckTimes] = field(default_factory=dict)  # library label -> times
    failures: list[str] = field(default_factory=list)  # peers that could not be set up
    implementation: str = "Python"  # the check the rows named "rollout" time: "C" or "Python"
    #: The pure-Python check (the fallback where the C accelerator is not built), timed in the
    #: same run when the accelerator is what "rollout" timed; else None.
    python: CheckTimes | None = None


def _predicate(group: str) -> Callable[[User], bool]:
    return lambda user: group in user.groups


#: The groups' predicates, as rollout calls them (one per group, over the user object).
PREDICATES = tuple(_predicate(group) for group in GROUPS)


_ADMINS, _BETA, _STAFF = PREDICATES


def floor(user: User) -> bool:
    """What no check of the three groups can avoid: calling each predicate in turn."""
    return _ADMINS(user) or _BETA(user) or _STAFF(user)


def build_rollout(flags: Rollout | None = None) -> Rollout:
    """The benchmark's flags and groups, written to ``flags`` (a new in-memory Rollout if None)."""
    flags = Rollout() if flags is None else flags
    flags.activate("on")
    for group, predicate in zip(GROUPS, PREDICATES, strict=True):
        flags.define_group(group, predicate)
    flags.activate_percentage("chat", 20)
    for group in GROUPS:
        flags.activate_group("chat", group)
    # The same percentage without groups.
    flags.activate_percentage("chat-percentage-only", 20)
    return flags


def worst_case_user(flags: Rollout, peers: list[PeerChecks]) -> User:
    """The first user outside the 20% of both flags for rollout and every peer, in no group."""
    for uid in range(1, 100_000):
        user = User(id=uid, groups=("customers",))
        if flags.active("chat-percentage-only", user) or flags.active("chat", user):
            continue
        if not any(peer.user_check(user) or peer.percent_check(user) for peer in peers):
            return user
    raise RuntimeError("no user is outside the 20% for every library")


def _measure(
    global_stmt: str, user_call: str, percent_call: str, namespace: dict[str, object]
) -> CheckTimes:
    """The calls name their user ``{user}``: the fixed ``user``, or each ``item`` of USERS."""
    return CheckTimes(
        global_ns=ns_per_call(global_stmt, namespace),
        user_ns=ns_per_call(user_call.format(user="user"), namespace),
        user_mean_ns=ns_per_item(user_call.format(user="item"), namespace, USERS),
        percent_ns=ns_per_call(percent_call.format(user="user"), namespace),
        percent_mean_ns=ns_per_item(percent_call.format(user="item"), namespace, USERS),
    )


def measure_checks(progress: bool = True) -> CheckResults:
    # A quick run compares with GrowthBook only: the fastest peer, the one the targets name.
    peers, failures = build_all(only=("growthbook",) if QUICK else ())
    try:
        flags = build_rollout()
        user = worst_case_user(flags, peers)
        namespace: dict[str, object] = {
            "baseline": baseline,
            "floor": floor,
            "flags": flags,
            "user": user,
        }
        _say(progress, "baseline")
        baseline_ns = ns_per_call('baseline("on")', namespace)
        baseline_loop_ns = ns_per_item('baseline("on")', namespace, USERS)
        floor_ns = baseline_ns + ns_per_call("floor(user)", namespace)
        _say(progress, "rollout")
        ours = _measure(
            'flags.active("on")',
            'flags.active("chat", {user})',
            'flags.active("chat-percentage-only", {user})',
            namespace,
        )
        new_users_ns = ns_per_item(
            'flags.active("chat-percentage-only", item)', namespace, NEW_USERS
        )
        python: CheckTimes | None = None
        if native.speedups is not None:
            _say(progress, "rollout, pure Python")
            python = _measure(
                'flags.active("on")',
                'flags.active("chat", {user})',
                'flags.active("chat-percentage-only", {user})',
                {**namespace, "flags": _pure_python_rollout()},
            )
        timed: dict[str, CheckTimes] = {}
        for peer in peers:
            _say(progress, peer.library)
            scope: dict[str, object] = {
                "global_check": peer.global_check,
                "user_check": peer.user_check,
                "percent_check": peer.percent_check,
                "user": user,
            }
            timed[peer.library] = _measure(
                "global_check()", "user_check({user})", "percent_check({user})", scope
            )
        flags.close()
    finally:
        for peer in peers:
            peer.close()
    return CheckResults(
        baseline_ns,
        baseline_loop_ns,
        floor_ns,
        ours,
        new_users_ns,
        user.id,
        timed,
        failures,
        native.implementation(),
        python,
    )


def _pure_python_rollout() -> Rollout:
    """The benchmark's flags in a Rollout whose checks are the Python ones."""
    kept = native.speedups
    native.speedups = None
    try:
        return build_rollout()
    finally:
        native.speedups = kept


def _say(progress: bool, what: str) -> None:
    if progress:
        print(f"  timing checks: {what}", file=sys.stderr, flush=True)


# The size of the world ----------------------------------------------------------------------
# Kept apart from the peer comparison above: the same check, in a small and a large world.

WORLD_FLAGS = 10_000
BIG_LIST = 1_000_000
WORLD_RATIO = 1.2  # the target: the large world's check within this of the small one's


@dataclass(frozen=True)
class WorldSize:
    """Nanoseconds per check, best of the repeats, each pair measured in one run."""

    one_flag_ns: float  # flags.active("chat", user) in a Rollout holding only that flag
    many_flags_ns: float  # ... in one holding WORLD_FLAGS flags
    short_list_ns: float  # flags.active(flag, user) for a user listed on a 3-user flag
    long_list_ns: float  # ... on a flag listing BIG_LIST users


def measure_world_size(progress: bool = True) -> WorldSize:
    """Whether a check's cost grows with the world: flags held, users listed on the flag."""
    user = User(id=7, groups=("customers",))  # outside chat's 20%? both worlds alike either way
    one = build_rollout()
    many = build_rollout()
    for i in range(WORLD_FLAGS - 4):  # build_rollout wrote 3 flags besides "chat"
        many.activate_percentage(f"flag-{i:05d}", i % 100)
    _say(progress, f"a flag among 1 vs {WORLD_FLAGS:,} flags")
    one_ns, many_ns = _interleaved('flags.active("chat", user)', one, many, user)
    _say(progress, f"a listed user on a 3-user vs a {BIG_LIST:,}-user flag")
    lists = Rollout()
    lists.activate_users("short", [1, 2, BIG_LIST // 2])
    lists.activate_users("long", range(BIG_LIST))
    listed = User(id=BIG_LIST // 2, groups=("customers",))
    short_ns, long_ns = _interleaved_flags(lists, "short", "long", listed)
    for flags in (one, many, lists):
        flags.close()
    return WorldSize(one_ns, many_ns, short_ns, long_ns)


def _interleaved(stmt: str, small: Rollout, large: Rollout, user: User) -> tuple[float, float]:
    """The best of two interleaved rounds each, so a slow moment hits both sides alike."""
    small_ns: list[float] = []
    large_ns: list[float] = []
    for _ in range(2):
        small_ns.append(ns_per_call(stmt, {"flags": small, "user": user}))
        large_ns.append(ns_per_call(stmt, {"flags": large, "user": user}))
    return min(small_ns), min(large_ns)


def _interleaved_flags(flags: Rollout, small: str, large: str, user: User) -> tuple[float, float]:
    small_ns: list[float] = []
    large_ns: list[float] = []
    namespace = {"flags": flags, "user": user}
    for _ in range(2):
        small_ns.append(ns_per_call(f'flags.active("{small}", user)', namespace))
        large_ns.append(ns_per_call(f'flags.active("{large}", user)', namespace))
    if not flags.active(small, user) or not flags.active(large, user):
        raise RuntimeError("the listed user is not active on both flags")
    return min(small_ns), min(large_ns)
