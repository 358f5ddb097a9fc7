"""Property: a Rollout changed step by step answers, through every reading surface, exactly what
a fresh Rollout built from its export answers.

The incremental Rollout keeps what it can between writes: a flag's compiled check (kept, not
rebuilt, by a write that only lists or unlists users or excludes or includes them: replica
``_shares_sets``), the check's decision function (built once per check), its ``Feature``
snapshot, and an initialized OpenFeature provider's views and resolution functions (keyed by
the identity of the check). The fresh one has nothing cached. After every step, ``active``,
``explain``, ``get``, ``evaluate``, ``user_in_active_users``, ``feature_states`` and the
provider's resolutions (value, reason, variant, metadata) must be the same on both, for every
flag and user; also read from inside a subscriber told before the provider (the moment a reader
on another thread may read between the change and the provider's notice of it).

The steps are random writes (every kind of targeting, many users at once, data, definitions,
deletes), merges of another replica's export (its own writes, and a deactivate that hides some
of this replica's users and not others), and a watermark moved with nothing visible changed,
which builds the flag's sets anew. Draws of a percentage of the time are made the same on both
sides by seeding ``random`` before each read.
"""

from __future__ import annotations

import functools
import random
from collections.abc import Callable
from typing import Any

from hypothesis import example, given, settings
from hypothesis import strategies as st
from openfeature.evaluation_context import EvaluationContext
from openfeature.flag_evaluation import FlagResolutionDetails

from rollout import Rollout
from rollout._core.clock import Timestamp
from rollout._core.codec import encode
from rollout._core.keys import RESET
from rollout._core.state import Register
from rollout.openfeature import RolloutProvider
from rollout.testing import FakeClock

FLAGS = ["f", "g"]
USERS = ["u1", "u2", "u3"]
READ_USERS = [*USERS, "u4"]  # u4 is never written: only a percentage or a group turns it on
ADMINS = {"u1", "u4"}
START = 1_700_000_000_000

Operation = tuple[str, tuple[Any, ...]]

_flag = st.sampled_from(FLAGS)
_user = st.sampled_from(USERS)
_users = st.lists(_user, min_size=1, max_size=3, unique=True)

#: The writes that may keep a flag's compiled check: users listed or unlisted, excluded or not.
_member_writes: st.SearchStrategy[Operation] = st.one_of(
    st.tuples(
        st.sampled_from(["activate_user", "deactivate_user", "exclude_user", "include_user"]),
        st.tuples(_flag, _user),
    ),
    st.tuples(
        st.sampled_from(
            ["activate_users", "deactivate_users", "exclude_users", "include_users", "set_users"]
        ),
        st.tuples(_flag, _users),
    ),
)

#: Writes made to the Rollout under test, or (``other:``) to the other replica.
_writes: st.SearchStrategy[Operation] = st.one_of(
    st.tuples(st.sampled_from(["activate", "deactivate", "delete"]), st.tuples(_flag)),
    _member_writes,
    st.tuples(
        st.sampled_from(["activate_group", "deactivate_group"]),
        st.tuples(_flag, st.sampled_from(["all", "admins", "vip", "undefined"])),
    ),
    st.tuples(st.just("activate_percentage"), st.tuples(_flag, st.sampled_from([0, 30, 100]))),
    st.tuples(st.just("activate_percentage_of_time"), st.tuples(_flag, st.sampled_from([0, 30]))),
    st.tuples(
        st.just("set"),
        st.tuples(_flag, st.booleans()),
    ),
    st.tuples(
        st.just("set_feature_data"),
        st.tuples(
            _flag,
            st.sampled_from(
                [{"owner": "web"}, {"value": "new", "off_value": "old"}, {"variant": "v2"}]
            ),
        ),
    ),
    st.tuples(st.just("clear_feature_data"), st.tuples(_flag)),
    st.tuples(
        st.just("define_flag"),
        st.tuples(_flag, st.just({"on": True, "off": False})),
    ),
)

