"""The C accelerator of the flag check (rollout._core._speedups) against the Python check.

Every other test runs with the implementation the process has (the C one where it is built;
``make test`` runs the check's tests again with ROLLOUT_PURE_PYTHON=1). These put the two side
by side in one process: the same writes to a Rollout of each, then the same checks, which must
give the same answers, raise the same errors, call the same predicates in the same order and
count the same group errors, for every flag shape, every way of reading an id and every kind of
id (ints past 64 bits, non-ASCII and unencodable strs, bools, floats, raising properties).
"""

from __future__ import annotations

import gc
import inspect
import logging
import os
import random
import subprocess
import sys
import threading
import zlib
from collections.abc import Callable, Iterator
from typing import Any

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from rollout import Rollout
from rollout._core import bucketing, native

try:
    from rollout._core import _speedups
except ImportError:  # not built: a user without a C compiler
    if os.environ.get("CI") == "true":
        raise  # CI builds it (make test): its absence there is a failure, not a skip
    pytest.skip("the C accelerator is not built here", allow_module_level=True)


class Stop(BaseException):
    """Not an Exception: a predicate raising it stops the check, in both implementations."""


class User:
    def __init__(self, ident: object, groups: tuple[str, ...] = ()) -> None:
        self.id = ident
        self.groups = groups


class RaisingId:
    @property
    def id(self) -> int:
        raise LookupError("no id today")


class Flaky:
    """Truthy or not by its id; its __bool__ raises for some ids (a broken predicate's answer)."""

    def __init__(self, value: int) -> None:
        self.value = value

    def __bool__(self) -> bool:
        if self.value % 7 == 0:
            raise ValueError("neither yes nor no")
        return self.value % 2 == 0


def number(user: Any) -> int:
    ident = getattr(user, "id", user)
    try:
        return int(ident) if not isinstance(ident, str) else len(ident)
    except (TypeError, ValueError, OverflowError):
        return 1


def made(implementation: Any, **options: Any) -> Rollout:
    """A Rollout whose checks are made by ``implementation`` (the module, or None: Python)."""
    kept = native.speedups
    native.speedups = implementation
    try:
        return Rollout(**options)
    finally:
        native.speedups = kept


def twins(**options: Any) -> tuple[Rollout, Rollout, list[tuple[str, str]]]:
    """A C Rollout and a Python Rollout with the same groups; the predicates' calls, in order."""
    asked: list[tuple[str, str]] = []
    fast, slow = made(_speedups, **options), made(None, **options)
    for flags, label in ((fast, "C"), (slow, "Python")):

        def group(name: str, label: str = label) -> Callable[[Any], object]:
            def predicate(user: Any) -> object:
                asked.append((label, name))
                value = number(user)
                if name == "broken" and value % 3 == 0:
                    raise RuntimeError("this predicate is broken for every third user")
                if name == "stopping" and value == 13:
                    raise Stop
                if name == "flaky":
                    return Flaky(value)
                return value % 5 == 0 if name == "fives" else name in getattr(user, "groups", ())

            return predicate

        for name in ("admins", "fives", "broken", "flaky", "stopping"):
            flags.define_group(name, group(name))
    return fast, slow, asked


GROUPS = ["admins", "fives", "broken", "flaky", "stopping", "all", "undefined"]
writes = st.one_of(
    st.tuples(st.sampled_from(["activate", "deactivate"]), st.just(())),
    st.tuples(
        st.sampled_from(["activate_user", "deactivate_user", "exclude_user", "include_user"]),
        st.tuples(st.sampled_from(["1", "2", "3", "13", "-1", "é", "ab", str(2**70)])),
    ),
    st.tuples(
        st.sampled_from(["activate_group", "deactivate_group"]), st.tuples(st.sampled_from(GROUPS))
    ),
    st.tuples(
        st.just("activate_percentage"),
        st.tuples(st.sampled_from([0, 0.5, 20, 33.3, 50, 99, 100])),
    ),
    # Only 0 and 100: between them the answer is a draw.
    st.tuples(st.just("activate_percentage_of_time"), st.tuples(st.sampled_from([0, 100]))),
)

