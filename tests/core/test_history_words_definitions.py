"""History in words for the changes of a definition and of named rules, as the dashboard and
``rollout history`` show them, from the events the library really records."""

from __future__ import annotations

from rollout import Rollout
from rollout._core.history_words import action_title, event_changes

PRO = {"in": [{"var": "plan"}, ["pro"]]}


def words(flags: Rollout, name: str) -> list[tuple[str, list[str]]]:
    return [
        (action_title(e.action, e.after), event_changes(e.before, e.after))
        for e in reversed(flags.history(name))
    ]


def test_each_change_of_a_definition_reads_as_a_sentence() -> None:
    flags = Rollout()
    flags.define_flag("f", {"a": 1}, default_variant="a")
    flags.set_variant("f", "a", 2)
    flags.set_variant("f", "b", 3)
    flags.set_default_variant("f", "b")
    flags.set_targeting("f", {"if": [PRO, "a"]})
    flags.disable_flag("f")
    flags.enable_flag("f")
    flags.remove_variant("f", "a")
    assert words(flags, "f") == [
        (
            "defined variants and targeting",
            ['default variant: none → "a"', "created", "added variant a: 1"],
        ),
        ("changed a variant", ["changed variant a: 1 → 2"]),
        ("changed a variant", ["added variant b: 3"]),
        ("changed the default variant", ['default variant: "a" → "b"']),
        (
            "changed the targeting rule",
            ['targeting rule: none → {"if": [{"in": [{"var": "plan"}, ["pro"]]}, "a"]}'],
        ),
        ("disabled (flagd state)", ["disabled"]),
        ("enabled (flagd state)", ["enabled"]),
        ("removed a variant", ["removed variant a (was 2)"]),
    ]


def test_rule_changes_read_as_sentences() -> None:
    flags = Rollout()
    flags.define_rule("pro", PRO)
    flags.remove_rule("pro")
    assert [
        (action_title(e.action, e.after), event_changes(e.before, e.after))
        for e in reversed(flags.rule_history())
    ] == [
        ("defined a rule", ['added rule pro: {"in": [{"var": "plan"}, ["pro"]]}']),
        ("removed a rule", ['removed rule pro (was {"in": [{"var": "plan"}, ["pro"]]})']),
    ]
