"""RolloutProvider through the real OpenFeature client: values, reasons, errors, typed flags.

Test names carry the requirement numbers of the OpenFeature specification's provider section
(https://openfeature.dev/specification/sections/providers) that they check.
"""

from __future__ import annotations

import asyncio
import inspect
import itertools
import typing
from collections.abc import Iterator
from typing import Any

import pytest
from openfeature import api
from openfeature.client import OpenFeatureClient
from openfeature.evaluation_context import EvaluationContext
from openfeature.exception import ErrorCode
from openfeature.flag_evaluation import (
    FlagEvaluationDetails,
    FlagResolutionDetails,
    FlagType,
    FlagValueType,
    Reason,
)
from openfeature.hook import Hook, HookContext, HookHints
from openfeature.provider import AbstractProvider

from rollout import Rollout
from rollout.openfeature import ContextUser, RolloutProvider

_domains = itertools.count()


@pytest.fixture
def provider(flags: Rollout) -> RolloutProvider:
    return RolloutProvider(flags)


@pytest.fixture
def client(provider: RolloutProvider) -> Iterator[OpenFeatureClient]:
    domain = f"test-{next(_domains)}"
    api.set_provider_and_wait(provider, domain=domain)
    try:
        yield api.get_client(domain)
    finally:
        api.shutdown()


def ctx(key: str | None = None, **attributes: Any) -> EvaluationContext:
    return EvaluationContext(targeting_key=key, attributes=attributes)


def test_set_provider_and_wait_as_the_readme_shows_answers_the_first_evaluation(
    flags: Rollout,
) -> None:
    # The README sets the provider with set_provider_and_wait: plain set_provider (SDK 0.10+)
    # initialises on a thread, and an evaluation before it ran got PROVIDER_NOT_READY and the
    # default. Many fresh providers in a row: the first answer of each is the flag's.
    flags.activate("chat")
    try:
        for round_ in range(30):
            domain = f"readme-{round_}"
            api.set_provider_and_wait(RolloutProvider(flags), domain=domain)
            details = api.get_client(domain).get_boolean_details("chat", False, ctx("7"))
            assert (details.value, details.error_code) == (True, None)
    finally:
        api.shutdown()


# 2.1 metadata, 2.2.1 / 2.2.2.1 / 2.2.8.1 the interface ----------------------------------------


def test_2_1_1_metadata_names_the_provider(client: OpenFeatureClient) -> None:
    assert client.provider.get_metadata().name == "rollout"
    assert api.get_provider_metadata(client.domain).name == "rollout"


def test_2_2_1_and_2_2_2_1_typed_resolvers_have_the_sdk_parameter_names() -> None:
    for kind in ("boolean", "string", "integer", "float", "object"):
        ours = inspect.signature(getattr(RolloutProvider, f"resolve_{kind}_details"))
        sdk = inspect.signature(getattr(AbstractProvider, f"resolve_{kind}_details"))
        assert list(ours.parameters) == list(sdk.parameters)
        assert ours.parameters["evaluation_context"].default is None  # optional context
    assert not getattr(RolloutProvider, "__abstractmethods__", None)


def test_2_2_8_1_resolution_details_carry_the_value_type() -> None:
    hints = {
        kind: typing.get_type_hints(getattr(RolloutProvider, f"resolve_{kind}_details"))["return"]
        for kind in ("boolean", "string", "integer", "float")
    }
    assert hints == {
        "boolean": FlagResolutionDetails[bool],
        "string": FlagResolutionDetails[str],
        "integer": FlagResolutionDetails[int],
        "float": FlagResolutionDetails[float],
    }


# Booleans: always flags.active() -------------------------------------------------------------


