"""OpenFeature's own gherkin scenarios, as facts about this provider through the real client.

The scenarios are the specification's (open-feature/spec, specification/assets/gherkin:
evaluation_v2.feature, evaluation.feature, hooks.feature, metadata.feature,
contextMerging.feature). Their test flags are written here the Rollout way: a typed flag is
``value`` / ``off_value`` (and ``variant`` names) in the flag's data, targeting is a group
whose predicate reads the context's attributes. The scenarios that do not apply to this provider
are listed, with why, in docs/openfeature.md.
"""

from __future__ import annotations

import asyncio
import itertools
from collections.abc import Iterator
from typing import Any

import pytest
from openfeature import api
from openfeature.client import OpenFeatureClient
from openfeature.evaluation_context import EvaluationContext
from openfeature.exception import ErrorCode
from openfeature.flag_evaluation import (
    FlagEvaluationDetails,
    FlagEvaluationOptions,
    FlagType,
    FlagValueType,
    Reason,
)
from openfeature.hook import Hook, HookContext, HookHints
from openfeature.provider import ProviderStatus
from openfeature.transaction_context import (
    ContextVarsTransactionContextPropagator,
    clear_transaction_context_propagator,
    set_transaction_context,
    set_transaction_context_propagator,
)

from rollout import Rollout
from rollout.openfeature import RolloutProvider

_domains = itertools.count()

TEMPLATE = {"showImages": True, "title": "Check out these pics!", "imagesPerPage": 100}
# type, key of the flag, its value and variant, a fallback of the type (test-flags.json).
Typed = tuple[FlagType, str, Any, str, Any]
TYPED: list[Typed] = [
    (FlagType.BOOLEAN, "boolean-flag", True, "on", False),
    (FlagType.STRING, "string-flag", "hi", "greeting", "bye"),
    (FlagType.INTEGER, "integer-flag", 10, "ten", 1),
    (FlagType.FLOAT, "float-flag", 0.5, "half", 0.1),
    (FlagType.OBJECT, "object-flag", TEMPLATE, "template", {}),
]
ZERO: dict[FlagType, Any] = {
    FlagType.BOOLEAN: False,
    FlagType.STRING: "",
    FlagType.INTEGER: 0,
    FlagType.FLOAT: 0.0,
    FlagType.OBJECT: {},
}
FALLBACK: dict[FlagType, Any] = {
    FlagType.BOOLEAN: True,
    FlagType.STRING: "str",
    FlagType.INTEGER: 1,
    FlagType.FLOAT: 0.1,
    FlagType.OBJECT: {"a": 1},
}
KINDS = list(ZERO)
NAME = {kind: kind.value.lower() for kind in KINDS}  # "boolean", "string", ...
BALLMER = "ballmer@macrosoft.com"


def write_test_flags(flags: Rollout) -> None:
    """test-flags.json, the Rollout way."""
    for kind, key, value, variant, _ in TYPED:
        kind_name = key.removesuffix("-flag")
        if kind is not FlagType.BOOLEAN:
            flags.set_feature_data(key, {"value": value, "variant": variant})
        flags.activate(key)
        # Disabled: nothing turns it on, and no off_value: the caller's fallback.
        flags.set_feature_data(f"{kind_name}-disabled-flag", {"value": value})
        flags.deactivate(f"{kind_name}-disabled-flag")
        # On for everybody, with the type's zero as its value.
        flags.set_feature_data(f"{kind_name}-zero-flag", {"value": ZERO[kind], "variant": "zero"})
        flags.activate(f"{kind_name}-zero-flag")
        # The zero both when the context matches and when it does not.
        targeted = f"{kind_name}-targeted-zero-flag"
        zero = {"value": ZERO[kind], "off_value": ZERO[kind], "variant": "zero"}
        flags.set_feature_data(targeted, {**zero, "off_variant": "zero"})
        flags.activate_group(targeted, "macrosoft")
    flags.define_group("macrosoft", lambda user: user.attributes.get("email") == BALLMER)
    flags.define_group(
        "internal",
        lambda user: (
            user.attributes.get("customer") is False
            and user.attributes.get("email") == BALLMER
            and user.attributes.get("age", 0) > 10
        ),
    )
    flags.set_feature_data("complex-targeted", {"value": "INTERNAL", "off_value": "EXTERNAL"})
    flags.activate_group("complex-targeted", "internal")
    # evaluation.feature's "context-aware": the four attributes of its scenario.
    flags.define_group(
        "known-customer",
        lambda user: (
            dict(user.attributes)
            == {"fn": "Sulisław", "ln": "Świętopełk", "age": 29, "customer": False}
        ),
    )
    flags.set_feature_data("context-aware", {"value": "INTERNAL", "off_value": "EXTERNAL"})
    flags.activate_group("context-aware", "known-customer")
    flags.set_feature_data("wrong-flag", {"value": "uno", "variant": "one"})
    flags.activate("wrong-flag")
    metadata = {"string": "1.0.2", "integer": 2, "float": 0.1, "boolean": True}
    flags.set_feature_data("metadata-flag", metadata)
    flags.activate("metadata-flag")


