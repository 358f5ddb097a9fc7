"""The provider's resolution in C (rollout._core._speedups) against its Python reference.

A provider of a Rollout that checks in C answers ``resolve_boolean_details``'s usual cases in C
(``ResolveBoolean``, the flag's ``Resolution``); one of a Rollout that checks in Python takes the
Python method and decide.py's functions. These put the two side by side in one process: the same
writes to a Rollout of each, the same contexts, and the resolutions must be the same objects
field for field (their class, the decision kept for the metadata, the metadata itself), with the
same predicate calls in the same order and the same group errors, for every flag shape (more than
eight groups too), targeting keys of every kind, raising predicates and overrides.
"""

from __future__ import annotations

import gc
import logging
import os
import random
import sys
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from functools import partial
from typing import Any

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st
from openfeature.evaluation_context import EvaluationContext

from rollout import Rollout
from rollout._core import native
from rollout.openfeature import RolloutProvider

try:
    from rollout._core import _speedups
except ImportError:  # not built: a user without a C compiler
    if os.environ.get("CI") == "true":
        raise  # CI builds it: its absence there is a failure, not a skip
    pytest.skip("the C accelerator is not built here", allow_module_level=True)

if native.speedups is None:  # ROLLOUT_PURE_PYTHON=1: the provider's method is Python's alone
    pytest.skip("the accelerator is ruled out in this process", allow_module_level=True)

GROUPS = ["admins", "fives", "broken", "flaky", *(f"g{i}" for i in range(8))]
FIELDS = ("value", "error_code", "error_message", "reason", "variant", "_decision", "_bucket")
MISSING = object()


class Flaky:
    """A predicate's answer whose __bool__ raises for some users."""

    def __init__(self, value: int) -> None:
        self.value = value

    def __bool__(self) -> bool:
        if self.value % 7 == 0:
            raise ValueError("neither yes nor no")
        return self.value % 2 == 0


def made(implementation: Any) -> Rollout:
    kept = native.speedups
    native.speedups = implementation
    try:
        return Rollout()
    finally:
        native.speedups = kept


def twins() -> tuple[Rollout, Rollout, list[tuple[str, str]]]:
    """A C Rollout and a Python Rollout with the same groups; the predicates' calls, in order."""
    asked: list[tuple[str, str]] = []
    fast, slow = made(_speedups), made(None)
    for flags, label in ((fast, "C"), (slow, "Python")):

        def group(name: str, label: str = label) -> Callable[[Any], object]:
            def predicate(user: Any) -> object:
                asked.append((label, name))
                value = len(str(user.id))
                if name == "broken" and value % 3 == 0:
                    raise RuntimeError("broken for every third user")
                if name == "flaky":
                    return Flaky(value)
                if name == "fives":
                    return value % 5 == 0
                return name in getattr(user, "groups", ())

            return predicate

        for name in GROUPS:
            flags.define_group(name, group(name))
    return fast, slow, asked


writes = st.one_of(
    st.tuples(st.sampled_from(["activate", "deactivate"]), st.just(())),
    st.tuples(
        st.sampled_from(["activate_user", "deactivate_user", "exclude_user", "include_user"]),
        st.tuples(st.sampled_from(["1", "2", "13", "é", "ab", str(2**70)])),
    ),
    st.tuples(
        st.sampled_from(["activate_group", "deactivate_group"]),
        st.tuples(st.sampled_from([*GROUPS, "all", "undefined"])),
    ),
    st.tuples(
        st.just("activate_percentage"), st.tuples(st.sampled_from([0, 0.5, 20, 50, 99, 100]))
    ),
    st.tuples(st.just("activate_percentage_of_time"), st.tuples(st.sampled_from([0, 30, 100]))),
)
keys = st.one_of(
    st.integers(min_value=-(2**70), max_value=2**70),
    st.text(max_size=10),
    st.sampled_from(["", "1", "13", "é", "\ud800", "x" * 100, None, True, 1.5]),
)
contexts = st.one_of(
    st.none(),
    st.builds(
        EvaluationContext,
        targeting_key=keys,
        attributes=st.fixed_dictionaries({"groups": st.sampled_from([(), ("admins",), ("g5",)])}),
    ),
)


def outcome(call: Callable[[], Any]) -> object:
    try:
        details = call()
    except BaseException as error:
        return (type(error), str(error))
    fields = [getattr(details, name, MISSING) for name in FIELDS]
    return (type(details), fields, dict(details.flag_metadata), sorted(vars(details)))


@contextmanager
def providers(fast: Rollout, slow: Rollout) -> Iterator[tuple[RolloutProvider, RolloutProvider]]:
    made_providers = RolloutProvider(fast), RolloutProvider(slow)
    for provider in made_providers:  # subscribed: views are cached, as in an application
        provider.initialize(EvaluationContext())
    try:
        yield made_providers
    finally:
        for provider in made_providers:
            provider.shutdown()


def compared(
    providers: tuple[RolloutProvider, RolloutProvider],
    asked: list[tuple[str, str]],
    name: Any,
    context: EvaluationContext | None,
    seed: int,
) -> None:
    answers: list[object] = []
    calls: list[list[str]] = []
    for provider, label in zip(providers, ("C", "Python"), strict=True):
        asked.clear()
        random.seed(seed)  # the same draw of a percentage of time for both
        answers.append(outcome(partial(provider.resolve_boolean_details, name, False, context)))
        calls.append([group for who, group in asked if who == label])
    assert answers[0] == answers[1], (name, context)
    assert calls[0] == calls[1], (name, context)