def test_2_2_3_boolean_is_flags_active_for_the_targeting_key(
    flags: Rollout, client: OpenFeatureClient
) -> None:
    flags.activate_percentage("chat", 30)
    flags.activate_users("chat", ["u3", "u9"])
    flags.exclude_users("chat", ["u1", "u2"])
    flags.define_group("pro", lambda user: user.attributes.get("plan") == "pro")
    flags.activate_group("chat", "pro")
    seen = set()
    for i in range(300):
        context = ctx(f"u{i}", plan="pro" if i % 7 == 0 else "free")
        value = client.get_boolean_value("chat", not (i % 2), context)
        assert value is flags.active("chat", ContextUser(context))
        seen.add(value)
    assert seen == {True, False}


def test_2_2_4_variant_is_on_or_off(flags: Rollout, client: OpenFeatureClient) -> None:
    flags.activate_user("chat", "42")
    assert client.get_boolean_details("chat", False, ctx("42")).variant == "on"
    assert client.get_boolean_details("chat", True, ctx("7")).variant == "off"


def test_2_2_6_and_2_3_2_normal_execution_sets_no_error(
    flags: Rollout, client: OpenFeatureClient
) -> None:
    flags.activate("on")
    details = client.get_boolean_details("on", False)
    assert (details.value, details.error_code, details.error_message) == (True, None, None)


def test_a_numeric_targeting_key_is_the_same_user_as_its_text(
    flags: Rollout, provider: RolloutProvider
) -> None:
    flags.activate_user("chat", 42)
    numeric = EvaluationContext(targeting_key=42)  # type: ignore[arg-type]
    assert provider.resolve_boolean_details("chat", False, numeric).value is True


def test_async_evaluation_gives_the_same_answer(flags: Rollout, client: OpenFeatureClient) -> None:
    flags.activate_user("chat", "42")

    async def both() -> tuple[bool, bool]:
        return (
            await client.get_boolean_value_async("chat", False, ctx("42")),
            await client.get_boolean_value_async("chat", True, ctx("7")),
        )

    assert asyncio.run(both()) == (True, False)


# 2.2.5 reasons -------------------------------------------------------------------------------


def reason(client: OpenFeatureClient, name: str, context: EvaluationContext | None = None) -> Any:
    details = client.get_boolean_details(name, False, context)
    assert details.error_code is None, details.error_message
    return details.value, details.reason


def test_2_2_5_static_when_on_for_everybody_with_no_targeting(
    flags: Rollout, client: OpenFeatureClient
) -> None:
    flags.activate("on")
    flags.activate_percentage_of_time("always", 100)
    assert reason(client, "on") == (True, Reason.STATIC)
    assert reason(client, "on", ctx("42")) == (True, Reason.STATIC)
    assert reason(client, "always", ctx("42")) == (True, Reason.STATIC)


def test_2_2_5_disabled_when_nothing_can_turn_it_on(
    flags: Rollout, client: OpenFeatureClient
) -> None:
    flags.activate("chat")
    flags.deactivate("chat")
    flags.set_default("dark", False)
    flags.exclude_user("lonely", "7")  # exclusions alone turn nobody on
    assert reason(client, "chat", ctx("42")) == (False, Reason.DISABLED)
    assert reason(client, "chat") == (False, Reason.DISABLED)
    assert reason(client, "dark", ctx("42")) == (False, Reason.DISABLED)
    assert reason(client, "lonely", ctx("8")) == (False, Reason.DISABLED)


def test_2_2_5_targeting_match_when_a_listed_user_or_group_decides(
    flags: Rollout, client: OpenFeatureClient
) -> None:
    flags.define_group("pro", lambda user: getattr(user, "plan", None) == "pro")
    flags.activate_user("chat", "42")
    flags.activate_group("chat", "pro")
    flags.activate_percentage("chat", 10)
    flags.activate("everyone-but")
    flags.exclude_user("everyone-but", "666")
    flags.activate_group("all-group", "all")
    assert reason(client, "chat", ctx("42")) == (True, Reason.TARGETING_MATCH)
    member = next(f"p{i}" for i in range(1000) if not flags.active("chat", f"p{i}"))
    assert reason(client, "chat", ctx(member, plan="pro")) == (True, Reason.TARGETING_MATCH)
    assert reason(client, "everyone-but", ctx("666")) == (False, Reason.TARGETING_MATCH)
    assert reason(client, "everyone-but", ctx("1")) == (True, Reason.TARGETING_MATCH)
    assert reason(client, "all-group", ctx("1")) == (True, Reason.TARGETING_MATCH)


