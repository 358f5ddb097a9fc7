"""Property tests of the replicated state: replicas converge, whatever happens.

Replicas are real ``Rollout`` objects with skewed fake clocks; they exchange ``export()`` blobs,
which is exactly what the transports of later issues carry.
"""

from __future__ import annotations

import json
from typing import Any

from hypothesis import given, settings
from hypothesis import strategies as st

from rollout import Rollout, UnknownFlagError
from rollout._client.sync_port import SyncPort
from rollout.testing import FakeClock

FLAGS = ["chat", "beta"]
USERS = ["1", "2", "3", 42]
GROUPS = ["admins", "staff"]

Operation = tuple[str, tuple[Any, ...]]

operations: st.SearchStrategy[Operation] = st.one_of(
    st.tuples(st.just("activate"), st.tuples(st.sampled_from(FLAGS))),
    st.tuples(st.just("deactivate"), st.tuples(st.sampled_from(FLAGS))),
    st.tuples(st.just("delete"), st.tuples(st.sampled_from(FLAGS))),
    st.tuples(
        st.sampled_from(["activate_user", "deactivate_user", "exclude_user", "include_user"]),
        st.tuples(st.sampled_from(FLAGS), st.sampled_from(USERS)),
    ),
    st.tuples(
        st.just("set_users"),
        st.tuples(st.sampled_from(FLAGS), st.lists(st.sampled_from(USERS), max_size=3)),
    ),
    st.tuples(
        st.sampled_from(["activate_group", "deactivate_group"]),
        st.tuples(st.sampled_from(FLAGS), st.sampled_from(GROUPS)),
    ),
    st.tuples(
        st.sampled_from(["activate_percentage", "activate_percentage_of_time"]),
        st.tuples(st.sampled_from(FLAGS), st.sampled_from([0, 5, 20, 50.5, 100])),
    ),
    st.tuples(
        st.just("set_feature_data"),
        st.tuples(
            st.sampled_from(FLAGS),
            st.dictionaries(st.sampled_from(["a", "b"]), st.integers(0, 3), max_size=2),
        ),
    ),
    st.tuples(st.just("clear_feature_data"), st.tuples(st.sampled_from(FLAGS))),
)

VARIANTS = ["a", "b", "c"]
RULES = [{"==": [{"var": "plan"}, "pro"]}, {"in": [{"var": "x"}, [1, 2]]}]

#: Writes of definitions and named rules (each register merged on its own).
definition_operations: st.SearchStrategy[Operation] = st.one_of(
    st.tuples(
        st.just("define_flag"),
        st.tuples(
            st.sampled_from(FLAGS),
            st.dictionaries(st.sampled_from(VARIANTS), st.integers(0, 3), min_size=1),
        ),
    ),
    st.tuples(
        st.just("set_variant"),
        st.tuples(st.sampled_from(FLAGS), st.sampled_from(VARIANTS), st.integers(0, 3)),
    ),
    st.tuples(
        st.just("remove_variant"), st.tuples(st.sampled_from(FLAGS), st.sampled_from(VARIANTS))
    ),
    st.tuples(
        st.just("set_default_variant"),
        st.tuples(st.sampled_from(FLAGS), st.sampled_from([None, *VARIANTS])),
    ),
    st.tuples(
        st.just("set_targeting"),
        st.tuples(st.sampled_from(FLAGS), st.sampled_from([None, {"$ref": "admins"}])),
    ),
    st.tuples(st.sampled_from(["enable_flag", "disable_flag"]), st.tuples(st.sampled_from(FLAGS))),
    st.tuples(st.just("define_rule"), st.tuples(st.sampled_from(GROUPS), st.sampled_from(RULES))),
)

# A step: a replica does an operation, or the clocks move, or one replica merges another.
steps = st.one_of(
    st.tuples(st.just("op"), st.integers(0, 2), operations),
    st.tuples(st.just("tick"), st.integers(0, 2), st.integers(0, 3)),
    st.tuples(st.just("sync"), st.integers(0, 2), st.integers(0, 2)),
)
#: Steps that also edit definitions and named rules. (A rule's change changes the answers of
#: the flags that use it without changing their state, so the test of what merge reports as
#: changed keeps to the steps above.)
steps_with_definitions = st.one_of(
    steps, st.tuples(st.just("op"), st.integers(0, 2), definition_operations)
)

#: Clock offsets of the three replicas: any two are less than the default max_offset (30 s)
#: apart, so no register is rejected as "from the future".
SKEWS = st.tuples(*(st.integers(-14_000, 14_000) for _ in range(3)))


