"""``evaluate`` and ``explain`` answer from one version of the flag: the state it had at some
moment of the call, never a mix of the versions before and after a change.

A call reads the flag (is it defined, on for everybody, off for everybody, which rule decides)
and reads the caller's user or context. The tests here land a change at each read of the
caller's input in turn (an ``id_user_by`` that writes, a context mapping that writes when read),
so that every window between the call's own reads of the flag gets a change in it; then a thread
cycles a flag while another evaluates it, every answer checked against the versions the flag
had during the call.
"""

from __future__ import annotations

from collections.abc import Callable, Iterator, Mapping
from typing import Any

import pytest

from rollout import Rollout
from rollout.testing import FakeClock

from ..versions import answers_while_cycled

Change = Callable[[Rollout], None]


class Armed:
    """A change made at the ``at``-th read of the caller's input (counted in ``reads``)."""

    def __init__(self) -> None:
        self.reads = 0
        self.at = 0
        self.change: Callable[[], None] | None = None

    def read(self) -> None:
        self.reads += 1
        if self.reads == self.at and self.change is not None:
            change, self.change = self.change, None
            change()


class User:
    """A user object whose attribute reads (its id is read with ``id_user_by``) are ``armed``'s."""

    def __init__(self, armed: Armed | None, uid: str, plan: str) -> None:
        self.armed = armed
        self.id = uid
        self._plan = plan

    @property
    def plan(self) -> str:
        if self.armed is not None:
            self.armed.read()
        return self._plan


class WritingContext(Mapping[str, Any]):
    """A context mapping each of whose reads is one of ``armed``'s."""

    def __init__(self, armed: Armed, values: dict[str, Any]) -> None:
        self.armed = armed
        self.data = values

    def __getitem__(self, key: str) -> Any:
        self.armed.read()
        return self.data[key]

    def __iter__(self) -> Iterator[str]:
        self.armed.read()
        return iter(self.data)

    def __len__(self) -> int:
        self.armed.read()
        return len(self.data)


@pytest.fixture
def armed() -> Armed:
    return Armed()


@pytest.fixture
def flags(clock: FakeClock, armed: Armed) -> Iterator[Rollout]:
    def id_of(user: User) -> str:
        armed.read()
        return user.id

    with Rollout(clock=clock, id_user_by=id_of) as rollout:
        rollout.define_group("beta", lambda user: getattr(user, "plan", None) == "beta")
        yield rollout


def targeted(flags: Rollout) -> None:
    flags.activate_percentage("f", 30)
    flags.activate_group("f", "beta")
    flags.activate_user("f", "u1")


def defined(flags: Rollout) -> None:
    beta = {"==": [{"var": "plan"}, "beta"]}
    flags.define_flag("f", {"a": "A", "b": "B"}, default_variant="a", targeting={"if": [beta, "b"]})


# The flag's first version, and the changes that make a version whose answers differ.
STARTS: dict[str, Change] = {"targeted": targeted, "defined": defined}
CHANGES: dict[str, Change] = {
    "deactivate": lambda flags: flags.deactivate("f"),
    "activate": lambda flags: flags.activate("f"),
    "define": lambda flags: flags.define_flag("f", {"x": "X"}, default_variant="x"),
    "disable": lambda flags: flags.disable_flag("f"),
    "delete": lambda flags: flags.delete("f"),
}
PAIRS = [
    *(("targeted", change) for change in ("deactivate", "activate", "define", "delete")),
    *(("defined", change) for change in ("define", "disable", "delete")),
]

# The caller's input: a user object (its id read with id_user_by), and context mappings.
INPUTS: dict[str, Callable[[Armed], object]] = {
    "user": lambda armed: User(armed, "u7", "beta"),
    "context": lambda armed: WritingContext(armed, {"targetingKey": "u7", "plan": "beta"}),
    "keyless context": lambda armed: WritingContext(armed, {"plan": "beta"}),
}


def answers_with_a_change_at_each_read(
    flags: Rollout,
    armed: Armed,
    *,
    start: Change,
    change: Change,
    ask: Callable[[object], object],
    made: Callable[[Armed], object],
) -> list[tuple[object, object, object]]:
    """For each read the call makes of its input: the answer before the change, the answer of
    the call that read made the change in, and the answer after."""
    start(flags)
    armed.reads = 0
    ask(made(armed))
    reads = armed.reads
    assert reads > 0, "the call read nothing of its input"
    seen: list[tuple[object, object, object]] = []
    for at in range(1, reads + 1):
        if flags.exists("f"):
            flags.delete("f")
        start(flags)
        before = ask(made(armed))
        armed.reads, armed.at = 0, at
        armed.change = lambda: change(flags)
        during = ask(made(armed))
        assert armed.change is None, f"the change was not made inside the call (read {at})"
        seen.append((before, during, ask(made(armed))))
    return seen


def explained(flags: Rollout, context: object) -> tuple[object, ...]:
    why = flags.explain("f", context)
    return (why.active, why.reason, why.group, why.message)


# The calls asked: evaluate, and explain, which reads the flag after the input (evaluate, before).
CALLS: dict[str, Callable[[Rollout, object], object]] = {
    "evaluate": lambda flags, context: flags.evaluate("f", context),
    "explain": explained,
}


@pytest.mark.parametrize("call", CALLS)
@pytest.mark.parametrize("made", INPUTS)
@pytest.mark.parametrize("case", PAIRS, ids="-".join)
def test_a_change_made_while_the_call_reads_its_input_is_no_part_of_its_answer(
    flags: Rollout, armed: Armed, case: tuple[str, str], made: str, call: str
) -> None:
    start, change = case
    seen = answers_with_a_change_at_each_read(
        flags,
        armed,
        start=STARTS[start],
        change=CHANGES[change],
        ask=lambda context: CALLS[call](flags, context),
        made=INPUTS[made],
    )
    for read, (before, during, after) in enumerate(seen, 1):
        assert before != after
        assert during in (before, after), f"read {read}"


# A cycle of writes that ends where it began: each write is one version of "f".
CYCLE: list[Change] = [
    lambda flags: flags.deactivate("f"),
    lambda flags: flags.activate("f"),
    lambda flags: flags.exclude_user("f", "user-1"),
    lambda flags: flags.deactivate("f"),
    lambda flags: flags.activate_user("f", "u1"),
    defined,
    lambda flags: flags.disable_flag("f"),
    lambda flags: flags.delete("f"),
    lambda flags: flags.activate_percentage("f", 30),
    lambda flags: flags.activate_group("f", "beta"),
    lambda flags: flags.activate_user("f", "u1"),
]
CONTEXTS: list[object] = [
    None,
    "u1",
    User(None, "u7", "beta"),
    {"targetingKey": "u7", "plan": "beta"},
    {"plan": "beta"},
    *(f"user-{i}" for i in range(6)),
]


def evaluations(flags: Rollout) -> list[object]:
    return [flags.evaluate("f", context) for context in CONTEXTS]


def test_evaluations_while_a_thread_cycles_the_flag_are_each_of_one_version(
    flags: Rollout,
) -> None:
    targeted(flags)
    assert answers_while_cycled(flags, CYCLE, lambda: evaluations(flags), rounds=100) == []
