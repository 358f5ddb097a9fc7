"""Every resolution is of one version of the flag: the state it had at some moment of the call.

A resolution reads the flag twice over: its view (variants, data metadata, the facts that settle
STATIC and DISABLED) and its compiled check (the answer and the rule that decided it). A change
landing between the two reads, or a view cached before a change the provider has not been told
of yet, must not give details that no version of the flag gives: (False, DEFAULT, 'off0') when
the flag said (False, DISABLED, 'off0') a moment earlier and (True, TARGETING_MATCH, 'on0') the
moment before. The tests here put a change exactly in those windows (a ``user_from_context`` that
writes, a subscriber told before the provider that resolves), then a thread cycles a flag while
another resolves it, every answer checked against the versions the flag had during the call.
"""

from __future__ import annotations

from collections.abc import Callable, Iterator
from contextlib import AbstractContextManager, contextmanager
from typing import Any

import pytest
from openfeature.evaluation_context import EvaluationContext
from openfeature.flag_evaluation import FlagResolutionDetails

from rollout import Rollout
from rollout.openfeature import ContextUser, RolloutProvider

from ..versions import answers_while_cycled

Details = tuple[object, ...]
Resolve = Callable[[], FlagResolutionDetails[Any]]


def plain(details: FlagResolutionDetails[Any]) -> Details:
    """What a caller sees of a resolution, comparable and hashable."""
    metadata = tuple(sorted(details.flag_metadata.items()))
    return (details.value, details.reason, details.variant, details.error_code, metadata)


def variants(flags: Rollout, name: str, tag: str) -> None:
    """One write: the flag's data names its variants after ``tag``, and carries it."""
    flags.replace_feature_data(
        name, {"variant": f"on{tag}", "off_variant": f"off{tag}", "tag": tag}
    )


class WritingUsers:
    """A ``user_from_context`` that makes a change, once, when armed: the change lands after the
    provider has read the flag's view and before it reads the flag's check."""

    def __init__(self) -> None:
        self.change: Callable[[], None] | None = None

    def __call__(self, context: EvaluationContext) -> object:
        change, self.change = self.change, None
        if change is not None:
            change()
        return ContextUser(context)


@pytest.fixture
def writing() -> WritingUsers:
    return WritingUsers()


@pytest.fixture
def provider(flags: Rollout, writing: WritingUsers) -> Iterator[RolloutProvider]:
    flags.define_group("beta", lambda user: getattr(user, "plan", None) == "beta")
    provider = RolloutProvider(flags, user_from_context=writing, status_interval=None)
    provider.initialize(EvaluationContext())
    yield provider
    provider.shutdown()


BETA = EvaluationContext("u7", {"plan": "beta"})

# The changes that make a targeted flag one the same for everybody: its reason is then the
# flag's (DISABLED, STATIC), never the rule a check walks (DEFAULT, TARGETING_MATCH).
CHANGES: dict[str, Callable[[Rollout], None]] = {
    "deactivate": lambda flags: flags.deactivate("f"),
    "activate": lambda flags: flags.activate("f"),
}


def targeted(flags: Rollout) -> None:
    variants(flags, "f", "0")
    flags.activate_group("f", "beta")


def resolve_with_a_change_inside(
    provider: RolloutProvider,
    writing: WritingUsers,
    change: Callable[[], None],
    resolve: Resolve,
) -> tuple[Details, Details, Details]:
    """The details before the change, those of the resolution it lands inside, and after."""
    before = plain(resolve())
    writing.change = change
    during = plain(resolve())
    assert writing.change is None, "the change was not made inside the resolution"
    return before, during, plain(resolve())


@contextmanager
def targeted_path(flags: Rollout, provider: RolloutProvider) -> Iterator[Resolve]:
    targeted(flags)
    yield lambda: provider.resolve_boolean_details("f", False, BETA)


@contextmanager
def general_path(flags: Rollout, provider: RolloutProvider) -> Iterator[Resolve]:
    # An override of another flag in place: every resolution takes the general path.
    targeted(flags)
    flags.set("other", True)
    with flags.override("other", False):
        yield lambda: provider.resolve_boolean_details("f", False, BETA)


@contextmanager
def typed_path(flags: Rollout, provider: RolloutProvider) -> Iterator[Resolve]:
    flags.replace_feature_data("f", {"value": "big", "off_value": "small", "tag": "0"})
    flags.activate_group("f", "beta")
    yield lambda: provider.resolve_string_details("f", "none", BETA)


# The provider's three ways to a targeted answer: the targeted fast path, the general path (taken
# while any override is in place) and a typed flag's.
PATHS: dict[str, Callable[[Rollout, RolloutProvider], AbstractContextManager[Resolve]]] = {
    "targeted": targeted_path,
    "general": general_path,
    "typed": typed_path,
}


@pytest.mark.parametrize("change", CHANGES)
@pytest.mark.parametrize("path", PATHS)
def test_a_change_made_while_the_user_is_built_is_no_part_of_the_resolution(
    flags: Rollout, provider: RolloutProvider, writing: WritingUsers, path: str, change: str
) -> None:
    with PATHS[path](flags, provider) as resolve:
        before, during, after = resolve_with_a_change_inside(
            provider, writing, lambda: CHANGES[change](flags), resolve
        )
    assert before != after
    assert during in (before, after)


def test_a_change_of_a_flags_targeting_and_variants_lands_whole(
    flags: Rollout, provider: RolloutProvider, writing: WritingUsers
) -> None:
    # Two writes inside the resolution: the view read before them has neither.
    targeted(flags)

    def change() -> None:
        flags.deactivate("f")
        variants(flags, "f", "1")

    before, during, after = resolve_with_a_change_inside(
        provider, writing, change, lambda: provider.resolve_boolean_details("f", False, BETA)
    )
    assert during in (before, after)