def test_2_2_5_split_when_a_percentage_decides(flags: Rollout, client: OpenFeatureClient) -> None:
    flags.activate_percentage("chat", 50)
    flags.define_group("pro", lambda user: user.attributes.get("plan") == "pro")
    flags.activate_group("chat", "pro")
    answers = {}
    for i in range(40):
        value, why = reason(client, "chat", ctx(f"u{i}", plan="free"))
        assert why == Reason.SPLIT
        answers[value] = f"u{i}"
    assert set(answers) == {True, False}
    # Inside the 50% and in the group: the bucket comes first in the check's order (as
    # flags.explain says); outside it, the group decides.
    assert reason(client, "chat", ctx(answers[True], plan="pro")) == (True, Reason.SPLIT)
    assert reason(client, "chat", ctx(answers[False], plan="pro")) == (True, Reason.TARGETING_MATCH)
    flags.activate_percentage_of_time("draw", 50)
    assert reason(client, "draw", ctx("1"))[1] == Reason.SPLIT
    assert reason(client, "draw")[1] == Reason.SPLIT


def test_2_2_5_default_when_no_rule_matches(flags: Rollout, client: OpenFeatureClient) -> None:
    flags.activate_user("chat", "42")
    flags.define_group("pro", lambda user: user.attributes.get("plan") == "pro")
    flags.activate_group("beta", "pro")
    assert reason(client, "chat", ctx("7")) == (False, Reason.DEFAULT)
    assert reason(client, "chat") == (False, Reason.DEFAULT)  # listed users need a user
    assert reason(client, "beta", ctx("7", plan="free")) == (False, Reason.DEFAULT)


# 2.2.7 / 2.3.3 errors ------------------------------------------------------------------------


def error(details: FlagEvaluationDetails[Any]) -> tuple[Any, Any, Any]:
    assert details.error_message  # 2.3.3: a message saying what went wrong
    return details.value, details.reason, details.error_code


def test_2_2_7_flag_not_found(flags: Rollout, client: OpenFeatureClient) -> None:
    flags.activate("gone")
    flags.delete("gone")
    for name in ("never-written", "gone", "", "bad\nname", "x" * 300):
        details = client.get_boolean_details(name, True, ctx("42"))
        assert error(details) == (True, Reason.ERROR, ErrorCode.FLAG_NOT_FOUND)
        assert error(client.get_string_details(name, "d")) == (
            "d",
            Reason.ERROR,
            ErrorCode.FLAG_NOT_FOUND,
        )


def test_2_2_7_targeting_key_missing_when_a_percentage_needs_a_user(
    flags: Rollout, client: OpenFeatureClient
) -> None:
    flags.activate_percentage("chat", 20)
    flags.activate_percentage("banner", 20)
    flags.set_feature_data("banner", {"value": "new"})
    for context in (None, ctx(), ctx(""), ctx(None, plan="pro")):
        details = client.get_boolean_details("chat", True, context)
        assert error(details) == (True, Reason.ERROR, ErrorCode.TARGETING_KEY_MISSING)
    details_s = client.get_string_details("banner", "old")
    assert error(details_s) == ("old", Reason.ERROR, ErrorCode.TARGETING_KEY_MISSING)
    # The targeting key may come from the global context (the SDK merges them).
    api.set_evaluation_context(ctx("42"))
    assert client.get_boolean_details("chat", True).error_code is None