@pytest.fixture
def client(flags: Rollout) -> Iterator[OpenFeatureClient]:
    """Background: "a stable provider"."""
    write_test_flags(flags)
    domain = f"scenarios-{next(_domains)}"
    api.set_provider_and_wait(RolloutProvider(flags), domain=domain)
    try:
        yield api.get_client(domain)
    finally:
        api.shutdown()
        api.clear_hooks()
        api.set_evaluation_context(EvaluationContext())
        clear_transaction_context_propagator()


def evaluate(
    client: OpenFeatureClient, kind: FlagType, key: str, fallback: Any, context: Any = None
) -> FlagEvaluationDetails[Any]:
    return client.evaluate_flag_details(kind, key, fallback, context)


def attributes(**values: Any) -> EvaluationContext:
    """ "a context containing a key ...": attributes only, no targeting key."""
    return EvaluationContext(attributes=values)


# evaluation_v2.feature ----------------------------------------------------------------------


@pytest.mark.parametrize("case", TYPED, ids=[case[1] for case in TYPED])
def test_resolve_values_and_complete_details(client: OpenFeatureClient, case: Typed) -> None:
    kind, key, value, variant, fallback = case
    # "Resolve values", "Complete evaluation details structure", "Variant field population",
    # "Structure flag evaluation", and metadata.feature's "Returns no metadata".
    details = evaluate(client, kind, key, fallback)
    assert (details.flag_key, details.value) == (key, value)
    assert (details.variant, details.reason, details.error_code) == (variant, "STATIC", None)
    assert dict(details.flag_metadata) == {}


@pytest.mark.parametrize("kind", KINDS)
def test_resolves_zero_value(client: OpenFeatureClient, kind: FlagType) -> None:
    details = evaluate(client, kind, f"{NAME[kind]}-zero-flag", FALLBACK[kind])
    assert (details.value, details.reason) == (ZERO[kind], Reason.STATIC)


def targeted(kind: FlagType) -> str:
    return f"{NAME[kind]}-targeted-zero-flag"


@pytest.mark.parametrize("kind", KINDS)
def test_resolves_zero_value_with_targeting(client: OpenFeatureClient, kind: FlagType) -> None:
    # A context with an attribute and no targeting key: the group's predicate decides.
    details = evaluate(client, kind, targeted(kind), FALLBACK[kind], attributes(email=BALLMER))
    assert (details.value, details.reason, details.error_code) == (
        ZERO[kind],
        Reason.TARGETING_MATCH,
        None,
    )
    assert details.flag_metadata["group"] == "macrosoft"


@pytest.mark.parametrize("kind", KINDS)
@pytest.mark.parametrize(
    "context",
    [
        attributes(email="ballmer@none.com"),  # "... with targeting using default"
        None,  # "Empty evaluation context"
        attributes(email=None),  # "Null context values"
    ],
    ids=["no-match", "empty", "null"],
)
def test_resolves_zero_value_by_default(
    client: OpenFeatureClient, kind: FlagType, context: EvaluationContext | None
) -> None:
    details = evaluate(client, kind, targeted(kind), FALLBACK[kind], context)
    assert (details.value, details.reason, details.error_code) == (
        ZERO[kind],
        Reason.DEFAULT,
        None,
    )


@pytest.mark.parametrize("kind", KINDS)
def test_flag_not_found_error(client: OpenFeatureClient, kind: FlagType) -> None:
    details = evaluate(client, kind, "non-existent-flag", FALLBACK[kind])
    assert (details.value, details.reason) == (FALLBACK[kind], Reason.ERROR)
    assert details.error_code == ErrorCode.FLAG_NOT_FOUND


