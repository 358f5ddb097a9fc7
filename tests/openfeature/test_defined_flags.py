"""Flags with a definition (variants, a default variant, targeting as data) through the real
OpenFeature client: values, variant names, reasons, errors, metadata, changes.

flagd's own testkit is in ``testkit/``; these are the provider's facts it does not state.
"""

from __future__ import annotations

import itertools
from collections.abc import Iterator
from datetime import UTC, datetime
from typing import Any

import pytest
from openfeature import api
from openfeature.client import OpenFeatureClient
from openfeature.evaluation_context import EvaluationContext
from openfeature.event import ProviderEvent
from openfeature.exception import ErrorCode
from openfeature.flag_evaluation import Reason

from rollout import Rollout
from rollout.openfeature import RolloutProvider

from .test_events import Attached

_domains = itertools.count()

CHANGED = ProviderEvent.PROVIDER_CONFIGURATION_CHANGED
PRO = {"in": [{"var": "plan"}, ["pro", "enterprise"]]}


@pytest.fixture
def provider(flags: Rollout) -> RolloutProvider:
    return RolloutProvider(flags, status_interval=None)


@pytest.fixture
def client(provider: RolloutProvider) -> Iterator[OpenFeatureClient]:
    domain = f"defined-{next(_domains)}"
    api.set_provider_and_wait(provider, domain=domain)
    try:
        yield api.get_client(domain)
    finally:
        api.shutdown()


def define_color(flags: Rollout, **more: object) -> None:
    flags.define_flag(
        "color",
        {"red": "#f00", "blue": "#00f"},
        default_variant="red",
        targeting={"if": [PRO, "blue"]},
        **more,  # type: ignore[arg-type]
    )


def test_the_variant_chosen_by_targeting_and_its_name(
    flags: Rollout, client: OpenFeatureClient
) -> None:
    define_color(flags)
    pro = client.get_string_details("color", "?", EvaluationContext("7", {"plan": "pro"}))
    assert (pro.value, pro.variant, pro.reason, pro.error_code) == (
        "#00f",
        "blue",
        Reason.TARGETING_MATCH,
        None,
    )
    free = client.get_string_details("color", "?", EvaluationContext("7", {"plan": "free"}))
    assert (free.value, free.variant, free.reason) == ("#f00", "red", Reason.DEFAULT)
    nobody = client.get_string_details("color", "?")
    assert (nobody.value, nobody.variant, nobody.reason) == ("#f00", "red", Reason.DEFAULT)


def test_a_flag_without_targeting_is_static(flags: Rollout, client: OpenFeatureClient) -> None:
    flags.define_flag("limit", {"low": 10, "high": 1000}, default_variant="high")
    details = client.get_integer_details("limit", 1, EvaluationContext("7"))
    assert (details.value, details.variant, details.reason) == (1000, "high", Reason.STATIC)


def test_the_targeting_key_is_in_the_context_rules_read(
    flags: Rollout, client: OpenFeatureClient
) -> None:
    rule = {"if": [{"==": [{"var": "targetingKey"}, "42"]}, "on", "off"]}
    flags.define_flag("beta", {"on": True, "off": False}, default_variant="off", targeting=rule)
    assert client.get_boolean_value("beta", False, EvaluationContext("42")) is True
    assert client.get_boolean_value("beta", True, EvaluationContext("41")) is False
    # A nested attribute is read with a dotted var, as flagd does.
    rule = {"if": [{"==": [{"var": "user.team"}, "web"]}, "on", "off"]}
    flags.set_targeting("beta", rule)
    team = EvaluationContext(attributes={"user": {"team": "web"}})
    assert client.get_boolean_value("beta", False, team) is True


def test_disabled_answers_the_callers_default_with_no_variant(
    flags: Rollout, client: OpenFeatureClient
) -> None:
    define_color(flags, enabled=False)
    details = client.get_string_details("color", "grey", EvaluationContext("7", {"plan": "pro"}))
    assert (details.value, details.variant, details.reason, details.error_code) == (
        "grey",
        None,
        Reason.DISABLED,
        None,
    )
    flags.enable_flag("color")
    assert client.get_string_value("color", "grey", EvaluationContext("7")) == "#f00"