def test_2_2_7_a_targeting_key_of_another_type_is_an_invalid_context(
    flags: Rollout, provider: RolloutProvider
) -> None:
    flags.activate_user("chat", "42")
    details = provider.resolve_boolean_details(
        "chat",
        True,
        EvaluationContext(targeting_key=4.2),  # type: ignore[arg-type]
    )
    assert (details.value, details.error_code) == (True, ErrorCode.INVALID_CONTEXT)


# flags.override(): tests of code that asks through OpenFeature ---------------------------------


def test_an_override_forces_the_answer_for_every_context(
    flags: Rollout, client: OpenFeatureClient
) -> None:
    flags.activate_percentage("chat", 20)
    flags.set_feature_data("banner", {"value": "sale", "off_value": "none"})
    flags.activate("banner")
    with flags.override("chat", True), flags.override("banner", False):
        for context in (None, ctx("7"), ctx("42")):
            details = client.get_boolean_details("chat", False, context)
            assert (details.value, details.reason, details.error_code) == (
                True,
                Reason.STATIC,
                None,
            )
        assert client.get_string_value("banner", "", ctx("7")) == "none"
    assert client.get_boolean_details("chat", True).error_code == ErrorCode.TARGETING_KEY_MISSING
    assert client.get_string_value("banner", "", ctx("7")) == "sale"


def test_an_override_of_a_flag_never_written(flags: Rollout, client: OpenFeatureClient) -> None:
    with flags.override("new-checkout", True):
        assert client.get_boolean_value("new-checkout", False, ctx("7")) is True
        with flags.override("new-checkout", False):
            assert client.get_boolean_value("new-checkout", True) is False
        typed = client.get_string_details("new-checkout", "x")  # no data: a boolean flag
        assert typed.error_code == ErrorCode.TYPE_MISMATCH
    details = client.get_boolean_details("new-checkout", True)
    assert details.error_code == ErrorCode.FLAG_NOT_FOUND


# Group predicates: what they receive ---------------------------------------------------------


def test_predicates_receive_a_context_user(flags: Rollout, client: OpenFeatureClient) -> None:
    received: list[Any] = []

    def staff(user: Any) -> bool:
        received.append(user)
        return bool(user.email.endswith("@example.com"))  # an attribute, read as one

    flags.define_group("staff", staff)
    flags.activate_group("chat", "staff")
    context = ctx("42", email="ann@example.com", plan="pro")
    assert client.get_boolean_value("chat", False, context) is True
    user = received[-1]
    assert isinstance(user, ContextUser)
    assert (user.id, user.targeting_key) == ("42", "42")
    assert dict(user.attributes) == {"email": "ann@example.com", "plan": "pro"}
    assert user.context.targeting_key == "42"
    assert user.plan == "pro"
    with pytest.raises(AttributeError, match="has no attribute 'missing'"):
        _ = user.missing
    with pytest.raises(TypeError):
        user.attributes["plan"] = "free"  # type: ignore[index]
    # A predicate that fails (a missing attribute) says no; the check does not raise.
    assert client.get_boolean_value("chat", True, ctx("7")) is False
    assert flags.stats()["group_errors"] == 1


def test_user_from_context_builds_the_applications_user(flags: Rollout) -> None:
    class User:
        def __init__(self, pk: str, admin: bool) -> None:
            self.pk, self.admin = pk, admin

    with Rollout(id_user_by="pk") as by_pk:
        by_pk.define_group("admins", lambda user: user.admin)
        by_pk.activate_group("chat", "admins")
        by_pk.activate_user("chat", "7")
        built: list[EvaluationContext] = []

        def load(context: EvaluationContext) -> User:
            built.append(context)
            return User(str(context.targeting_key), context.attributes.get("role") == "admin")

        provider = RolloutProvider(by_pk, user_from_context=load)
        assert provider.resolve_boolean_details("chat", False, ctx("1", role="admin")).value
        assert provider.resolve_boolean_details("chat", False, ctx("7")).value
        assert not provider.resolve_boolean_details("chat", True, ctx("2", role="user")).value
        assert len(built) == 3
        by_pk.activate("plain")  # no groups: the key is the user, nothing is built
        assert provider.resolve_boolean_details("plain", False, ctx("3")).value
        assert len(built) == 3
        # Without user_from_context, a ContextUser has no `pk`: the error says so.
        details = RolloutProvider(by_pk).resolve_boolean_details("chat", True, ctx("1"))
        assert (details.value, details.error_code) == (True, ErrorCode.INVALID_CONTEXT)
        assert "ContextUser" in (details.error_message or "")


