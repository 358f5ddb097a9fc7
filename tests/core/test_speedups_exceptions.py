"""The C check (rollout._core._speedups) against the Python check: exceptions and costs.

What a caller can see of the exceptions a check handles (the one being handled while a group's
error is reported or an unhashable name is refused, and none left behind), names of every kind
(str subclasses that hash in Python code, Enum members, unhashable) called every way, and the
path a long id takes, which decides what a check of an id from the network costs. Each test
runs both implementations, the Python check being the reference.
"""

from __future__ import annotations

import enum
import logging
import sys
from collections.abc import Iterator
from importlib import import_module
from typing import Any

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from rollout import Rollout
from rollout._core import bucketing

from .test_speedups import made  # skips this module too where the accelerator is not built

IMPLEMENTATIONS = {"C": import_module("rollout._core._speedups"), "Python": None}


@pytest.fixture(params=sorted(IMPLEMENTATIONS))
def flags(request: pytest.FixtureRequest) -> Rollout:
    made_flags = made(IMPLEMENTATIONS[request.param])

    def broken(user: object) -> bool:
        raise RuntimeError("a broken group")

    made_flags.define_group("broken", broken)
    made_flags.activate_group("chat", "broken")
    logging.getLogger("rollout").setLevel(logging.CRITICAL)  # the broken group's first error
    return made_flags


def test_a_group_error_leaves_a_generator_no_exception_of_its_caller(flags: Rollout) -> None:
    # A generator has its own record of the exception being handled: a check that reports a
    # group's error inside it must leave it as it was, not fill it with the caller's.
    def steps() -> Iterator[object]:
        yield flags.active("chat", 3)
        yield sys.exc_info()[1]  # resumed outside any except block: nothing is handled

    walk = steps()
    answers: list[object] = []
    try:
        raise KeyError("the caller's")
    except KeyError:
        answers.append(next(walk))
        answers.append(sys.exc_info()[1])  # the caller's own is still the one handled
    answers.append(next(walk))
    assert answers[0] is False
    assert isinstance(answers[1], KeyError)
    assert answers[2] is None
    assert flags.stats()["group_errors"] == 1


@pytest.mark.parametrize("user", [None, 1])
def test_an_unhashable_name_is_refused_while_its_type_error_is_handled(
    flags: Rollout, user: object
) -> None:
    # The Python check refuses such a name inside ``except TypeError:``, so its error says
    # "during handling of" the failed lookup, as a traceback shows it.
    check: Any = flags.active
    with pytest.raises(TypeError, match="name must be a str") as refused:
        check(["chat"], user)
    assert isinstance(refused.value.__context__, TypeError)
    assert "unhashable" in str(refused.value.__context__)
    assert sys.exc_info() == (None, None, None)


@pytest.mark.parametrize("length", [bucketing.MEMO_ID_LENGTH + 1, 65_536])
def test_a_long_id_is_hashed_by_zlib_as_in_the_python_check(flags: Rollout, length: int) -> None:
    # An id from a request can be as long as the request's body (OFREP checks it against every
    # flag). Its bucket is remember_crc32's, by zlib's CRC32, as in the Python check: C computes
    # CRC32 a byte at a time, which cost ten times zlib's for 64 KB, so only for an id as short
    # as those the memo keeps. (Which function computes it is what a profiler sees.)
    flags.activate_percentage("bare", 30)  # the bound that flags.active checks itself
    flags.activate_percentage("chat", 30)
    flags.exclude_user("chat", "someone")  # a flag's own check (UserCheck)
    called: list[str] = []
    for name in ("bare", "chat"):
        ident = "".join([name, "x" * length])[:length]
        called.clear()
        sys.setprofile(lambda frame, event, _: called.append(frame.f_code.co_name))
        try:
            answer = flags.active(name, ident)
        finally:
            sys.setprofile(None)
        assert "remember_crc32" in called, name
        assert answer is (bucketing.remember_crc32(ident) < bucketing.threshold(30))


class Named(str):
    """A str subclass that hashes and compares in Python code, as a name a caller may pass."""

    def __hash__(self) -> int:
        return str.__hash__(self)

    def __eq__(self, other: object) -> bool:
        return str.__eq__(self, other)


class Flag(enum.Enum):
    chat = "chat"


class StrFlag(enum.StrEnum):
    chat = "chat"


NAMES: list[object] = ["chat", "bare", "none", Named("chat"), Flag.chat, StrFlag.chat, ["chat"]]


def answered(check: Any, name: object, user: object, style: str) -> object:
    try:
        if style == "positional":
            return check(name, user)
        if style == "user=":
            return check(name, user=user)
        return check(name=name, user=user)
    except Exception as error:  # the error, and the one it was raised while handling
        return (type(error), str(error), type(error.__context__))


@settings(max_examples=150)
@given(
    name=st.sampled_from(NAMES),
    user=st.sampled_from([None, 1, "1", "é", 2**70, True, 1.5]),
    style=st.sampled_from(["positional", "user=", "name=, user="]),
)
def test_odd_names_and_keyword_calls_answer_alike(name: object, user: object, style: str) -> None:
    answers = []
    for implementation in IMPLEMENTATIONS.values():
        flags = made(implementation)
        flags.activate_user("chat", 1)
        flags.activate_percentage("bare", 50)
        answers.append(answered(flags.active, name, user, style))
    assert answers[0] == answers[1]


def nesting(implementation: Any) -> tuple[int, bool, int]:
    """How deep a predicate that checks its own flag nests before RecursionError stops it."""
    flags = made(implementation)
    levels = [0]

    def again(user: object) -> bool:
        levels[0] += 1
        return flags.active("chat", user)

    flags.define_group("again", again)
    flags.activate_group("chat", "again")
    logging.getLogger("rollout").setLevel(logging.CRITICAL)
    answer = flags.active("chat", 1)
    return levels[0], answer, flags.stats()["group_errors"]


def test_a_predicate_checking_its_own_flag_nests_as_deep_as_in_python() -> None:
    # RecursionError says no (a group error) at the same depth: the C check charges the
    # recursion limit for the two frames the Python check runs in. Charged once, C nested three
    # times as deep, each level taking C stack (a thread of 512 KB overflowed: a crash).
    assert nesting(IMPLEMENTATIONS["C"]) == nesting(IMPLEMENTATIONS["Python"])