def make_replicas(skews: tuple[int, ...]) -> tuple[list[Rollout], list[FakeClock]]:
    clocks = [FakeClock(1_700_000_000_000 + skew) for skew in skews]
    return [Rollout(clock=clock) for clock in clocks], clocks


REMOVALS = {
    "deactivate",
    "delete",
    "deactivate_user",
    "include_user",
    "deactivate_group",
    "clear_feature_data",
}


#: Definition edits refused (ValueError) when the flag lacks what they change, or for the
#: default variant's removal; nothing is written then.
REFUSABLE = {
    "remove_variant",
    "set_default_variant",
    "set_targeting",
    "enable_flag",
    "disable_flag",
}


def do(flags: Rollout, name: str, args: tuple[Any, ...]) -> bool:
    """Make the operation; False when it was refused: a removal from a flag that is not there,
    or an edit of a definition the flag does not have."""
    if name == "define_flag":
        flag, variants = args
        flags.define_flag(flag, variants, default_variant=min(variants))
        return True
    if name == "define_rule":
        flags.define_rule(*args)
        return True
    existed = flags.exists(args[0])
    before = flags.export()
    try:
        getattr(flags, name)(*args)
    except UnknownFlagError:
        assert name in REMOVALS | REFUSABLE
        assert not existed
        return False
    except ValueError:
        assert name in REFUSABLE | {"set_variant"}
        assert flags.export() == before
        return False
    return True


def run(replicas: list[Rollout], clocks: list[FakeClock], script: list[Any]) -> None:
    for kind, a, b in script:
        if kind == "op":
            name, args = b
            do(replicas[a], name, args)
        elif kind == "tick":
            clocks[a].advance(b)
        else:
            replicas[b].merge(replicas[a].export())


def visible(flags: Rollout) -> list[dict[str, Any]]:
    return [flags.get(name).to_dict() for name in flags.features()]


def fresh() -> Rollout:
    # Far enough ahead that nothing it merges is "from the future".
    return Rollout(clock=FakeClock(1_800_000_000_000))


@settings(max_examples=150, deadline=None)
@given(skews=SKEWS, script=st.lists(steps_with_definitions, max_size=40))
def test_replicas_that_exchange_exports_end_identical(skews: Any, script: Any) -> None:
    replicas, clocks = make_replicas(skews)
    run(replicas, clocks, script)
    # Gossip until quiet: every replica merges every other one, twice over.
    for _ in range(2):
        for source in replicas:
            for target in replicas:
                target.merge(source.export())
    exports = {r.export() for r in replicas}
    assert len(exports) == 1
    assert visible(replicas[0]) == visible(replicas[1]) == visible(replicas[2])
    assert replicas[0].rules() == replicas[1].rules() == replicas[2].rules()
    # And the compiled answers agree: each replica recompiled what the merges changed.
    context = {"targetingKey": "1", "plan": "pro", "x": 2}
    for flag in (f for f in FLAGS if replicas[0].get(f).has_definition):  # (no random draw)
        answers = {r.evaluate(flag, context) for r in replicas}
        assert len(answers) == 1, answers
    digests = [SyncPort(r._pipeline).digests() for r in replicas]  # what anti-entropy compares
    assert digests[0] == digests[1] == digests[2]


@settings(max_examples=150, deadline=None)
@given(
    skews=SKEWS,
    script=st.lists(steps_with_definitions, max_size=40),
    order=st.permutations([0, 1, 2]),
)
def test_merge_is_commutative_associative_and_idempotent(
    skews: Any, script: Any, order: list[int]
) -> None:
    replicas, clocks = make_replicas(skews)
    run(replicas, clocks, script)
    a, b, c = (r.export() for r in replicas)

    def merged(*blobs: bytes) -> Rollout:
        target = fresh()
        for blob in blobs:
            target.merge(blob)
        return target

    reference = merged(a, b, c)
    permuted = merged(*[(a, b, c)[i] for i in order])
    repeated = merged(b, b, a, c, a, c, b)
    left = merged(merged(a, b).export(), c)  # (a ⊔ b) ⊔ c
    right = merged(a, merged(b, c).export())  # a ⊔ (b ⊔ c)
    for other in (permuted, repeated, left, right):
        assert other.export() == reference.export()
        assert visible(other) == visible(reference)
        assert other.rules() == reference.rules()


