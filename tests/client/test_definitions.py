"""Flag definitions (variants, default variant, targeting rule, state) and named rules through
the library API: each write checked first and recorded, evaluate() for every reason, rules as
groups, flagd files in and out, and the registers merged between replicas element by element."""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any

import pytest

from rollout import Resolution, Rollout, RuleError
from rollout._core.targeting import parse_flagd
from rollout.errors import UnknownFlagError

PRO = {"in": [{"var": "plan"}, ["pro", "enterprise"]]}
LAYOUTS = {"wide": {"columns": 3}, "narrow": {"columns": 1}}


@pytest.fixture
def flags() -> Rollout:
    return Rollout(node_name="test")


def merged(source: Rollout, target: Rollout) -> set[str]:
    return target.merge(source.export())


# Writing and reading ------------------------------------------------------------------------


def test_define_flag_gives_a_feature_with_its_definition(flags: Rollout) -> None:
    flags.define_flag(
        "layout",
        LAYOUTS,
        default_variant="narrow",
        targeting={"if": [PRO, "wide", None]},
        metadata={"owner": "web", "ticket": 12},
    )
    feature = flags.get("layout")
    assert dict(feature.variants) == LAYOUTS
    assert feature.default_variant == "narrow"
    assert feature.targeting == {"if": [PRO, "wide", None]}
    assert feature.enabled is True
    assert dict(feature.data) == {"owner": "web", "ticket": 12}
    assert flags.features() == ["layout"]
    shape = feature.to_dict()
    assert shape["variants"] == LAYOUTS
    assert shape["default_variant"] == "narrow"
    assert shape["enabled"] is True


def test_an_on_off_flag_keeps_its_shape_and_empty_definition(flags: Rollout) -> None:
    flags.activate("chat")
    feature = flags.get("chat")
    assert dict(feature.variants) == {}
    assert (feature.default_variant, feature.targeting, feature.enabled) == (None, None, True)
    assert "variants" not in feature.to_dict()


def test_define_flag_replaces_the_whole_definition(flags: Rollout) -> None:
    flags.define_flag("f", {"a": 1, "b": 2}, default_variant="a", targeting={"if": [PRO, "b"]})
    flags.disable_flag("f")
    flags.define_flag("f", {"c": 3}, default_variant=None)
    feature = flags.get("f")
    assert dict(feature.variants) == {"c": 3}
    assert (feature.default_variant, feature.targeting, feature.enabled) == (None, None, True)


def test_each_edit_changes_one_part(flags: Rollout) -> None:
    flags.define_flag("f", {"a": "A"}, default_variant="a")
    flags.set_variant("f", "b", "B")
    flags.set_default_variant("f", "b")
    flags.set_targeting("f", {"if": [PRO, "a", "b"]})
    assert flags.evaluate("f", {"plan": "pro"}).value == "A"
    flags.remove_variant("f", "a")
    flags.set_targeting("f", None)
    flags.disable_flag("f")
    feature = flags.get("f")
    assert dict(feature.variants) == {"b": "B"}
    assert (feature.default_variant, feature.targeting, feature.enabled) == ("b", None, False)
    flags.enable_flag("f")
    assert flags.evaluate("f").value == "B"


def test_set_variant_creates_a_flag_with_a_definition(flags: Rollout) -> None:
    flags.set_variant("new", "on", True)
    assert flags.exists("new")
    assert flags.evaluate("new") == Resolution(None, None, "DEFAULT", None, None)


def test_delete_hides_the_definition_and_a_new_flag_starts_empty(flags: Rollout) -> None:
    flags.define_flag("f", {"a": 1}, default_variant="a", targeting={"if": [PRO, "a"]})
    flags.delete("f")
    assert flags.features() == []
    assert flags.evaluate("f").error_code == "FLAG_NOT_FOUND"
    flags.activate("f")
    feature = flags.get("f")
    assert (dict(feature.variants), feature.default_variant, feature.targeting) == ({}, None, None)
    assert flags.active("f", 1) is True  # an on/off flag again


# Errors: the argument and the value named, nothing written --------------------------------


