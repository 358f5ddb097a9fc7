"""JsonLogic operators, one by one, with json-logic-js's answers (JavaScript coercions)."""

from __future__ import annotations

import math
from typing import Any

import pytest

from rollout._core.targeting import (
    MAX_RULE_DEPTH,
    MAX_RULE_NODES,
    FlagDefinition,
    RuleError,
    check_rule,
    compile_flag,
    compile_predicate,
)
from rollout._core.targeting.bounds import MAX_ITERATIONS
from rollout._core.targeting.compiler import compile_rule, new_budget


def apply(rule: Any, data: Any = None) -> Any:
    return compile_rule(rule, {}).evaluate(data if data is not None else {}, new_budget())


CASES: list[tuple[Any, Any, Any]] = [
    # var: dotted paths, defaults, "" is the data, numeric indexes, explicit null kept
    ({"var": "a"}, {"a": 1}, 1),
    ({"var": ["a", 2]}, {}, 2),
    ({"var": ["a", 2]}, {"a": None}, None),
    ({"var": "a.b"}, {"a": {"b": "c"}}, "c"),
    ({"var": "a.b"}, {"a": 5}, None),
    ({"var": 1}, ["x", "y"], "y"),
    ({"var": "1.name"}, [{}, {"name": "n"}], "n"),
    ({"var": "01"}, ["x", "y"], None),
    # Only ASCII digits index an array (JavaScript's array index): "²" is a digit to Python's
    # isdigit() that int() refuses, and U+0661 (Arabic-Indic one) is no index in JavaScript.
    ({"var": "²"}, ["x", "y", "z"], None),
    ({"var": "\u0661"}, ["x", "y"], None),
    ({"var": ""}, {"a": 1}, {"a": 1}),
    ({"var": []}, [3], [3]),
    ({"var": {"cat": ["a", ".b"]}}, {"a": {"b": 7}}, 7),
    # missing, missing_some
    ({"missing": ["a", "b", "c"]}, {"a": 1, "c": ""}, ["b", "c"]),
    ({"missing": {"merge": [["a"], ["b"]]}}, {"b": 0}, ["a"]),
    ({"missing_some": [1, ["a", "b"]]}, {"b": 2}, []),
    ({"missing_some": [2, ["a", "b", "c"]]}, {"a": 1}, ["b", "c"]),
    # if / ?:
    ({"if": [True, "yes", "no"]}, {}, "yes"),
    ({"if": [[], "yes", "no"]}, {}, "no"),
    ({"if": ["0", "yes", "no"]}, {}, "yes"),
    ({"if": [False, 1, False, 2, 3]}, {}, 3),
    ({"if": [False, 1, True, 2, 3]}, {}, 2),
    ({"if": [False, 1]}, {}, None),
    ({"if": ["only"]}, {}, "only"),
    ({"?:": [0, "a", "b"]}, {}, "b"),
    # equality, loose and strict
    ({"==": [1, "1"]}, {}, True),
    ({"==": [0, False]}, {}, True),
    ({"==": ["", 0]}, {}, True),
    ({"==": [None, False]}, {}, False),
    ({"==": [None, None]}, {}, True),
    ({"==": [[1], 1]}, {}, True),
    ({"==": ["a", "b"]}, {}, False),
    ({"===": [1, "1"]}, {}, False),
    ({"===": [1, 1.0]}, {}, True),
    ({"===": [True, 1]}, {}, False),
    ({"!=": [1, "2"]}, {}, True),
    ({"!==": [1, "1"]}, {}, True),
    # negation, truthiness: an empty array is false, "0" is true
    ({"!": [[]]}, {}, True),
    ({"!": True}, {}, False),
    ({"!!": ["0"]}, {}, True),
    ({"!!": [""]}, {}, False),
    ({"!!": [{"var": "x"}]}, {"x": {}}, True),
    # and / or return an operand
    ({"or": [False, 0, "a"]}, {}, "a"),
    ({"or": [False, 0]}, {}, 0),
    ({"and": [True, "", 3]}, {}, ""),
    ({"and": [1, 2]}, {}, 2),
    # comparisons: two strings compare as strings, anything else as numbers
    ({"<": [1, 2]}, {}, True),
    ({"<": ["10", "9"]}, {}, True),
    ({"<": ["10", 9]}, {}, False),
    ({"<": [1, 2, 3]}, {}, True),
    ({"<": [1, 1, 3]}, {}, False),
    ({"<=": [1, 1, 3]}, {}, True),
    ({">": ["11", 9]}, {}, True),
    ({">=": [None, 0]}, {}, True),
    ({">": ["a", 1]}, {}, False),
    ({"<=": ["a", 1]}, {}, False),
    # max, min, arithmetic
    ({"max": [1, "3", 2]}, {}, 3),
    ({"min": [1, "3", 2]}, {}, 1),
    ({"+": ["1", 2]}, {}, 3),
    ({"+": ["3.5px"]}, {}, 3.5),
    ({"-": [5]}, {}, -5),
    ({"-": [5, "2"]}, {}, 3),
    ({"*": ["2", 3, 4]}, {}, 24),
    ({"/": [4, 2]}, {}, 2),
    ({"%": [-7, 3]}, {}, -1),
    ({"%": [7.5, 2]}, {}, 1.5),
    # in, cat, substr, merge
    ({"in": ["Spring", "Springfield"]}, {}, True),
    ({"in": [1, "a1"]}, {}, True),
    ({"in": ["a", ["a", "b"]]}, {}, True),
    ({"in": [1, ["1"]]}, {}, False),
    ({"in": ["x", None]}, {}, False),
    ({"cat": ["I love", " pie"]}, {}, "I love pie"),
    ({"cat": [1.0, None, True, 0.5]}, {}, "1nulltrue0.5"),
    ({"cat": [[1, [2, None]]]}, {}, "1,2,"),
    ({"substr": ["jsonlogic", 4]}, {}, "logic"),
    ({"substr": ["jsonlogic", -5]}, {}, "logic"),
    ({"substr": ["jsonlogic", 1, 3]}, {}, "son"),
    ({"substr": ["jsonlogic", 4, -2]}, {}, "log"),
    ({"substr": ["jsonlogic", 20]}, {}, ""),
    ({"merge": [[1, 2], [3], 4]}, {}, [1, 2, 3, 4]),
    ({"merge": [[[1]], []]}, {}, [[1]]),
    # iteration over the data
    ({"map": [{"var": "n"}, {"*": [{"var": ""}, 2]}]}, {"n": [1, 2, 3]}, [2, 4, 6]),
    ({"map": [{"var": "n"}, {"var": ""}]}, {"n": 5}, []),
    ({"filter": [{"var": "n"}, {">": [{"var": ""}, 1]}]}, {"n": [1, 2, 3]}, [2, 3]),
    (
        {"reduce": [{"var": "n"}, {"+": [{"var": "current"}, {"var": "accumulator"}]}, 10]},
        {"n": [1, 2, 3]},
        16,
    ),
    ({"reduce": [{"var": "n"}, {"var": "current"}, "init"]}, {"n": None}, "init"),
    ({"all": [{"var": "n"}, {">": [{"var": ""}, 0]}]}, {"n": [1, 2]}, True),
    ({"all": [{"var": "n"}, {">": [{"var": ""}, 0]}]}, {"n": []}, False),
    ({"all": [{"var": "n"}, {">": [{"var": ""}, 1]}]}, {"n": [1, 2]}, False),
    ({"none": [{"var": "n"}, {">": [{"var": ""}, 5]}]}, {"n": [1, 2]}, True),
    ({"some": [{"var": "n"}, {">": [{"var": ""}, 1]}]}, {"n": [1, 2]}, True),
    ({"some": [{"var": "n"}, {">": [{"var": ""}, 1]}]}, {}, False),
    # literals: arrays are evaluated element by element, objects of 0 or 2+ keys are data
    ([{"var": "a"}, 2], {"a": 1}, [1, 2]),
    ({"if": [True, {"a": 1, "b": 2}, 0]}, {}, {"a": 1, "b": 2}),
    ({}, {}, {}),
    # a folded constant beside a closure (once mistaken for one another by a reused id)
    ({"cat": [{"==": [None, None]}, {"and": [False, None]}]}, {}, "truefalse"),
]