def test_a_user_from_context_that_raises_is_a_general_error(flags: Rollout) -> None:
    def broken(context: EvaluationContext) -> object:
        raise LookupError("no such user")

    flags.define_group("admins", lambda user: True)
    flags.activate_group("chat", "admins")
    details = RolloutProvider(flags, user_from_context=broken).resolve_boolean_details(
        "chat", True, ctx("1")
    )
    assert (details.value, details.error_code) == (True, ErrorCode.GENERAL)
    assert "no such user" in (details.error_message or "")


# Typed flags: values from the flag's data ----------------------------------------------------


def test_string_flag_is_value_when_on_and_off_value_when_off(
    flags: Rollout, client: OpenFeatureClient
) -> None:
    flags.set_feature_data("color", {"value": "blue", "off_value": "grey", "owner": "web"})
    flags.activate_user("color", "42")
    on = client.get_string_details("color", "red", ctx("42"))
    off = client.get_string_details("color", "red", ctx("7"))
    assert (on.value, on.variant, on.reason) == ("blue", "on", Reason.TARGETING_MATCH)
    assert (off.value, off.variant, off.reason) == ("grey", "off", Reason.DEFAULT)


def test_without_off_value_an_inactive_flag_gives_the_callers_default(
    flags: Rollout, client: OpenFeatureClient
) -> None:
    flags.set_feature_data("limit", {"value": 100})
    details = client.get_integer_details("limit", 10, ctx("42"))
    assert (details.value, details.variant, details.reason) == (10, None, Reason.DISABLED)
    assert details.error_code is None
    flags.activate("limit")
    details = client.get_integer_details("limit", 10, ctx("42"))
    assert (details.value, details.variant, details.reason) == (100, "on", Reason.STATIC)


def test_numbers_and_objects(flags: Rollout, client: OpenFeatureClient) -> None:
    flags.set_feature_data("ratio", {"value": 2, "off_value": 0})
    flags.set_feature_data("layout", {"value": {"columns": [1, 2]}, "off_value": ["plain"]})
    flags.activate("ratio")
    flags.activate_user("layout", "42")
    ratio = client.get_float_details("ratio", 1.0)
    assert ratio.value == 2.0
    assert type(ratio.value) is float  # an int is a valid float, returned as one
    assert client.get_integer_value("ratio", 1) == 2
    layout: Any = client.get_object_value("layout", {}, ctx("42"))
    assert layout == {"columns": [1, 2]}
    assert client.get_object_value("layout", {}, ctx("7")) == ["plain"]
    layout["columns"].append(3)
    assert client.get_object_value("layout", {}, ctx("42")) == {"columns": [1, 2]}


@pytest.mark.parametrize(
    ("data", "kind", "default"),
    [
        ({"value": 5}, FlagType.STRING, ""),
        ({"value": True}, FlagType.INTEGER, 0),
        ({"value": 1.5}, FlagType.INTEGER, 0),
        ({"value": "5"}, FlagType.FLOAT, 0.0),
        ({"value": "x"}, FlagType.OBJECT, {}),
        ({"value": "x", "off_value": 3}, FlagType.STRING, ""),  # checked even while on
        ({"owner": "web"}, FlagType.STRING, ""),  # no value at all: a boolean flag
    ],
)
def test_2_2_7_type_mismatch(
    flags: Rollout,
    client: OpenFeatureClient,
    data: dict[str, Any],
    kind: FlagType,
    default: FlagValueType,
) -> None:
    flags.set_feature_data("typed", data)
    flags.activate("typed")
    details = client.evaluate_flag_details(kind, "typed", default)
    assert error(details) == (default, Reason.ERROR, ErrorCode.TYPE_MISMATCH)