@pytest.mark.parametrize(
    ("call", "error", "words"),
    [
        (lambda f: f.define_flag("x", {}, default_variant=None), ValueError, "variants must name"),
        (lambda f: f.define_flag("x", [1], default_variant=None), TypeError, "variants must be"),
        (
            lambda f: f.define_flag("x", {"a": 1, "b": "s"}, default_variant=None),
            ValueError,
            "variants must all be of one kind",
        ),
        (lambda f: f.define_flag("x", {"a": [1]}, default_variant=None), ValueError, "[1]"),
        (lambda f: f.define_flag("x", {"a": None}, default_variant=None), ValueError, "None"),
        (
            lambda f: f.define_flag("x", {"a": 1}, default_variant="b"),
            ValueError,
            "default_variant 'b' is not one of the flag's variants ['a']",
        ),
        (
            lambda f: f.define_flag("x", {" a": 1}, default_variant=None),
            ValueError,
            "variants key must not begin or end with whitespace, got ' a'",
        ),
        (
            lambda f: f.define_flag("x", {"a": 1}, default_variant="a", metadata={"k": [1]}),
            ValueError,
            "metadata['k']",
        ),
        (
            lambda f: f.define_flag("x", {"a": 1}, default_variant="a", enabled="yes"),
            TypeError,
            "enabled must be a bool, got 'yes'",
        ),
        (lambda f: f.define_rule("", PRO), ValueError, "rule_name must not be empty"),
        (lambda f: f.set_variant("x", "v", [1, 2]), ValueError, "value must be a boolean"),
    ],
)
def test_a_refused_write_names_argument_and_value_and_writes_nothing(
    flags: Rollout, call: Any, error: type[Exception], words: str
) -> None:
    before = flags.export()
    with pytest.raises(error) as raised:
        call(flags)
    assert words in str(raised.value)
    assert flags.export() == before
    assert flags.history("x") == []


def test_a_bad_rule_is_refused_with_its_json_path(flags: Rollout) -> None:
    with pytest.raises(RuleError) as raised:
        flags.define_flag(
            "x", {"a": 1}, default_variant="a", targeting={"if": [PRO, {"nope": [1]}]}
        )
    assert raised.value.path == "$.targeting.if[1].nope"
    with pytest.raises(RuleError):
        flags.define_rule("r", {"==": [1]})
    assert not flags.exists("x")
    assert flags.rules() == {}


def test_edits_of_what_is_not_there_are_refused(flags: Rollout) -> None:
    flags.define_flag("f", {"a": 1, "b": 2}, default_variant="a")
    flags.activate("plain")
    with pytest.raises(UnknownFlagError):
        flags.set_targeting("missing", None)
    with pytest.raises(UnknownFlagError):
        flags.remove_variant("missing", "a")
    with pytest.raises(ValueError, match=r"variant 'c' is not one of the variants of flag 'f'"):
        flags.remove_variant("f", "c")
    with pytest.raises(ValueError, match="'a' is the default variant of flag 'f'"):
        flags.remove_variant("f", "a")
    with pytest.raises(ValueError, match="variant 'z' is not one of the flag's variants"):
        flags.set_default_variant("f", "z")
    with pytest.raises(ValueError, match="value must be a number like the other variants"):
        flags.set_variant("f", "c", "three")
    with pytest.raises(ValueError, match="flag 'plain' has no variants"):
        flags.disable_flag("plain")
    with pytest.raises(ValueError, match="rule_name 'nope' names no rule"):
        flags.remove_rule("nope")
    assert dict(flags.get("f").variants) == {"a": 1, "b": 2}


# evaluate(): every reason ------------------------------------------------------------------