@settings(max_examples=100, deadline=None)
@given(skews=SKEWS, script=st.lists(steps, max_size=30))
def test_merge_reports_exactly_the_flags_whose_visible_state_changed(
    skews: Any, script: Any
) -> None:
    replicas, clocks = make_replicas(skews)
    run(replicas, clocks, script)
    target = fresh()
    target.merge(replicas[0].export())
    before = {name: target.get(name).to_dict() for name in FLAGS if target.exists(name)}
    changed = target.merge(replicas[1].export())
    after = {name: target.get(name).to_dict() for name in FLAGS if target.exists(name)}
    assert changed == {n for n in FLAGS if before.get(n) != after.get(n)}
    assert target.merge(replicas[1].export()) == set()  # again: nothing new


def test_a_write_that_follows_another_wins_even_from_a_clock_an_hour_behind() -> None:
    hour = 3_600_000
    ahead_clock, behind_clock = FakeClock(1_700_000_000_000), FakeClock(1_700_000_000_000 - hour)
    # The receiver behind must trust timestamps an hour ahead of it to hear the first write
    # at all (the default max_offset would reject them: see the next test).
    first = Rollout(clock=ahead_clock, max_offset=2 * 3600)
    second = Rollout(clock=behind_clock, max_offset=2 * 3600)
    for round_ in range(20):
        first.activate_percentage("chat", 10)
        second.merge(first.export())  # second has now seen first's write...
        second.activate_percentage("chat", 50)  # ...so this one follows it causally
        first.merge(second.export())
        for replica in (first, second):
            assert replica.get("chat").percentage == 50, f"round {round_}"
        second.activate_user("chat", round_)
        first.merge(second.export())
        first.deactivate_user("chat", round_)  # follows the add: must remove the user
        second.merge(first.export())
        assert not second.user_in_active_users("chat", round_)
        assert not first.user_in_active_users("chat", round_)


def _walls(blob: bytes) -> set[int]:
    flags = json.loads(blob)["flags"]
    return {register[0] for registers in flags.values() for register in registers.values()}


def test_registers_from_a_clock_an_hour_ahead_are_rejected_and_counted() -> None:
    hour = 3_600_000
    clock = FakeClock(1_700_000_000_000)
    receiver = Rollout(clock=clock)
    receiver.activate_user("chat", 1)
    ahead = Rollout(clock=FakeClock(1_700_000_000_000 + hour))
    ahead.activate_percentage("chat", 100)
    ahead.activate_users("other", [1, 2, 3])
    before = receiver.export()

    assert receiver.merge(ahead.export()) == set()

    assert receiver.export() == before
    assert receiver.features() == ["chat"]
    rejected = sum(len(registers) for registers in json.loads(ahead.export())["flags"].values())
    assert receiver.stats()["registers_rejected"] == rejected
    # The clock did not jump an hour: the next local write carries this machine's time.
    receiver.activate_user("chat", 2)
    assert max(_walls(receiver.export())) == clock.now_ms


def test_a_register_within_max_offset_is_accepted_and_advances_the_clock() -> None:
    clock = FakeClock(1_700_000_000_000)
    receiver = Rollout(clock=clock, max_offset=10)
    sender = Rollout(clock=FakeClock(1_700_000_000_000 + 9_000))
    sender.activate("chat")
    assert receiver.merge(sender.export()) == {"chat"}
    receiver.deactivate("chat")  # follows the merge, so it must win despite the slower clock
    sender.merge(receiver.export())
    assert sender.active("chat") is False
    assert receiver.stats()["registers_rejected"] == 0


def test_concurrent_activate_user_of_different_users_on_two_replicas_keeps_both() -> None:
    one, two = Rollout(clock=FakeClock()), Rollout(clock=FakeClock())
    one.activate_user("chat", "alice")
    two.activate_user("chat", "bob")
    one.merge(two.export())
    two.merge(one.export())
    for replica in (one, two):
        assert replica.get("chat").users == {"alice", "bob"}


def test_deactivate_hides_users_added_before_it_but_not_after_it() -> None:
    clock_a, clock_b = FakeClock(1_000_000), FakeClock(1_000_000)
    a, b = Rollout(clock=clock_a), Rollout(clock=clock_b)
    b.activate_user("chat", "early")  # at 1_000_000
    clock_a.advance(5)
    a.set("chat", False)  # at 1_000_005, concurrent with both of b's writes
    clock_b.advance(10)
    b.activate_user("chat", "late")  # at 1_000_010
    a.merge(b.export())
    b.merge(a.export())
    for replica in (a, b):
        assert replica.get("chat").users == {"late"}