def test_another_type_than_the_variants_is_a_type_mismatch_naming_the_variant(
    flags: Rollout, client: OpenFeatureClient
) -> None:
    define_color(flags)
    for details in [
        client.get_boolean_details("color", False),
        client.get_integer_details("color", 3),
        client.get_object_details("color", {"x": 1}),
    ]:
        assert details.error_code == ErrorCode.TYPE_MISMATCH
        assert details.reason == Reason.ERROR
        assert "'red'" in (details.error_message or "")
    assert client.get_integer_value("color", 3) == 3


def test_a_rule_that_names_a_missing_rule_is_a_parse_error_with_the_flags_metadata(
    flags: Rollout, client: OpenFeatureClient
) -> None:
    flags.define_flag(
        "checkout",
        {"new": True, "old": False},
        default_variant="old",
        targeting={"if": [{"$ref": "not_defined"}, "new", "old"]},
        metadata={"owner": "payments"},
    )
    details = client.get_boolean_details("checkout", True, EvaluationContext("7"))
    assert (details.value, details.reason, details.error_code) == (
        True,
        Reason.ERROR,
        ErrorCode.PARSE_ERROR,
    )
    assert dict(details.flag_metadata) == {"owner": "payments"}
    # Defining the rule mends the flag: named rules are re-compiled into it on change.
    flags.define_rule("not_defined", {"==": [{"var": "targetingKey"}, "7"]})
    assert client.get_boolean_details("checkout", False, EvaluationContext("7")).value is True


def test_metadata_is_the_flags_data_and_nothing_else(
    flags: Rollout, client: OpenFeatureClient
) -> None:
    metadata = {"owner": "web", "ticket": 42, "ratio": 0.5, "live": True, "rule": "mine"}
    define_color(flags, metadata=metadata)
    details = client.get_string_details("color", "?", EvaluationContext("7", {"plan": "pro"}))
    # No explanation numbers are added, and a key such as "rule" is the data's own.
    assert dict(details.flag_metadata) == metadata
    flags.define_flag("plain", {"a": "a"}, default_variant="a")
    assert dict(client.get_string_details("plain", "?").flag_metadata) == {}


def test_an_object_variant_is_a_fresh_copy_each_time(
    flags: Rollout, client: OpenFeatureClient
) -> None:
    flags.define_flag("layout", {"grid": {"columns": [1, 2]}}, default_variant="grid")
    first = client.get_object_value("layout", {})
    assert first == {"columns": [1, 2]}
    first["columns"].append(3)  # type: ignore[union-attr]
    assert client.get_object_value("layout", {}) == {"columns": [1, 2]}


def test_a_change_to_a_flag_or_to_a_named_rule_is_what_the_next_evaluation_sees(
    flags: Rollout, client: OpenFeatureClient
) -> None:
    flags.define_rule("pro", PRO)
    flags.define_flag(
        "color",
        {"red": "#f00", "blue": "#00f"},
        default_variant="red",
        targeting={"if": [{"$ref": "pro"}, "blue"]},
    )
    context = EvaluationContext("7", {"plan": "team"})
    assert client.get_string_value("color", "?", context) == "#f00"
    flags.define_rule("pro", {"in": [{"var": "plan"}, ["pro", "team"]]})
    assert client.get_string_value("color", "?", context) == "#00f"
    flags.set_variant("color", "blue", "#0000ff")
    assert client.get_string_value("color", "?", context) == "#0000ff"
    flags.set_default_variant("color", None)
    assert client.get_string_details("color", "?", EvaluationContext("8")).value == "?"


def test_an_on_off_flag_that_gets_a_definition_answers_from_it(
    flags: Rollout, client: OpenFeatureClient
) -> None:
    flags.activate("search")
    before = client.get_boolean_details("search", False, EvaluationContext("7"))
    assert (before.value, before.variant, before.reason) == (True, "on", Reason.STATIC)
    flags.define_flag("search", {"v1": "classic", "v2": "semantic"}, default_variant="v2")
    after = client.get_string_details("search", "?", EvaluationContext("7"))
    assert (after.value, after.variant, after.reason) == ("semantic", "v2", Reason.STATIC)