def test_evaluate_answers_every_reason_of_a_definition(flags: Rollout) -> None:
    flags.define_flag("static", {"a": "A", "b": "B"}, default_variant="a")
    assert flags.evaluate("static") == Resolution("A", "a", "STATIC", None, None)
    flags.define_flag("ruled", {"a": "A", "b": "B"}, default_variant="a", targeting=PRO_IF)
    assert flags.evaluate("ruled", {"plan": "pro"}) == Resolution(
        "B", "b", "TARGETING_MATCH", None, None
    )
    assert flags.evaluate("ruled", {"plan": "free"}) == Resolution("A", "a", "DEFAULT", None, None)
    flags.define_flag("nodefault", {"b": "B"}, default_variant=None, targeting=PRO_IF)
    assert flags.evaluate("nodefault", {}) == Resolution(None, None, "DEFAULT", None, None)
    flags.define_flag("off", {"a": "A"}, default_variant="a", enabled=False)
    assert flags.evaluate("off") == Resolution(None, None, "DISABLED", None, None)
    flags.define_flag("broken", {"a": "A"}, default_variant="a", targeting={"$ref": "missing"})
    broken = flags.evaluate("broken")
    assert (broken.value, broken.reason, broken.error_code) == (None, "ERROR", "PARSE_ERROR")
    flags.define_flag("stray", {"a": "A"}, default_variant="a", targeting={"if": [True, "zzz"]})
    stray = flags.evaluate("stray")
    assert (stray.value, stray.reason, stray.error_code) == (None, "ERROR", "GENERAL")
    missing = flags.evaluate("missing")
    assert missing[:4] == (None, None, "ERROR", "FLAG_NOT_FOUND")
    assert "missing" in (missing.error_message or "")


PRO_IF = {"if": [{"in": [{"var": "plan"}, ["pro"]]}, "b", None]}


def test_evaluate_an_on_off_flag(flags: Rollout) -> None:
    flags.activate("on")
    flags.set("off", False)
    flags.activate_user("listed", 7)
    flags.activate_percentage("half", 50)
    assert flags.evaluate("on") == Resolution(True, "on", "STATIC", None, None)
    assert flags.evaluate("off") == Resolution(False, "off", "DISABLED", None, None)
    assert flags.evaluate("listed", {"targetingKey": "7"}).reason == "TARGETING_MATCH"
    assert flags.evaluate("listed", 8) == Resolution(False, "off", "DEFAULT", None, None)
    half = flags.evaluate("half", "3")
    assert half.reason == "SPLIT" if half.value else half.reason == "DEFAULT"
    assert half.value is flags.active("half", "3")
    with flags.override("off", True):
        assert flags.evaluate("off") == Resolution(True, "on", "STATIC", None, None)


class User:
    def __init__(self, uid: int, plan: str) -> None:
        self.id = uid
        self.plan = plan


def test_contexts_are_mappings_user_objects_or_ids(flags: Rollout) -> None:
    rule = {"if": [{"==": [{"var": "targetingKey"}, "42"]}, "b", {"if": [PRO, "b", "a"]}]}
    flags.define_flag("f", {"a": 1, "b": 2}, default_variant="a", targeting=rule)
    assert flags.evaluate("f", {"targetingKey": "42"}).value == 2
    assert flags.evaluate("f", 42).value == 2
    assert flags.evaluate("f", User(1, "enterprise")).value == 2
    assert flags.evaluate("f", User(1, "free")).value == 1
    assert flags.evaluate("f", None).value == 1


class Account:
    """A user object as applications write them: a property, a class attribute, a method."""

    region = "eu"

    def __init__(self, uid: str, plan: str) -> None:
        self.id = uid
        self._plan = plan

    @property
    def plan(self) -> str:
        return self._plan

    def upgrade(self) -> None:  # pragma: no cover - never called: rules read no methods
        raise AssertionError("a rule called a method")


def test_a_user_objects_properties_and_class_attributes_reach_rules(flags: Rollout) -> None:
    rule = {"and": [PRO, {"==": [{"var": "region"}, "eu"]}]}
    flags.define_flag("f", {"a": 1, "b": 2}, default_variant="a", targeting={"if": [rule, "b"]})
    assert flags.evaluate("f", Account("1", "pro")).value == 2
    assert flags.evaluate("f", Account("1", "free")).value == 1
    flags.define_rule("eu-pro", rule)
    flags.activate_group("chat", "eu-pro")
    assert flags.active("chat", Account("7", "enterprise")) is True
    # Private names and methods are no part of the context: they read as absent.
    for name in ("_plan", "upgrade"):
        flags.set_targeting("f", {"if": [{"missing": [name]}, "b"]})
        assert flags.evaluate("f", Account("1", "pro")).value == 2, name
    flags.set_targeting("f", {"if": [{"==": [{"var": "targetingKey"}, "9"]}, "b"]})
    assert flags.evaluate("f", Account("9", "free")).value == 2