@pytest.mark.parametrize(("rule", "data", "expected"), CASES)
def test_operator(rule: Any, data: Any, expected: Any) -> None:
    result = apply(rule, data)
    assert result == expected
    if isinstance(expected, bool):
        assert result is expected  # a boolean, not 1 or 0


def test_division_by_zero_is_infinite_as_in_javascript() -> None:
    assert apply({"/": [1, 0]}) == math.inf
    assert apply({"/": [-1, 0]}) == -math.inf
    assert math.isnan(apply({"/": [0, 0]}))
    assert math.isnan(apply({"%": [1, 0]}))
    assert math.isnan(apply({"+": ["abc"]}))
    assert apply({"==": [{"+": ["abc"]}, {"+": ["abc"]}]}) is False  # NaN equals nothing


@pytest.mark.parametrize(
    ("rule", "path", "words"),
    [
        ({"nope": [1]}, "$.nope", "unknown operator 'nope'"),
        ({"if": [{"and": [{"nope": 1}]}, 1]}, "$.if[0].and[0].nope", "unknown operator"),
        ({"==": [1]}, "$['==']", "takes 2 arguments, not 1"),
        ({"<": [1, 2, 3, 4]}, "$['<']", "takes 2 to 3 arguments, not 4"),
        ({"and": []}, "$.and", "1 or more"),
        ({"map": [[1]]}, "$.map", "takes 2 arguments"),
        ({"var": "$flagd.nope"}, "$.var", "$flagd.nope"),
        ({"$ref": 3}, "$.$ref", "$ref must name an evaluator"),
    ],
)
def test_a_bad_rule_is_refused_naming_its_path(rule: Any, path: str, words: str) -> None:
    with pytest.raises(RuleError) as raised:
        check_rule(rule)
    assert raised.value.path == path
    assert words in str(raised.value)
    assert str(raised.value).startswith(path)