# The member writes drawn more often than the rest: a check is kept only across a run of them.
operations: st.SearchStrategy[Operation] = st.one_of(
    _member_writes,
    _member_writes,
    _writes,
    _writes.map(lambda op: (f"other:{op[0]}", op[1])),
    st.tuples(st.just("merge_other"), st.just(())),
    st.tuples(st.just("old_reset"), st.tuples(_flag)),
)


def _id(user: object) -> object:
    return user if isinstance(user, str) else getattr(user, "id", None)


def _admins(user: object) -> bool:
    return _id(user) in ADMINS


def _rollout(clock: FakeClock, randomize: Any) -> Rollout:
    flags = Rollout(clock=clock, randomize_percentage=randomize)
    flags.define_group("admins", _admins)
    return flags


def _outcome(read: Callable[[], Any], seed: int) -> Any:
    random.seed(seed)  # the same draw of a percentage of the time on both sides
    try:
        answer = read()
    except Exception as exc:  # an error is an answer too (an unknown flag, a missing key)
        return ("raised", type(exc).__name__, str(exc))
    if isinstance(answer, FlagResolutionDetails):
        return ("ok", _details(answer))
    return ("ok", answer)


def _details(details: Any) -> tuple[Any, ...]:
    return (
        details.value,
        details.reason,
        details.variant,
        dict(details.flag_metadata or {}),
        details.error_code,
        details.error_message,
    )


def _explained(flags: Rollout, flag: str, user: str) -> dict[str, Any]:
    return flags.explain(flag, user).to_dict()


def _evaluated(flags: Rollout, flag: str, user: str) -> tuple[Any, ...]:
    return tuple(flags.evaluate(flag, {"targetingKey": user}))


def _reads(flags: Rollout, provider: RolloutProvider, flag: str) -> dict[str, Callable[[], Any]]:
    """The reads of one flag: through the Rollout and through the provider, with and without
    a user."""
    reads: dict[str, Callable[[], Any]] = {
        "get": lambda: flags.get(flag).to_dict(),
        "exists": lambda: flags.exists(flag),
        "active()": lambda: flags.active(flag),
        "explain()": lambda: flags.explain(flag).to_dict(),
        "of keyless": functools.partial(provider.resolve_boolean_details, flag, False),
    }
    of = provider
    for user in READ_USERS:
        context = EvaluationContext(user, {"plan": "pro" if user == "u2" else "free"})
        reads |= {
            f"active {user}": functools.partial(flags.active, flag, user),
            f"explain {user}": functools.partial(_explained, flags, flag, user),
            f"listed {user}": functools.partial(flags.user_in_active_users, flag, user),
            f"evaluate {user}": functools.partial(_evaluated, flags, flag, user),
            f"of bool {user}": functools.partial(of.resolve_boolean_details, flag, False, context),
            f"of str {user}": functools.partial(of.resolve_string_details, flag, "-", context),
            f"of value {user}": functools.partial(of.resolve_value_details, flag, context),
        }
    return reads


def observe(flags: Rollout, provider: RolloutProvider) -> dict[str, Any]:
    """Every answer of every reading surface, for every flag and user."""
    seen: dict[str, Any] = {"features": _outcome(flags.features, 0)}
    seed = 0
    for flag in FLAGS:
        for name, read in _reads(flags, provider, flag).items():
            seed += 1
            seen[f"{flag} {name}"] = _outcome(read, seed)
    for user in READ_USERS:
        seed += 1
        seen[f"states {user}"] = _outcome(functools.partial(flags.feature_states, user), seed)
    return seen


def fresh_answers(flags: Rollout, clock: FakeClock, randomize: Any) -> dict[str, Any]:
    """The answers of a Rollout that caches nothing yet: one built from ``flags``'s export."""
    with _rollout(clock, randomize) as fresh:
        fresh.merge(flags.export())
        provider = RolloutProvider(fresh, status_interval=None)
        provider.initialize(EvaluationContext())
        try:
            return observe(fresh, provider)
        finally:
            provider.shutdown()