def test_a_numeric_targeting_key_in_a_mapping_is_the_same_user_as_its_text(flags: Rollout) -> None:
    # As everywhere in the library (42 is "42"), and as the OpenFeature provider reads a key.
    split = {"fractional": [["a", 50], ["b", 50]]}
    flags.define_flag("split", {"a": "A", "b": "B"}, default_variant="a", targeting=split)
    as_text = flags.evaluate("split", {"targetingKey": "42"})
    assert as_text.reason == "TARGETING_MATCH"
    assert flags.evaluate("split", {"targetingKey": 42}) == as_text
    assert flags.evaluate("split", 42) == as_text
    keyed = {"==": [{"var": "targetingKey"}, "7"]}
    flags.define_flag(
        "seven", {"true": True, "false": False}, default_variant="false", targeting=keyed
    )
    assert flags.active("seven", {"targetingKey": 7}) is True


def test_active_of_a_definition_is_whether_it_resolves_to_true(flags: Rollout) -> None:
    flags.define_flag("b", {"on": True, "off": False}, default_variant="off", targeting=ON_IF_PRO)
    assert flags.active("b", User(1, "pro")) is True
    assert flags.active("b", User(2, "free")) is False
    assert flags.active("b") is False
    flags.set_targeting("b", None)
    flags.set_default_variant("b", "on")
    assert flags.active("b") is True  # no user: the definition for an empty context
    flags.disable_flag("b")
    assert flags.active("b", User(1, "pro")) is False
    flags.define_flag("s", {"on": "yes"}, default_variant="on")  # not the value True
    assert flags.active("s", 1) is False
    assert flags.feature_states(User(1, "pro")) == {"b": False, "s": False}
    explanation = flags.explain("b", User(1, "pro"))
    assert (explanation.active, explanation.reason) == (False, "definition")
    assert "DISABLED" in explanation.message


ON_IF_PRO = {"if": [PRO, "on", "off"]}


# Named rules: shared evaluators and segments -------------------------------------------------


def test_a_rule_change_recompiles_the_flags_that_refer_to_it(flags: Rollout) -> None:
    flags.define_rule("pro", PRO)
    flags.define_rule("pro-or-staff", {"or": [{"$ref": "pro"}, {"var": "staff"}]})
    flags.define_flag("f", {"a": 1, "b": 2}, default_variant="a", targeting=REF_IF)
    flags.define_flag("other", {"x": "X"}, default_variant="x")
    changes: list[set[str]] = []
    flags.subscribe(changes.append)
    assert flags.evaluate("f", {"plan": "enterprise"}).value == 2
    flags.define_rule("pro", {"==": [{"var": "plan"}, "pro"]})
    assert flags.evaluate("f", {"plan": "enterprise"}).value == 1
    assert flags.evaluate("f", {"staff": True}).value == 2
    assert changes == [{"f"}]  # through the rule that refers to it; "other" did not change
    assert flags.rules() == {
        "pro": {"==": [{"var": "plan"}, "pro"]},
        "pro-or-staff": {"or": [{"$ref": "pro"}, {"var": "staff"}]},
    }


REF_IF = {"if": [{"$ref": "pro-or-staff"}, "b", "a"]}


def test_a_rule_in_use_cannot_be_removed_and_an_unused_one_can(flags: Rollout) -> None:
    flags.define_rule("pro", PRO)
    flags.define_flag("f", {"a": 1}, default_variant="a", targeting={"if": [{"$ref": "pro"}, "a"]})
    with pytest.raises(ValueError, match=r"rule 'pro' is referred to \(\$ref\) by \['f'\]"):
        flags.remove_rule("pro")
    flags.set_targeting("f", None)
    flags.remove_rule("pro")
    assert flags.rules() == {}


def test_a_rule_that_is_the_group_of_an_on_off_flag_cannot_be_removed(flags: Rollout) -> None:
    # A segment in use, as a rule a flag refers to: removing it would turn the flag off for
    # everyone it matched, with no word; the flag's group goes first.
    flags.define_rule("pro", PRO)
    flags.activate_group("chat", "pro")
    flags.activate_group("search", "pro")
    with pytest.raises(ValueError, match=r"rule 'pro' is the group of \['chat', 'search'\]"):
        flags.remove_rule("pro")
    assert flags.rules() == {"pro": PRO}
    assert flags.active("chat", User(1, "pro")) is True
    flags.deactivate_group("chat", "pro")
    flags.delete("search")
    flags.remove_rule("pro")
    assert flags.rules() == {}