@pytest.mark.parametrize(
    ("kind", "key"),
    [
        (FlagType.BOOLEAN, "string-flag"),
        (FlagType.STRING, "boolean-flag"),
        (FlagType.INTEGER, "boolean-flag"),
        (FlagType.FLOAT, "boolean-flag"),
        (FlagType.OBJECT, "boolean-flag"),
        (FlagType.INTEGER, "wrong-flag"),  # evaluation.feature's "Type error"
    ],
)
def test_type_mismatch_error(client: OpenFeatureClient, kind: FlagType, key: str) -> None:
    details = evaluate(client, kind, key, FALLBACK[kind])
    assert (details.value, details.reason) == (FALLBACK[kind], Reason.ERROR)
    assert details.error_code == ErrorCode.TYPE_MISMATCH


def test_flag_metadata_in_evaluation_details(client: OpenFeatureClient) -> None:
    # "Flag metadata in evaluation details", metadata.feature's "Returns metadata": one type
    # per key, as written.
    details = client.get_boolean_details("metadata-flag", True)
    assert details.value is True
    metadata = dict(details.flag_metadata)
    assert metadata == {"string": "1.0.2", "integer": 2, "float": 0.1, "boolean": True}
    assert [type(metadata[k]) for k in ("string", "integer", "float", "boolean")] == [
        str,
        int,
        float,
        bool,
    ]


def test_multiple_context_attributes_targeting(client: OpenFeatureClient) -> None:
    context = attributes(email=BALLMER, role="admin", age=65, customer=False)
    details = client.get_string_details("complex-targeted", "default", context)
    assert (details.value, details.reason) == ("INTERNAL", Reason.TARGETING_MATCH)
    customer = attributes(email=BALLMER, role="admin", age=65, customer=True)
    details = client.get_string_details("complex-targeted", "default", customer)
    assert (details.value, details.reason) == ("EXTERNAL", Reason.DEFAULT)


@pytest.mark.parametrize("kind", KINDS)
def test_disabled_reason(client: OpenFeatureClient, kind: FlagType) -> None:
    details = evaluate(client, kind, f"{NAME[kind]}-disabled-flag", FALLBACK[kind])
    assert (details.value, details.reason, details.error_code) == (
        FALLBACK[kind],
        Reason.DISABLED,
        None,
    )


def test_provider_status_of_a_stable_provider(client: OpenFeatureClient) -> None:
    # "Provider status accessibility", stable: READY. (Stale and error: test_status.py.)
    assert client.get_provider_status() == ProviderStatus.READY


class Recorder(Hook):
    """Records each stage with the details it was given."""

    def __init__(self, name: str, log: list[tuple[str, str, Any]]) -> None:
        self.name, self.log = name, log

    def before(self, hook_context: HookContext, hints: HookHints) -> EvaluationContext | None:
        self.log.append((self.name, "before", None))
        return None

    def after(
        self, hook_context: HookContext, details: FlagEvaluationDetails[Any], hints: HookHints
    ) -> None:
        self.log.append((self.name, "after", details))

    def error(self, hook_context: HookContext, exception: Exception, hints: HookHints) -> None:
        self.log.append((self.name, "error", exception))

    def finally_after(
        self,
        hook_context: HookContext,
        details: FlagEvaluationDetails[FlagValueType],
        hints: HookHints,
    ) -> None:
        self.log.append((self.name, "finally", details))


def test_evaluation_options_with_hooks(client: OpenFeatureClient) -> None:
    log: list[tuple[str, str, Any]] = []
    options = FlagEvaluationOptions(hooks=[Recorder("first", log), Recorder("second", log)])
    assert client.get_boolean_value("boolean-flag", False, None, options) is True
    assert [(name, stage) for name, stage, _ in log] == [
        ("first", "before"),
        ("second", "before"),
        ("second", "after"),
        ("first", "after"),
        ("second", "finally"),
        ("first", "finally"),
    ]


def test_evaluation_context_immutability(client: OpenFeatureClient) -> None:
    data = {"email": BALLMER, "tags": ["a"]}
    context = EvaluationContext("42", data)
    details = client.get_boolean_details("boolean-flag", False, context)
    assert (context.targeting_key, context.attributes) == ("42", {"email": BALLMER, "tags": ["a"]})
    with pytest.raises(TypeError):
        details.flag_metadata["x"] = 1  # type: ignore[index]


@pytest.mark.parametrize("case", TYPED, ids=[case[1] for case in TYPED])
def test_asynchronous_flag_evaluation(client: OpenFeatureClient, case: Typed) -> None:
    kind, key, value, variant, fallback = case
    method = getattr(client, f"get_{NAME[kind]}_details_async")
    details = asyncio.run(method(key, fallback))
    assert (details.value, details.variant) == (value, variant)