def test_activate_deactivate_cycles_do_not_grow_the_state() -> None:
    flags = Rollout(clock=FakeClock())

    def cycle(times: int) -> int:
        for i in range(times):
            flags.activate_users("chat", [i, i + 1])
            flags.exclude_user("chat", i)
            flags.activate_group("chat", "admins")
            flags.deactivate("chat")
        return len(flags.export())

    # 4 writes a cycle: after 25 cycles the history holds its 100 events and stops growing.
    # The second run writes the same ids, so the events it keeps are as long as the first's.
    after_first = cycle(300)
    assert len(flags.history("chat")) == 100
    assert cycle(300) <= after_first + 40  # only the timestamps' digits may grow


def test_defaults_lose_to_any_real_write_and_a_restart_does_not_reset_the_cluster() -> None:
    shared: list[bytes] = []
    first = Rollout(clock=FakeClock(), defaults={"new_checkout": True})
    assert first.active("new_checkout") is True
    assert json.loads(first.export())["flags"] == {}  # defaults are never replicated
    operator = Rollout(clock=FakeClock(1_700_000_000_500))
    operator.activate_percentage("new_checkout", 5)
    shared.append(operator.export())
    first.merge(shared[-1])
    assert first.active("new_checkout") is False  # the real write wins over the default
    assert first.get("new_checkout").percentage == 5
    restarted = Rollout(clock=FakeClock(), defaults={"new_checkout": True})
    restarted.merge(first.export())
    assert restarted.get("new_checkout").percentage == 5
    operator.merge(restarted.export())
    assert operator.get("new_checkout").percentage == 5  # the restart reset nothing


_MEMBERSHIP = {
    "activate_user": ("users", True),
    "deactivate_user": ("users", False),
    "exclude_user": ("excluded_users", True),
    "include_user": ("excluded_users", False),
    "activate_group": ("groups", True),
    "deactivate_group": ("groups", False),
}


class Model:
    """The obvious, sequential meaning of each operation: what one replica must show."""

    def __init__(self) -> None:
        self.flags: dict[str, dict[str, Any]] = {}

    def _flag(self, name: str) -> dict[str, Any]:
        flag = self.flags.get(name)
        if flag is None or not flag["exists"]:
            data = flag["data"] if flag is not None else {}
            flag = self.flags[name] = self._empty(data)
        return flag

    @staticmethod
    def _empty(data: dict[str, Any]) -> dict[str, Any]:
        return {
            "exists": True,
            "percentage": 0.0,
            "percentage_of_time": 0.0,
            "users": set(),
            "excluded_users": set(),
            "groups": set(),
            "data": data,
        }

    def apply(self, name: str, args: tuple[Any, ...]) -> None:
        flag_name, *rest = args
        if name == "delete":
            self.flags[flag_name] = {**self._empty({}), "exists": False}
            return
        flag = self._flag(flag_name)
        value: Any = rest[0] if rest else None
        if name == "activate":
            flag["percentage"] = 100.0
        elif name == "deactivate":
            flag.update(self._empty(flag["data"]))
        elif name in ("activate_percentage", "activate_percentage_of_time"):
            key = "percentage" if name == "activate_percentage" else "percentage_of_time"
            flag[key] = float(value)
        elif name == "set_users":
            flag["users"] = {str(user) for user in value}
        elif name == "set_feature_data":
            flag["data"] = {**flag["data"], **value}
        elif name == "clear_feature_data":
            flag["data"] = {}
        else:
            key, adds = _MEMBERSHIP[name]
            (flag[key].add if adds else flag[key].discard)(str(value))

    def visible(self) -> list[dict[str, Any]]:
        return [
            {
                "name": name,
                **{k: sorted(v) if isinstance(v, set) else v for k, v in f.items()},
            }
            for name, f in sorted(self.flags.items())
            if f["exists"]
        ]


@settings(max_examples=200, deadline=None)
@given(script=st.lists(operations, max_size=30))
def test_one_replica_behaves_like_the_sequential_model(script: list[Operation]) -> None:
    flags, model = Rollout(clock=FakeClock()), Model()
    for name, args in script:
        if do(flags, name, args):
            model.apply(name, args)
    expected = [{k: v for k, v in f.items() if k != "exists"} for f in model.visible()]
    assert visible(flags) == expected
    copy = fresh()
    copy.merge(flags.export())
    assert visible(copy) == expected