def test_a_named_rule_is_the_group_of_an_on_off_flag(flags: Rollout) -> None:
    flags.activate_group("chat", "pro")
    assert flags.active("chat", User(1, "pro")) is False  # no rule, no predicate: no
    flags.define_rule("pro", PRO)
    assert flags.active("chat", User(1, "pro")) is True
    assert flags.active("chat", User(2, "free")) is False
    explanation = flags.explain("chat", User(1, "pro"))
    assert (explanation.reason, explanation.group) == ("group", "pro")
    assert "named rule 'pro'" in explanation.message
    assert flags.evaluate("chat", {"targetingKey": "1", "plan": "pro"}).value is True
    flags.define_group("pro", lambda user: user.id == 2)  # code wins over the rule
    assert flags.active("chat", User(2, "free")) is True
    assert flags.active("chat", User(1, "pro")) is False


def test_active_in_group_asks_a_named_rule_as_the_flags_check_does(flags: Rollout) -> None:
    # A segment is a group everywhere a group is asked, not only inside a flag's check.
    flags.define_rule("pro", PRO)
    assert flags.active_in_group("pro", User(1, "pro")) is True
    assert flags.active_in_group("pro", User(2, "free")) is False
    assert flags.active_in_group("nobody", User(1, "pro")) is False
    flags.define_group("pro", lambda user: user.id == 2)  # code wins over the rule
    assert flags.active_in_group("pro", User(2, "free")) is True
    assert flags.active_in_group("pro", User(1, "pro")) is False


def test_explain_takes_a_mapping_context_as_evaluate_does(flags: Rollout) -> None:
    context = {"targetingKey": "1", "plan": "pro"}
    flags.define_flag("f", {"on": True, "off": False}, default_variant="off", targeting=ON_IF_PRO)
    assert flags.active("f", context) is True
    explanation = flags.explain("f", context)
    assert (explanation.user, explanation.active, explanation.reason) == ("1", True, "definition")
    flags.define_rule("pro", PRO)
    flags.activate_group("chat", "pro")
    explanation = flags.explain("chat", context)
    assert (explanation.user, explanation.active, explanation.group) == ("1", True, "pro")
    assert flags.evaluate("chat", context).value is explanation.active


def test_explain_of_a_context_without_a_key_asks_the_groups_as_evaluate_does(
    flags: Rollout,
) -> None:
    flags.define_rule("pro", PRO)
    flags.activate_group("chat", "pro")
    why = flags.explain("chat", {"plan": "pro"})
    assert (why.user, why.active, why.reason, why.group) == (None, True, "group", "pro")
    assert "named rule 'pro'" in why.message
    assert flags.evaluate("chat", {"plan": "pro"}).reason == "TARGETING_MATCH"
    assert flags.explain("chat", {"plan": "free"}).reason == "no_user"
    assert flags.evaluate("chat", {"plan": "free"}).reason == "DEFAULT"


def test_rules_never_appear_as_flags(flags: Rollout) -> None:
    flags.define_rule("pro", PRO)
    assert flags.features() == []
    assert flags.feature_states() == {}
    assert flags.stats()["flags"] == 0
    flags.clear()
    assert flags.rules() == {"pro": PRO}
    assert " rules" in json.loads(flags.export())["flags"]  # but replicated


# History ------------------------------------------------------------------------------------


def test_every_change_is_in_history_with_actor_and_reason(flags: Rollout) -> None:
    with flags.with_context(user="alice"):
        flags.define_flag("f", {"a": 1}, default_variant="a", reason="launch")
        flags.set_variant("f", "b", 2)
        flags.set_targeting("f", {"if": [PRO, "b"]})
        flags.disable_flag("f")
        flags.define_rule("pro", PRO)
    events = flags.history("f")
    assert [e.action for e in events] == [
        "disable_flag",
        "set_targeting",
        "set_variant",
        "define_flag",
    ]
    assert {e.actor for e in events} == {"alice"}
    assert events[-1].reason == "launch"
    assert events[-1].after == {
        "exists": True,
        "variant:a": 1,
        "default_variant": "a",
    }
    assert (events[0].before, events[0].after) == ({"disabled": False}, {"disabled": True})
    assert events[2].after == {"variant:b": 2}
    [rule_event] = flags.rule_history()
    assert (rule_event.action, rule_event.actor, rule_event.after) == (
        "define_rule",
        "alice",
        {"rule:pro": PRO},
    )