def test_a_numeric_targeting_key_is_the_same_user_as_its_string(
    flags: Rollout, client: OpenFeatureClient
) -> None:
    rule = {"if": [{"==": [{"var": "targetingKey"}, "42"]}, "on", "off"]}
    flags.define_flag("beta", {"on": True, "off": False}, default_variant="off", targeting=rule)
    numeric = EvaluationContext(42, {})  # type: ignore[arg-type]
    assert client.get_boolean_value("beta", False, numeric) is True
    odd = client.get_boolean_details("beta", False, EvaluationContext([1], {}))  # type: ignore[arg-type]
    assert odd.error_code == ErrorCode.INVALID_CONTEXT


def test_resolve_value_details_is_the_value_of_any_type(
    flags: Rollout, provider: RolloutProvider
) -> None:
    provider.initialize(EvaluationContext())
    try:
        define_color(flags)
        pro = provider.resolve_value_details("color", EvaluationContext("7", {"plan": "pro"}))
        assert (pro.value, pro.variant, pro.reason) == ("#00f", "blue", Reason.TARGETING_MATCH)
        flags.disable_flag("color")
        off = provider.resolve_value_details("color", EvaluationContext("7"))
        assert (off.value, off.variant, off.reason) == (None, None, Reason.DISABLED)
        assert provider.has_definition("color")
        flags.activate("chat")
        assert not provider.has_definition("chat")
        assert not provider.has_definition("nothing")
    finally:
        provider.shutdown()


def test_an_override_forces_a_defined_boolean_flag_for_every_context(
    flags: Rollout, client: OpenFeatureClient
) -> None:
    rule = {"if": [{"==": [{"var": "targetingKey"}, "42"]}, "on", "off"]}
    flags.define_flag("beta", {"on": True, "off": False}, default_variant="off", targeting=rule)
    with flags.override("beta", True):
        forced = client.get_boolean_details("beta", False, EvaluationContext("7"))
        assert (forced.value, forced.variant, forced.reason) == (True, "on", Reason.STATIC)
    assert client.get_boolean_value("beta", True, EvaluationContext("7")) is False
    assert client.get_boolean_value("beta", False, EvaluationContext("42")) is True


def test_a_datetime_attribute_is_read_as_its_rfc_3339_text(
    flags: Rollout, client: OpenFeatureClient
) -> None:
    rule = {"if": [{"starts_with": [{"var": "account.created"}, "2024-"]}, "old", "new"]}
    flags.define_flag(
        "welcome", {"old": "hi", "new": "welcome"}, default_variant="new", targeting=rule
    )
    created = datetime(2024, 5, 1, 12, 30, tzinfo=UTC)
    context = EvaluationContext("7", {"account": {"created": created}})
    assert client.get_string_value("welcome", "?", context) == "hi"
    flags.set_targeting("welcome", {"if": [{"==": [{"var": "at"}, "2024-05-01T12:30:00Z"]}, "old"]})
    assert client.get_string_value("welcome", "?", EvaluationContext("7", {"at": created})) == "hi"


def test_definition_and_named_rule_changes_emit_configuration_changed_with_the_flags(
    flags: Rollout, provider: RolloutProvider
) -> None:
    attached = Attached(provider)
    provider.initialize(EvaluationContext())
    try:
        flags.define_rule("pro", PRO)
        flags.define_flag(
            "color",
            {"red": "#f00", "blue": "#00f"},
            default_variant="red",
            targeting={"if": [{"$ref": "pro"}, "blue"]},
        )
        flags.define_flag("size", {"s": 1, "l": 3}, default_variant="s")
        flags.set_variant("size", "l", 4)
        flags.define_rule("pro", {"==": [{"var": "plan"}, "pro"]})  # only `color` uses it
    finally:
        provider.shutdown()
    changed = [details.flags_changed for event, details in attached.events if event is CHANGED]
    assert changed == [["color"], ["size"], ["size"], ["color"]]


def test_a_flagd_files_set_metadata_is_in_each_flags_metadata_under_its_own(
    flags: Rollout, client: OpenFeatureClient
) -> None:
    flags.load_flagd(
        {
            "metadata": {"flagSetId": "shop", "version": "3"},
            "flags": {
                "banner": {
                    "state": "ENABLED",
                    "variants": {"on": "Sale", "off": ""},
                    "defaultVariant": "on",
                    "metadata": {"version": "4", "owner": "web"},
                },
            },
        }
    )
    details = client.get_string_details("banner", "?")
    assert details.value == "Sale"
    assert dict(details.flag_metadata) == {"flagSetId": "shop", "version": "4", "owner": "web"}