def run(flags: Rollout, other: Rollout, clock: FakeClock, operation: Operation) -> None:
    name, arguments = operation
    clock.advance(1)
    if name == "merge_other":
        flags.merge(other.export())
    elif name == "old_reset":
        # A watermark older than every register (another replica's deactivate of long ago): it
        # moves, hides nothing, and the flag's sets are built anew.
        stamp = Timestamp(START - 1_000, 0, 1)
        flags.merge(encode({arguments[0]: {RESET: Register(stamp, None)}}))
    else:
        target = flags
        if name.startswith("other:"):
            target, name = other, name.removeprefix("other:")
        write = getattr(target, name)
        if name == "define_flag":
            write = functools.partial(write, default_variant="off")
        try:
            write(*arguments)
        except LookupError:  # a removal from a flag that does not exist: nothing written
            pass
        except ValueError:  # a write refused (a flag with a definition takes no users...)
            pass


@settings(max_examples=200, deadline=None)
# The cases the rule for keeping a check is about, always run: the first user listed and the
# last unlisted, the first and last excluded, sets built anew by a watermark that moved with
# nothing visible changed (then a member changed in place), a deactivate and a re-activate.
@example(
    False, [("activate", ("f",)), ("activate_user", ("f", "u1")), ("deactivate_user", ("f", "u1"))]
)
@example(
    False,
    [
        ("activate_percentage", ("f", 30)),
        ("exclude_user", ("f", "u1")),
        ("exclude_user", ("f", "u2")),
        ("include_users", ("f", ["u1", "u2"])),
    ],
)
@example(
    False,
    [
        ("activate_user", ("f", "u1")),
        ("old_reset", ("f",)),
        ("activate_user", ("f", "u2")),
        ("deactivate_user", ("f", "u1")),
    ],
)
@example(
    False,
    [
        ("exclude_user", ("f", "u1")),
        ("old_reset", ("f",)),
        ("exclude_user", ("f", "u2")),
        ("include_user", ("f", "u1")),
    ],
)
@example(
    False,
    [
        ("activate_users", ("f", ["u1", "u2"])),
        ("other:deactivate", ("f",)),
        ("activate_user", ("f", "u3")),
        ("merge_other", ()),
        ("activate_user", ("f", "u1")),
        ("exclude_user", ("f", "u2")),
        ("deactivate", ("f",)),
        ("activate_user", ("f", "u2")),
    ],
)
@given(st.sampled_from([False, True, "ruby"]), st.lists(operations, min_size=1, max_size=25))
def test_every_answer_is_a_fresh_replicas(randomize: Any, steps: list[Operation]) -> None:
    clock = FakeClock(START)
    with _rollout(clock, randomize) as flags, _rollout(clock, randomize) as other:
        flags.define_rule("vip", {"==": [{"var": "plan"}, "pro"]})
        provider = RolloutProvider(flags, status_interval=None)
        # Told of a change before the provider is, so reads there see its views before they
        # are dropped: a reader on another thread can read at that moment.
        window: list[dict[str, Any]] = []
        flags.subscribe(lambda _names: window.append(observe(flags, provider)))
        provider.initialize(EvaluationContext())  # views cached: every change must drop them
        observe(flags, provider)  # caches filled before the first step
        before = fresh_answers(flags, clock, randomize)
        for index, operation in enumerate(steps):
            window.clear()
            checks = dict(flags._checks)
            run(flags, other, clock, operation)
            expected = fresh_answers(flags, clock, randomize)
            # The flags whose compiled check the step kept: the provider's views of them are
            # then told stale by the subscription alone (which the reads in the window precede).
            kept = [f for f in FLAGS if f in checks and flags._checks.get(f) is checks[f]]
            for during in window:  # a concurrent reader sees the flag before or after the step
                for key, answer in during.items():
                    if key.split()[0] in kept:
                        assert answer in (before[key], expected[key]), (index, operation, key)
            assert observe(flags, provider) == expected, (index, operation)
            before = expected
        provider.shutdown()