def test_a_boolean_typed_flag_gives_its_value(flags: Rollout, client: OpenFeatureClient) -> None:
    # A flag with a value is a typed flag for every type, booleans included: on for everybody
    # with the value False, it answers False (OpenFeature's "zero value" flags).
    flags.set_feature_data("zero", {"value": False, "off_value": True})
    flags.activate("zero")
    details = client.get_boolean_details("zero", True)
    assert (details.value, details.variant, details.reason) == (False, "on", Reason.STATIC)
    flags.deactivate("zero")
    details = client.get_boolean_details("zero", False)
    assert (details.value, details.variant, details.reason) == (True, "off", Reason.DISABLED)


def test_2_2_9_and_2_2_10_flag_metadata_is_the_datas_scalars(
    flags: Rollout, client: OpenFeatureClient
) -> None:
    flags.set_feature_data(
        "chat",
        {"value": "v2", "off_value": "v1", "owner": "web", "ticket": 42, "risky": False,
         "weight": 0.5, "tags": ["a"], "extra": {"k": 1}},
    )  # fmt: skip
    flags.activate("chat")
    flags.set_feature_data("plain", {"owner": "web", "ticket": 42, "risky": False, "weight": 0.5})
    flags.activate("plain")
    expected = {"owner": "web", "ticket": 42, "risky": False, "weight": 0.5}
    assert dict(client.get_boolean_details("plain", False).flag_metadata) == expected
    assert dict(client.get_string_details("chat", "").flag_metadata) == expected


# 2.3.1 provider hooks ------------------------------------------------------------------------


class Recorder(Hook):
    def __init__(self) -> None:
        self.calls: list[tuple[str, str, Any]] = []

    def before(self, hook_context: HookContext, hints: HookHints) -> EvaluationContext | None:
        assert hook_context.provider_metadata is not None
        self.calls.append(("before", hook_context.flag_key, hook_context.provider_metadata.name))
        return None

    def after(
        self,
        hook_context: HookContext,
        details: FlagEvaluationDetails[FlagValueType],
        hints: HookHints,
    ) -> None:
        self.calls.append(("after", hook_context.flag_key, details.value))


def test_2_3_1_provider_hooks_run_on_every_evaluation(flags: Rollout) -> None:
    hook = Recorder()
    provider = RolloutProvider(flags, hooks=[hook])
    assert provider.get_provider_hooks() == [hook]
    flags.activate("on")
    api.set_provider_and_wait(provider, domain="hooks")
    try:
        assert api.get_client("hooks").get_boolean_value("on", False) is True
    finally:
        api.shutdown()
    assert hook.calls == [("before", "on", "rollout"), ("after", "on", True)]


def test_bad_constructor_arguments_name_themselves(flags: Rollout) -> None:
    with pytest.raises(TypeError, match=r"flags must be a rollout\.Rollout"):
        RolloutProvider(object())  # type: ignore[arg-type]
    with pytest.raises(TypeError, match="user_from_context must be callable"):
        RolloutProvider(flags, user_from_context="load")  # type: ignore[arg-type]
    with pytest.raises(TypeError, match="hooks must be openfeature Hook objects"):
        RolloutProvider(flags, hooks=[print])  # type: ignore[list-item]
    # A context without a targeting key is a user without an id (its groups can still say).
    assert ContextUser(EvaluationContext(attributes={"plan": "pro"})).id is None