ids = st.one_of(
    st.integers(),
    st.integers(min_value=2**62, max_value=2**66),
    st.integers(min_value=-(2**66), max_value=-(2**62)),
    st.sampled_from([0, -1, 2**63 - 1, -(2**63), 2**63, 2**64, 13]),
    st.text(max_size=12),
    st.text(alphabet=st.characters(codec="ascii"), max_size=40),
    st.sampled_from(["", "1", "é", "\ud800", "caf\udce9", "x" * 200, "13"]),
)
users = st.one_of(
    ids,
    ids.map(User),
    ids.map(lambda ident: User(ident, ("admins",))),
    st.sampled_from([True, False, 1.0, None, b"1", User(None), User(True), User(1.5)]),
    st.just(RaisingId()),
)


def outcome(check: Callable[[], object]) -> object:
    try:
        return check()
    except BaseException as error:  # the same error type and message from both
        return (type(error), str(error))


def compared(
    fast: Rollout, slow: Rollout, asked: list[tuple[str, str]], name: str, user: object
) -> None:
    asked.clear()
    got = outcome(lambda: fast.active(name, user))
    in_c = [group for label, group in asked if label == "C"]
    asked.clear()
    want = outcome(lambda: slow.active(name, user))
    in_python = [group for label, group in asked if label == "Python"]
    assert got == want, (name, user)
    assert in_c == in_python, (name, user)


def written(changes: list[tuple[str, tuple[Any, ...]]], *rollouts: Rollout) -> None:
    """``changes`` made to the flag "chat" of each Rollout, and "bare": only a percentage, the
    flag that ``active`` checks itself."""
    for flags in rollouts:
        flags.activate_percentage("chat", 0)  # defined: a write to an unknown flag is refused
        for method, args in changes:
            getattr(flags, method)("chat", *args)
        flags.activate_percentage("bare", 20)


@pytest.mark.parametrize("randomize", [False, True, "ruby"])
@settings(max_examples=120)
@given(changes=st.lists(writes, max_size=8), checked=st.lists(users, min_size=1, max_size=8))
def test_the_c_check_answers_as_the_python_check(
    randomize: Any, changes: list[tuple[str, tuple[Any, ...]]], checked: list[object]
) -> None:
    fast, slow, asked = twins(randomize_percentage=randomize)
    written(changes, fast, slow)
    for user in checked:
        for name in ("chat", "bare", "unknown"):
            compared(fast, slow, asked, name, user)
    assert fast.stats()["group_errors"] == slow.stats()["group_errors"]
    assert fast.active("chat") == slow.active("chat")  # without a user (no draw: 0 or 100)


@pytest.mark.parametrize(
    "id_user_by",
    ["id", "numerator", lambda user: getattr(user, "id", None), "user_id"],
    ids=["attribute", "attribute-ints-have", "callable", "missing-attribute"],
)
@settings(max_examples=60)
@given(changes=st.lists(writes, max_size=6), checked=st.lists(users, min_size=1, max_size=6))
def test_every_way_of_reading_an_id_answers_alike(
    id_user_by: Any, changes: list[tuple[str, tuple[Any, ...]]], checked: list[object]
) -> None:
    fast, slow, asked = twins(id_user_by=id_user_by)
    written(changes, fast, slow)
    for user in checked:
        compared(fast, slow, asked, "chat", user)
        compared(fast, slow, asked, "bare", user)


@given(ident=st.one_of(st.integers(), st.text()))
def test_the_c_bucket_is_the_python_bucket(ident: int | str) -> None:
    want = bucketing.remember_crc32(ident)
    assert _speedups.crc32_bucket(ident) == want
    if not isinstance(ident, str) or ident.isascii():
        assert want == zlib.crc32(str(ident).encode())  # the formula that never changes