def test_check_rule_takes_a_base_path_and_wants_an_object() -> None:
    with pytest.raises(RuleError) as raised:
        check_rule({"if": [{"nope": 1}]}, "$.flags.f.targeting")
    assert raised.value.path == "$.flags.f.targeting.if[0].nope"
    with pytest.raises(RuleError, match="a rule is a JSON object"):
        check_rule("on")


def test_an_unknown_ref_is_not_an_error_when_checking() -> None:
    check_rule({"if": [{"$ref": "defined_later"}, "on", "off"]})


def test_size_and_depth_are_bounded_at_write() -> None:
    check_rule({"in": [{"var": "x"}, list(range(MAX_RULE_NODES - 10))]})
    with pytest.raises(RuleError, match="more than"):
        check_rule({"in": [{"var": "x"}, list(range(MAX_RULE_NODES))]})
    deep: Any = {"var": "x"}
    for _ in range(MAX_RULE_DEPTH):
        deep = {"!": [deep]}
    with pytest.raises(RuleError, match="nested deeper"):
        check_rule(deep)
    very_deep: Any = 1
    for _ in range(100_000):  # far past Python's recursion limit: refused, not crashed on
        very_deep = {"!": very_deep}
    with pytest.raises(RuleError):
        check_rule(very_deep)


def test_refs_inside_evaluators_expand_and_a_cycle_is_refused() -> None:
    evaluators = {
        "a": {"!": {"$ref": "b"}},
        "b": {"==": [{"var": "x"}, 1]},
        "loop": {"!": {"$ref": "loop"}},
    }
    assert compile_predicate({"$ref": "a"}, evaluators)({"x": 2}) is True
    with pytest.raises(RuleError, match="cycle"):
        compile_predicate({"$ref": "loop"}, evaluators)


def test_nested_iteration_is_bounded_per_evaluation() -> None:
    items = [list(range(400))] * 400
    rule = {"some": [{"var": "items"}, {"some": [{"var": ""}, False]}]}  # 400 x 400 visits
    errors: list[Exception] = []
    predicate = compile_predicate(rule, {}, on_error=errors.append)
    assert predicate({"items": items}) is False
    assert len(errors) == 1
    assert str(MAX_ITERATIONS) in str(errors[0])
    small = [list(range(100))] * 100  # 10,100 visits: fine
    assert compile_predicate(rule, {}, on_error=errors.append)({"items": small}) is False
    assert len(errors) == 1