# evaluation.feature (deprecated, still run by SDKs) -----------------------------------------


def test_resolves_based_on_context(client: OpenFeatureClient) -> None:
    context = attributes(fn="Sulisław", ln="Świętopełk", age=29, customer=False)
    assert client.get_string_value("context-aware", "EXTERNAL", context) == "INTERNAL"
    assert client.get_string_value("context-aware", "EXTERNAL", EvaluationContext()) == "EXTERNAL"


# hooks.feature ------------------------------------------------------------------------------


@pytest.mark.parametrize(
    "case",
    [
        (FlagType.BOOLEAN, "boolean-flag", False, True, "on", "STATIC", None),
        (FlagType.STRING, "missing-flag", "uh-oh", "uh-oh", None, "ERROR", "FLAG_NOT_FOUND"),
        (FlagType.BOOLEAN, "wrong-flag", False, False, None, "ERROR", "TYPE_MISMATCH"),
    ],
    ids=["details", "flag-not-found", "type-error"],
)
def test_hooks_receive_the_evaluation_details(
    client: OpenFeatureClient, case: tuple[FlagType, str, Any, Any, Any, str, str | None]
) -> None:
    kind, key, fallback, value, variant, reason, code = case
    log: list[tuple[str, str, Any]] = []
    client.add_hooks([Recorder("hook", log)])
    evaluate(client, kind, key, fallback)
    stages = [stage for _, stage, _ in log]
    assert stages == (
        ["before", "after", "finally"] if code is None else ["before", "error", "finally"]
    )
    final: FlagEvaluationDetails[Any] = log[-1][2]
    assert (final.flag_key, final.value, final.variant) == (key, value, variant)
    assert (final.reason, final.error_code) == (reason, code)


# contextMerging.feature: what the provider's predicates receive ----------------------------


class Seen:
    """A group predicate that records the merged context it is given."""

    def __init__(self) -> None:
        self.attributes: dict[str, Any] = {}

    def __call__(self, user: Any) -> bool:
        self.attributes = dict(user.attributes)
        return True


class AddsBefore(Hook):
    def __init__(self, key: str, value: str) -> None:
        self.key, self.value = key, value

    def before(self, hook_context: HookContext, hints: HookHints) -> EvaluationContext | None:
        return EvaluationContext(attributes={self.key: self.value})


LEVELS = ["API", "Transaction", "Client", "Invocation", "Before Hooks"]


def merged(flags: Rollout, client: OpenFeatureClient, entries: list[tuple[str, str, str]]) -> Any:
    """Add each (level, key, value) entry, evaluate "Some flag", return what the group saw."""
    seen = Seen()
    flags.define_group("sees", seen)
    flags.activate_group("some-flag", "sees")
    set_transaction_context_propagator(ContextVarsTransactionContextPropagator())
    levels: dict[str, dict[str, str]] = {level: {} for level in LEVELS}
    for level, key, value in entries:
        levels[level][key] = value
    api.set_evaluation_context(EvaluationContext(attributes=levels["API"]))
    set_transaction_context(EvaluationContext(attributes=levels["Transaction"]))
    client.context = EvaluationContext(attributes=levels["Client"])
    hooks: list[Hook] = [AddsBefore(k, v) for k, v in levels["Before Hooks"].items()]
    details = client.get_boolean_details(
        "some-flag",
        False,
        EvaluationContext(attributes=levels["Invocation"]),
        FlagEvaluationOptions(hooks=hooks),
    )
    assert (details.value, details.reason) == (True, Reason.TARGETING_MATCH)
    return seen.attributes


@pytest.mark.parametrize("level", LEVELS)
def test_a_context_entry_added_to_one_level(
    flags: Rollout, client: OpenFeatureClient, level: str
) -> None:
    assert merged(flags, client, [(level, "key", "value")]) == {"key": "value"}


def test_an_entry_at_each_level_with_different_keys(
    flags: Rollout, client: OpenFeatureClient
) -> None:
    entries = [(level, level, f"{level} value") for level in LEVELS]
    assert merged(flags, client, entries) == {level: f"{level} value" for level in LEVELS}


@pytest.mark.parametrize("last", LEVELS)
def test_a_later_level_overwrites_the_same_key(
    flags: Rollout, client: OpenFeatureClient, last: str
) -> None:
    entries = [(level, "key", level) for level in LEVELS[: LEVELS.index(last) + 1]]
    assert merged(flags, client, entries) == {"key": last}