def test_the_c_bucket_refuses_what_no_check_passes_it() -> None:
    with pytest.raises(TypeError, match="exact str or int, got True"):
        _speedups.crc32_bucket(True)


@pytest.mark.parametrize(
    ("call", "message"),
    [
        (lambda check: check(), "missing 1 required positional argument: 'name'"),
        (lambda check: check("chat", 1, 2), "takes from 2 to 3 positional arguments but 4"),
        (lambda check: check("chat", who=1), "unexpected keyword argument 'who'"),
        (lambda check: check("chat", name="chat"), "multiple values for argument 'name'"),
        # As CPython refuses a call of a function: the keywords first, then the count.
        (lambda check: check("chat", 1, 2, who=3), "unexpected keyword argument 'who'"),
        (lambda check: check("chat", 1, 2, user=3), "multiple values for argument 'user'"),
        (lambda check: check.__func__(), "missing 2 required positional arguments: 'owner' and"),
    ],
)
def test_a_wrong_call_is_refused_alike(call: Callable[[Any], object], message: str) -> None:
    fast, slow, _ = twins()
    for flags in (fast, slow):
        with pytest.raises(TypeError, match=message):
            call(flags.active)


def test_the_c_check_is_a_method_of_the_rollout() -> None:
    flags = made(_speedups)
    flags.activate_user("chat", 5)
    assert type(vars(type(flags))["active"]) is _speedups.Active
    check = flags.active  # kept in a variable: a bound method, as a function would be
    assert check("chat", 5) is True
    assert check(name="chat", user=6) is False
    assert flags.active("chat", user=5) is True
    documented: Any = Rollout.active  # the documented method calls it too
    assert documented(flags, "chat", 5) is True


def test_the_c_check_reads_as_the_python_function() -> None:
    fast, slow, _ = twins()
    assert inspect.signature(fast.active) == inspect.signature(slow.active)
    assert str(inspect.signature(fast.active)) == "(name, user=None)"
    in_c: Any = fast.active  # typed as a call signature only
    in_python: Any = slow.active
    assert in_c.__name__ == in_python.__name__ == "active"
    assert (
        repr(fast.active)
        == repr(slow.active)
        == "<bound method active of <Rollout store='memory' flags=0>>"
    )


def test_a_broken_group_is_logged_with_its_traceback_once(
    caplog: pytest.LogCaptureFixture,
) -> None:
    fast, slow, _ = twins()
    for flags in (fast, slow):
        flags.activate_group("chat", "broken")
    caplog.set_level(logging.DEBUG, logger="rollout")
    for flags in (fast, slow):
        caplog.clear()
        assert flags.active("chat", 3) is False
        assert flags.active("chat", 6) is False
        first, again = caplog.records
        assert first.levelno == logging.ERROR
        assert first.exc_info is not None
        assert isinstance(first.exc_info[1], RuntimeError)
        assert "broken for every third user" in caplog.text
        assert again.levelno == logging.DEBUG
        assert flags.stats()["group_errors"] == 2
    assert sys.exc_info() == (None, None, None)  # nothing left as being handled


def test_an_exception_that_is_not_an_error_stops_the_check() -> None:
    fast, slow, _ = twins()
    for flags in (fast, slow):
        flags.activate_group("chat", "stopping")
        with pytest.raises(Stop):
            flags.active("chat", 13)
        assert flags.stats()["group_errors"] == 0