def test_a_rule_creates_no_flag_in_history_and_other_writes_still_do(flags: Rollout) -> None:
    flags.define_rule("pro", PRO)
    flags.remove_rule("pro")
    assert [e.after for e in flags.rule_history()] == [{"rule:pro": None}, {"rule:pro": PRO}]
    flags.set_feature_data("empty", {})  # a write of nothing still creates the flag
    assert [e.after for e in flags.history("empty")] == [{"exists": True}]


# Replication: export/merge, element by element ---------------------------------------------


def test_definitions_and_rules_travel_by_export_and_merge() -> None:
    a, b = Rollout(node_name="a"), Rollout(node_name="b")
    a.define_rule("pro", PRO)
    a.define_flag("f", {"x": 1, "y": 2}, default_variant="x", targeting={"if": [REF, "y"]})
    assert merged(a, b) == {"f"}
    assert b.rules() == {"pro": PRO}
    assert b.evaluate("f", {"plan": "pro"}).value == 2
    assert b.get("f") == a.get("f")


REF = {"$ref": "pro"}


def test_concurrent_edits_of_different_variants_are_both_kept() -> None:
    a, b = Rollout(node_name="a"), Rollout(node_name="b")
    a.define_flag("f", {"x": 1, "y": 2}, default_variant="x")
    merged(a, b)
    a.set_variant("f", "x", 10)  # meanwhile, on b:
    b.set_variant("f", "y", 20)
    b.define_rule("one", PRO)
    a.define_rule("two", PRO)
    merged(a, b)
    merged(b, a)
    for replica in (a, b):
        assert dict(replica.get("f").variants) == {"x": 10, "y": 20}
        assert set(replica.rules()) == {"one", "two"}


def test_a_new_definition_hides_older_concurrent_edits_but_not_later_ones() -> None:
    now = [1_700_000_000_000]  # one wall clock (ms) for both, moved by hand
    a = Rollout(node_name="a", clock=lambda: now[0])
    b = Rollout(node_name="b", clock=lambda: now[0])
    a.define_flag("f", {"x": 1}, default_variant="x")
    merged(a, b)
    now[0] += 10
    b.set_variant("f", "old", 5)  # before a's new definition in time
    now[0] += 10
    a.define_flag("f", {"z": 3}, default_variant="z")
    now[0] += 10
    merged(a, b)
    merged(b, a)
    assert dict(a.get("f").variants) == dict(b.get("f").variants) == {"z": 3}
    b.set_variant("f", "later", 4)
    merged(b, a)
    assert dict(a.get("f").variants) == {"z": 3, "later": 4}


def test_a_delete_replicates_and_hides_the_definition() -> None:
    a, b = Rollout(node_name="a"), Rollout(node_name="b")
    a.define_flag("f", {"x": 1}, default_variant="x")
    merged(a, b)
    a.delete("f")
    merged(a, b)
    assert b.features() == []
    assert b.evaluate("f").error_code == "FLAG_NOT_FOUND"


# flagd files --------------------------------------------------------------------------------

DOCUMENT = {
    "flags": {
        "checkout": {
            "state": "ENABLED",
            "variants": {"old": "v1", "new": "v2"},
            "defaultVariant": "old",
            "targeting": {"if": [{"$ref": "pros"}, "new", "old"]},
            "metadata": {"team": "payments"},
        },
        "banner": {
            "state": "DISABLED",
            "variants": {"shown": True, "hidden": False},
            "defaultVariant": "hidden",
        },
        "limits": {
            "state": "ENABLED",
            "variants": {"low": {"max": 1}, "high": {"max": 9}},
            "defaultVariant": None,
            "targeting": {"fractional": [["low", 50], ["high", 50]]},
        },
    },
    "$evaluators": {"pros": {"in": [{"var": "plan"}, ["pro"]]}},
}