def test_a_named_rule_is_asked_for_a_context_without_a_targeting_key(
    flags: Rollout, client: OpenFeatureClient
) -> None:
    # As a group defined in code is: a segment needs attributes, not an id.
    flags.define_rule("pro", PRO)
    flags.activate_group("chat", "pro")
    details = client.get_boolean_details("chat", False, EvaluationContext(None, {"plan": "pro"}))
    assert (details.value, details.variant, details.reason) == (True, "on", "TARGETING_MATCH")
    assert details.flag_metadata["group"] == "pro"
    details = client.get_boolean_details("chat", False, EvaluationContext(None, {"plan": "free"}))
    assert (details.value, details.reason) == (False, "DEFAULT")


@pytest.mark.parametrize(
    "context",
    [
        {"targetingKey": "1", "plan": "pro"},  # the named rule says yes
        {"targetingKey": "2", "plan": "free", "staff": True},  # the predicate in code says yes
        {"plan": "enterprise"},  # no key: the groups are still asked
        {"targetingKey": "3", "plan": "free", "staff": False},  # nothing says yes
        {"targetingKey": "7", "staff": False},  # a listed user
    ],
)
def test_evaluate_gives_an_on_off_flags_groups_the_context_as_the_provider_does(
    flags: Rollout, client: OpenFeatureClient, context: dict[str, Any]
) -> None:
    # flags.evaluate() (and so the CLI's evaluate, the API's and the dashboard's preview) and
    # OpenFeature (and so OFREP) answer one flag for one context the same way: a segment
    # (a named rule as a group) and a predicate in code read the context's attributes.
    flags.define_rule("pro", PRO)
    flags.define_group("staff", lambda user: user.staff)
    flags.activate_group("chat", "pro")
    flags.activate_group("chat", "staff")
    flags.activate_user("chat", 7)
    key = context.get("targetingKey")
    attributes = {k: v for k, v in context.items() if k != "targetingKey"}
    details = client.get_boolean_details(
        "chat", False, EvaluationContext(key if isinstance(key, str) else None, attributes)
    )
    resolution = flags.evaluate("chat", context)
    assert (resolution.value, resolution.variant, resolution.reason) == (
        details.value,
        details.variant,
        details.reason,
    )


@pytest.mark.parametrize("typed", [False, True])
def test_a_flag_defined_while_it_is_resolved_answers_as_one_version(
    flags: Rollout, typed: bool
) -> None:
    # The provider reads its view of the flag (an on/off flag), then the flag gets a
    # definition (here from user_from_context, which runs between the two; in an application,
    # another thread or a replicated change): the resolution is the on/off flag's or the
    # defined flag's, as the next one is, whole (tests/openfeature/test_versions.py), not a
    # KeyError out of the provider (flags.explain's reason "definition" has no OpenFeature
    # reason of the on/off kind).
    flags.define_group("beta", lambda user: False)
    flags.activate_percentage("chat", 20)
    flags.activate_group("chat", "beta")
    if typed:
        flags.set_feature_data("chat", {"value": "#0f0"})
    variants = {"red": "#f00", "blue": "#00f"} if typed else {"on": True, "off": False}
    default = "blue" if typed else "on"

    armed = False

    def user_from_context(context: EvaluationContext) -> object:
        if armed and not flags.get("chat").variants:
            flags.define_flag("chat", variants, default_variant=default)
        return context.targeting_key

    provider = RolloutProvider(flags, user_from_context=user_from_context, status_interval=None)
    provider.initialize(EvaluationContext())
    try:
        context = EvaluationContext("5", {"plan": "pro"})

        def resolve() -> Any:
            if typed:
                return provider.resolve_string_details("chat", "?", context)
            return provider.resolve_boolean_details("chat", False, context)

        before = resolve()
        armed = True
        during, after = resolve(), resolve()
        assert flags.get("chat").variants
        assert during in (before, after)
        assert (after.value, after.variant, after.reason) == (
            "#00f" if typed else True,
            default,
            Reason.STATIC,
        )
    finally:
        provider.shutdown()