class ToldFirst:
    """A subscriber told of a change before the provider is (it subscribed first), which then
    resolves: the provider's cached view of the flag is of the version before the change."""

    def __init__(self, provider: RolloutProvider, resolve: Callable[[], Any]) -> None:
        self.provider = provider
        self.resolve = resolve
        self.seen: list[Details] = []

    def __call__(self, names: set[str]) -> None:
        self.seen.append(plain(self.resolve()))


def told_first(
    flags: Rollout, resolve: Callable[[RolloutProvider], FlagResolutionDetails[Any]]
) -> tuple[RolloutProvider, ToldFirst]:
    provider = RolloutProvider(flags, status_interval=None)
    subscriber = ToldFirst(provider, lambda: resolve(provider))
    flags.subscribe(subscriber)
    provider.initialize(EvaluationContext())
    return provider, subscriber


@pytest.mark.parametrize(
    ("context", "change"),
    [
        (EvaluationContext("u1"), "deactivate"),
        (EvaluationContext("u1"), "activate"),
        (EvaluationContext(None, {"plan": "beta"}), "deactivate"),  # no key: groups only
        (EvaluationContext("u7", {"plan": "beta"}), "deactivate"),
    ],
)
def test_a_resolution_made_before_the_provider_is_told_of_a_change_is_of_the_flag_now(
    flags: Rollout, context: EvaluationContext, change: str
) -> None:
    flags.define_group("beta", lambda user: getattr(user, "plan", None) == "beta")
    variants(flags, "f", "0")
    flags.activate_user("f", "u1")
    flags.activate_group("f", "beta")
    provider, subscriber = told_first(
        flags, lambda provider: provider.resolve_boolean_details("f", False, context)
    )
    try:
        before = plain(provider.resolve_boolean_details("f", False, context))  # cached now
        CHANGES[change](flags)
        after = plain(provider.resolve_boolean_details("f", False, context))
        assert before != after
        assert subscriber.seen == [after]
    finally:
        provider.shutdown()


def test_a_settled_flag_resolved_before_the_provider_is_told_is_of_the_flag_now(
    flags: Rollout,
) -> None:
    variants(flags, "f", "0")
    flags.deactivate("f")
    context = EvaluationContext("u1")
    provider, subscriber = told_first(
        flags, lambda provider: provider.resolve_boolean_details("f", False, context)
    )
    try:
        before = plain(provider.resolve_boolean_details("f", False, context))  # cached now
        flags.activate_user("f", "u1")
        after = plain(provider.resolve_boolean_details("f", False, context))
        assert before != after
        assert subscriber.seen == [after]
    finally:
        provider.shutdown()


def test_a_defined_flag_resolved_before_the_provider_is_told_is_of_the_flag_now(
    flags: Rollout,
) -> None:
    def define(default: str, tag: str) -> None:
        flags.define_flag("f", {"a": "A", "b": "B"}, default_variant=default, metadata={"tag": tag})

    define("a", "0")
    provider, subscriber = told_first(
        flags, lambda provider: provider.resolve_string_details("f", "none", EvaluationContext())
    )
    try:
        before = plain(provider.resolve_string_details("f", "none", EvaluationContext()))
        define("b", "1")  # one write: the variant chosen and the metadata
        after = plain(provider.resolve_string_details("f", "none", EvaluationContext()))
        assert before != after
        assert subscriber.seen == [after]
    finally:
        provider.shutdown()


# A cycle of writes that ends where it began: each write is one version of "f", an on/off flag
# whose variants name the data they came with.
CYCLE: list[Callable[[Rollout], None]] = [
    lambda flags: flags.deactivate("f"),
    lambda flags: variants(flags, "f", "1"),
    lambda flags: flags.activate("f"),
    lambda flags: flags.deactivate("f"),
    lambda flags: flags.activate_user("f", "u1"),
    lambda flags: flags.activate_group("f", "beta"),
    lambda flags: flags.activate_percentage("f", 30),
    lambda flags: variants(flags, "f", "0"),
]
CONTEXTS = [
    EvaluationContext("u1"),
    EvaluationContext("u7", {"plan": "beta"}),
    *(EvaluationContext(f"user-{i}") for i in range(6)),
    EvaluationContext(None, {"plan": "beta"}),
    EvaluationContext(),
]


def first_version(flags: Rollout) -> None:
    flags.define_group("beta", lambda user: getattr(user, "plan", None) == "beta")
    variants(flags, "f", "0")
    flags.activate_user("f", "u1")
    flags.activate_group("f", "beta")
    flags.activate_percentage("f", 30)


def resolutions(provider: RolloutProvider) -> list[object]:
    """What each context is answered: of "f" as a boolean and as any value."""
    answers: list[object] = []
    for context in CONTEXTS:
        answers.append(plain(provider.resolve_boolean_details("f", False, context)))
        answers.append(plain(provider.resolve_value_details("f", context)))
    return answers


@pytest.mark.parametrize("subscribed", [True, False])
def test_resolutions_while_a_thread_cycles_the_flag_are_each_of_one_version(
    flags: Rollout, subscribed: bool
) -> None:
    first_version(flags)
    provider = RolloutProvider(flags, status_interval=None)
    if subscribed:  # views cached between changes; else read on every call
        provider.initialize(EvaluationContext())
    try:
        failures = answers_while_cycled(flags, CYCLE, lambda: resolutions(provider), rounds=150)
    finally:
        provider.shutdown()
    assert failures == []