def test_load_flagd_then_export_round_trips(flags: Rollout, tmp_path: Path) -> None:
    path = tmp_path / "flags.json"
    path.write_text(json.dumps(DOCUMENT))
    assert flags.load_flagd(path) == ["banner", "checkout", "limits"]
    assert flags.evaluate("checkout", {"plan": "pro"}).value == "v2"
    assert flags.evaluate("banner").reason == "DISABLED"
    exported = flags.export_flagd()
    assert parse_flagd(exported) == parse_flagd(DOCUMENT)
    again = Rollout()
    again.load_flagd(json.dumps(exported))  # JSON text too
    assert again.export_flagd() == exported
    assert [e.action for e in flags.history("checkout")] == ["load_flagd"]
    assert [e.action for e in flags.rule_history()] == ["load_flagd"]


def test_load_flagd_inherits_top_level_metadata(flags: Rollout) -> None:
    document = {**DOCUMENT, "metadata": {"flagSetId": "shop", "team": "all"}}
    flags.load_flagd(document)
    assert dict(flags.get("checkout").data) == {"flagSetId": "shop", "team": "payments"}
    assert dict(flags.get("banner").data) == {"flagSetId": "shop", "team": "all"}


def test_a_bad_flagd_document_writes_nothing(flags: Rollout) -> None:
    bad = json.loads(json.dumps(DOCUMENT))
    bad["flags"]["limits"]["targeting"] = {"==": [{"var": "plan"}]}
    with pytest.raises(RuleError) as raised:
        flags.load_flagd(bad)
    assert "limits" in raised.value.path
    assert flags.features() == []
    assert flags.rules() == {}


def test_a_rule_from_the_future_is_held_and_can_be_accepted(flags: Rollout) -> None:
    ahead = 2**41  # milliseconds: a clock decades ahead
    held = {
        "format": "rollout",
        "version": 1,
        "flags": {" rules": {"rule:pro": [ahead, 0, 5, PRO]}},
    }
    assert flags.merge(json.dumps(held).encode()) == set()
    assert flags.rules() == {}
    [entry] = flags.quarantined(" rules")
    assert (entry.flag, entry.key) == (" rules", "rule:pro")
    assert flags.accept_quarantined(" rules") == 1
    assert flags.rules() == {"pro": PRO}
    assert flags.features() == []


def test_a_rule_that_fails_is_counted_and_never_raises(flags: Rollout) -> None:
    flags.define_flag("f", {"on": True}, default_variant="on", targeting={"$ref": "gone"})
    # Over the iteration budget: a million visits of the rows' cells.
    cell_is_one = {"some": [{"var": ""}, {"==": [{"var": ""}, 1]}]}
    flags.define_rule("any-one", {"some": [{"var": "rows"}, cell_is_one]})
    flags.activate_group("chat", "any-one")
    assert flags.active("f", 1) is False  # PARSE_ERROR: the caller's default
    assert flags.evaluate("f").reason == "ERROR"
    assert flags.active("chat", Grid([[0] * 1000] * 1000)) is False
    assert flags.active("chat", Grid([[1]])) is True
    assert flags.stats()["rule_errors"] == 3


class Grid:
    def __init__(self, rows: list[list[int]]) -> None:
        self.id = "grid"
        self.rows = rows


def test_definitions_compile_once_per_change_not_per_check(
    flags: Rollout, monkeypatch: pytest.MonkeyPatch
) -> None:
    import rollout._core.targeting as engine  # the replica calls engine.compile_flag

    compiled: list[str] = []
    real = engine.compile_flag

    def counting(definition: Any, rules: Any) -> Any:
        compiled.append(json.dumps(definition.targeting))
        return real(definition, rules)

    monkeypatch.setattr(engine, "compile_flag", counting)
    flags.define_rule("pro", PRO)
    flags.define_flag("uses", {"a": 1, "b": 2}, default_variant="a", targeting=REF_IF_PRO)
    flags.define_flag("plain", {"x": True}, default_variant="x")
    assert len(compiled) == 2
    for user in range(200):
        flags.evaluate("uses", {"targetingKey": str(user), "plan": "pro"})
        flags.active("plain", user)
    assert len(compiled) == 2  # checks run what was compiled
    flags.define_rule("unused", PRO)
    assert len(compiled) == 2  # no flag refers to it
    flags.define_rule("pro", {"==": [{"var": "plan"}, "pro"]})
    assert compiled[2:] == [json.dumps(REF_IF_PRO)]  # only the flag that refers to it


REF_IF_PRO = {"if": [{"$ref": "pro"}, "b", "a"]}