def flag(rule: Any, **variants: Any) -> FlagDefinition:
    variants = variants or {"on": True, "off": False}
    default = "off" if "off" in variants else "other"
    return FlagDefinition(variants=variants, default_variant=default, targeting=rule)


@pytest.mark.parametrize(
    ("result", "variant"),
    [(True, "true"), (False, "false"), (1, "1"), (1.0, "1"), (2.5, "2.5"), ("v", "v")],
)
def test_a_rules_result_names_a_variant_as_flagd_reads_it(result: Any, variant: str) -> None:
    definition = flag({"if": [True, result]}, **{variant: "chosen", "other": "no"})
    resolution = compile_flag(definition, {}).resolve("f", {})
    assert (resolution.value, resolution.variant, resolution.reason) == (
        "chosen",
        variant,
        "TARGETING_MATCH",
    )


@pytest.mark.parametrize(
    "rule",
    [
        {"if": [True, "missing"]},
        {"merge": [["on"]]},
        {"/": [1, 0]},
        {"if": [True, {"a": 1, "b": 2}]},
    ],
)
def test_a_result_that_names_no_variant_is_an_error(rule: Any) -> None:
    resolution = compile_flag(flag(rule), {}).resolve("f", {})
    assert (resolution.value, resolution.variant, resolution.reason, resolution.error_code) == (
        None,
        None,
        "ERROR",
        "GENERAL",
    )
    assert resolution.error_message


def test_an_evaluation_error_never_escapes_resolve() -> None:
    rule = {"if": [{"all": [{"var": "nothing"}, True]}, "on", "off"]}  # json-logic-js: null.length
    resolution = compile_flag(flag(rule), {}).resolve("f", {})
    assert (resolution.reason, resolution.error_code) == ("ERROR", "GENERAL")
    odd_context = {"x": object()}
    resolution = compile_flag(flag({"if": [{"in": ["a", {"var": "x"}]}, "on", "off"]}), {}).resolve(
        "f", odd_context
    )
    assert (resolution.value, resolution.reason) == (False, "TARGETING_MATCH")


def test_flagd_properties_are_in_the_context() -> None:
    rule = {
        "if": [{"==": [{"var": "$flagd.flagKey"}, "checkout"]}, {"var": "$flagd.timestamp"}, "off"]
    }
    definition = flag(rule, on=True, off=False, **{"1700000000": True})
    compiled = compile_flag(definition, {}, now=lambda: 1_700_000_000.7)
    assert compiled.resolve("checkout", {}).variant == "1700000000"
    assert (
        compiled.resolve("other", {"$flagd": {"flagKey": "checkout"}}).variant == "off"
    )  # replaced


def test_compile_flag_compiles_once_and_keeps_no_state_between_checks() -> None:
    compiled = compile_flag(
        flag({"if": [{"in": [{"var": "plan"}, ["pro", "team"]]}, "on", "off"]}), {}
    )
    answers = [
        compiled.resolve("f", {"plan": plan}).value for plan in ("pro", "free", "team", None)
    ]
    assert answers == [True, False, True, False]


def test_a_default_that_names_no_variant_is_a_parse_error_not_a_crash() -> None:
    definition = FlagDefinition(
        variants={"a": 1}, default_variant="b", targeting={"if": [True, "a"]}
    )
    resolution = compile_flag(definition, {}).resolve("f", {})
    assert (resolution.value, resolution.reason, resolution.error_code) == (
        None,
        "ERROR",
        "PARSE_ERROR",
    )


def test_predicates_use_jsonlogic_truthiness() -> None:
    assert compile_predicate({"var": "tags"}, {})({"tags": []}) is False
    assert compile_predicate({"var": "tags"}, {})({"tags": ["a"]}) is True
    assert compile_predicate({"var": "n"}, {})({"n": "0"}) is True
    with pytest.raises(RuleError):
        compile_predicate({"nope": 1}, {})
    with pytest.raises(RuleError):
        compile_predicate({"$ref": "absent"}, {})