def paths(flags: Rollout) -> Iterator[Callable[[], object]]:
    """Every path of a check, errors included."""
    yield lambda: flags.active("on")
    yield lambda: flags.active("bare", 7)
    yield lambda: flags.active("bare", User(2**70))
    yield lambda: flags.active("bare", "é")
    yield lambda: flags.active("chat", User(7, ("admins",)))
    yield lambda: flags.active("chat", 3)  # a broken group
    yield lambda: flags.active("chat", 9)  # a predicate's answer whose truth raises
    yield lambda: flags.active("unknown", 1)
    yield lambda: flags.active(["unhashable"], 1)
    yield lambda: flags.active("chat", RaisingId())
    yield lambda: flags.active("chat", 1.5)


def test_the_c_check_keeps_no_reference_it_takes() -> None:
    flags, _, asked = twins()
    flags.activate("on")
    flags.activate_percentage("bare", 30)
    flags.activate_percentage("chat", 10)
    flags.exclude_user("chat", "2")
    flags.activate_user("chat", "4")
    for group in ("admins", "broken", "flaky", "fives"):
        flags.activate_group("chat", group)
    logging.getLogger("rollout").setLevel(logging.CRITICAL)  # the broken group's first error
    user, ident, text = User(11), 2**70 + 5, "".join(["an id ", "of its own"])
    checks = [
        *paths(flags),
        lambda: flags.active("bare", User(ident)),
        lambda: flags.active("chat", User(ident)),
        lambda: flags.active("chat", text),
        lambda: flags.active("bare", text),
        lambda: flags.active("bare", random.randrange(2**40)),  # a new int object every time
    ]
    for check in checks * 200:  # warm: caches, interned strings, the memo
        outcome(check)
    gc.collect()
    blocks = sys.getallocatedblocks()
    references = [sys.getrefcount(thing) for thing in (user, ident, text)]
    for _ in range(2_000):
        for check in checks:
            outcome(check)
        flags.active("chat", user)
        asked.clear()
    gc.collect()
    assert [sys.getrefcount(thing) for thing in (user, ident, text)] == references
    # 34,000 checks: a leak of one object a check would be thousands of blocks.
    assert sys.getallocatedblocks() - blocks < 500


def test_checks_on_many_threads_while_the_flag_changes_answer_from_a_version() -> None:
    # Each write replaces the flag's compiled check: a check in progress keeps its own
    # reference to the one it read (a predicate that writes the flag itself, too).
    flags = made(_speedups)

    def writer(user: object) -> bool:
        flags.activate_percentage("chat", 0)
        return False

    flags.define_group("writer", writer)
    flags.define_group("everyone", lambda user: True)
    stop = threading.Event()
    errors: list[BaseException] = []

    def check() -> None:
        try:
            while not stop.is_set():
                answer = flags.active("chat", User(random.randrange(1000)))
                assert answer in (True, False)
        except BaseException as error:
            errors.append(error)

    def write() -> None:
        for i in range(300):
            flags.activate_group("chat", "writer")
            flags.activate_percentage("chat", i % 100)
            flags.activate_group("chat", "everyone")
            flags.deactivate_group("chat", "everyone")
            flags.delete("chat")

    checkers = [threading.Thread(target=check) for _ in range(3)]
    for thread in checkers:
        thread.start()
    try:
        write()
    finally:
        stop.set()
        for thread in checkers:
            thread.join()
    assert errors == []
    flags.activate_group("chat", "everyone")
    assert flags.active("chat", User(1)) is True


@pytest.mark.parametrize(
    ("environment", "want"), [({}, "C Active"), ({native.ENVIRONMENT: "1"}, "Python function")]
)
def test_the_environment_can_rule_the_accelerator_out(
    environment: dict[str, str], want: str
) -> None:
    code = (
        "import rollout; from rollout._core import native; flags = rollout.Rollout(); "
        "print(native.implementation(), type(vars(type(flags))['active']).__name__)"
    )
    variables = {k: v for k, v in os.environ.items() if k != native.ENVIRONMENT} | environment
    ran = subprocess.run(
        [sys.executable, "-c", code], capture_output=True, text=True, check=True, env=variables
    )
    assert ran.stdout.split() == want.split()