def written(changes: list[tuple[str, tuple[Any, ...]]], *rollouts: Rollout) -> None:
    for flags in rollouts:
        flags.activate_percentage("chat", 0)
        for method, args in changes:
            getattr(flags, method)("chat", *args)
        flags.activate("on")
        flags.activate_percentage("bare", 20)
        for group in GROUPS:  # more than eight groups: decide.py's loop
            flags.activate_group("many", group)


@settings(max_examples=150, deadline=None)
@given(
    changes=st.lists(writes, max_size=8),
    checked=st.lists(contexts, min_size=1, max_size=6),
    seed=st.integers(0, 2**16),
)
def test_the_c_resolution_is_the_python_resolution(
    changes: list[tuple[str, tuple[Any, ...]]],
    checked: list[EvaluationContext | None],
    seed: int,
) -> None:
    logging.getLogger("rollout").setLevel(logging.CRITICAL)  # the broken group's first error
    fast, slow, asked = twins()
    written(changes, fast, slow)
    with providers(fast, slow) as both:
        for context in checked:
            for name in ("chat", "on", "bare", "many", "unknown", 5):
                compared(both, asked, name, context, seed)
        with fast.override("chat", True), slow.override("chat", True):
            for context in checked:
                compared(both, asked, "chat", context, seed)
    assert fast.stats()["group_errors"] == slow.stats()["group_errors"]


def test_the_c_rollout_resolves_in_c() -> None:
    fast, slow, _ = twins()
    written([("activate_group", ("admins",))], fast, slow)
    with providers(fast, slow) as (c_provider, python_provider):
        context = EvaluationContext(targeting_key="42", attributes={"groups": ("admins",)})
        for provider in (c_provider, python_provider):
            assert provider.resolve_boolean_details("chat", False, context).value is True
        resolvers = [provider._views["chat"].resolver for provider in (c_provider, python_provider)]
        assert resolvers[0] is not None
        assert type(resolvers[0][1]) is _speedups.Resolution
        assert resolvers[1] is not None
        assert type(resolvers[1][1]) is not _speedups.Resolution
    method = RolloutProvider.__dict__["resolve_boolean_details"]
    assert type(method) is _speedups.ResolveBoolean
    assert method.__wrapped__.__name__ == "resolve_boolean_details"


def test_the_metrics_sampler_counts_c_resolutions() -> None:
    fast, slow, _ = twins()
    written([("activate_group", ("admins",))], fast, slow)
    seen: dict[str, list[tuple[object, bool]]] = {"C": [], "Python": []}

    def observer(label: str) -> Callable[[object, bool], None]:
        return lambda name, answer: seen[label].append((name, answer))

    with providers(fast, slow) as both:
        tokens = [
            flags._check_slot.install(lambda check: check, observe=observer(label))
            for flags, label in ((fast, "C"), (slow, "Python"))
        ]
        context = EvaluationContext(targeting_key="42", attributes={"groups": ("admins",)})
        for provider in both:
            provider.resolve_boolean_details("chat", False, context)
            provider.resolve_boolean_details("on", False)
        for flags, token in zip((fast, slow), tokens, strict=True):
            flags._check_slot.uninstall(token)
    assert seen["C"] == seen["Python"] == [("chat", True), ("on", True)]


def test_c_resolutions_leak_nothing() -> None:
    fast, _, asked = twins()
    written([("activate_group", ("admins",)), ("activate_group", ("broken",))], fast)
    fast.activate_percentage_of_time("bare", 30)
    logging.getLogger("rollout").setLevel(logging.CRITICAL)
    key = "".join(["a key ", "of its own"])
    context = EvaluationContext(targeting_key=key, attributes={"groups": ("g5",)})
    with providers(fast, fast) as (provider, _):
        calls = [
            lambda: provider.resolve_boolean_details("chat", False, context),
            lambda: provider.resolve_boolean_details("many", False, context),
            lambda: provider.resolve_boolean_details("bare", False, context),
            lambda: provider.resolve_boolean_details("on", False),
            lambda: provider.resolve_boolean_details("on", False, context),
            lambda: provider.resolve_boolean_details(
                "chat", False, EvaluationContext(targeting_key=str(random.randrange(2**40)))
            ),
        ]
        for call in calls * 200:  # warm: caches, views, interned strings
            outcome(call)
        gc.collect()
        blocks = sys.getallocatedblocks()
        references = [sys.getrefcount(thing) for thing in (key, context)]
        for _ in range(2_000):
            for call in calls:
                outcome(call)
            asked.clear()
        gc.collect()
        assert [sys.getrefcount(thing) for thing in (key, context)] == references
        # 12,000 resolutions: a leak of one object a resolution would be thousands of blocks.
        assert sys.getallocatedblocks() - blocks < 500


def test_a_call_the_c_method_cannot_take_is_the_python_methods() -> None:
    fast, slow, _ = twins()
    written([], fast, slow)
    with providers(fast, slow) as both:
        for provider in both:  # keywords, and too few arguments: the Python method's own errors
            details = provider.resolve_boolean_details(
                flag_key="on", default_value=False, evaluation_context=None
            )
            assert details.value is True
            with pytest.raises(TypeError, match="default_value"):
                provider.resolve_boolean_details("on")  # type: ignore[call-arg]
    method: Any = RolloutProvider.resolve_boolean_details
    with pytest.raises(AttributeError, match="_views"):  # not a provider: what the method says
        method(object(), "on", False)
