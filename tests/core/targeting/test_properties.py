"""The compiled evaluation (closures, constant folding, specialised arities) agrees with a plain
tree-walking interpretation of the same rule, over generated rules and contexts."""

from __future__ import annotations

import math
from collections.abc import Callable
from typing import Any

from hypothesis import given, settings
from hypothesis import strategies as st

from rollout._core.targeting.compiler import compile_rule, new_budget
from rollout._core.targeting.jsvalues import (
    js_le,
    js_lt,
    loose_eq,
    parse_float,
    strict_eq,
    to_number,
    to_string,
    truthy,
)

PATHS = ["a", "b", "n", "user.name", "user.age", "tags", "missing", ""]
scalars = st.one_of(
    st.none(),
    st.booleans(),
    st.integers(-3, 3),
    st.sampled_from([0.5, -1.5, 2.0]),
    st.sampled_from(["", "0", "1", "a", "ab", "b", "1.2.3", "2.0.0"]),
)
contexts = st.fixed_dictionaries(
    {
        "a": scalars,
        "b": scalars,
        "n": st.lists(st.integers(-2, 5), max_size=4),
        "user": st.fixed_dictionaries(
            {"name": st.sampled_from(["ann", "bob", ""]), "age": scalars}
        ),
        "tags": st.lists(st.sampled_from(["x", "y", "z"]), max_size=3),
    }
)
BINARY = [
    "==",
    "!=",
    "===",
    "!==",
    "<",
    "<=",
    ">",
    ">=",
    "in",
    "starts_with",
    "ends_with",
    "-",
    "/",
    "%",
]
VARIADIC = ["and", "or", "cat", "+", "max", "min", "merge", "*"]
ITERATING = ["some", "all", "none", "filter", "map"]


def _rules(children: st.SearchStrategy[Any]) -> st.SearchStrategy[Any]:
    return st.one_of(
        st.builds(lambda op, a, b: {op: [a, b]}, st.sampled_from(BINARY), children, children),
        st.builds(lambda op, a: {op: a}, st.sampled_from(["!", "!!"]), children),
        st.builds(lambda a, b, c: {"if": [a, b, c]}, children, children, children),
        st.builds(
            lambda a, b, c, d, e: {"if": [a, b, c, d, e]},
            children,
            children,
            children,
            children,
            children,
        ),
        st.builds(lambda a, b, c: {"<": [a, b, c]}, children, children, children),
        st.builds(
            lambda op, xs: {op: xs},
            st.sampled_from(VARIADIC),
            st.lists(children, min_size=2, max_size=3),
        ),
        st.builds(
            lambda op, path, logic: {op: [{"var": path}, logic]},
            st.sampled_from(ITERATING),
            st.sampled_from(["n", "tags"]),
            children,
        ),
        st.builds(
            lambda a, op, b: {"sem_ver": [a, op, b]},
            children,
            st.sampled_from(["=", "<", "^", "~"]),
            children,
        ),
        st.builds(lambda path, default: {"var": [path, default]}, st.sampled_from(PATHS), scalars),
        st.builds(
            lambda keys: {"missing": keys}, st.lists(st.sampled_from(PATHS[:-1]), max_size=3)
        ),
        st.builds(lambda s, a: {"substr": [s, a]}, children, st.integers(-3, 3)),
    )


leaves = st.one_of(scalars, st.builds(lambda path: {"var": path}, st.sampled_from(PATHS)))
rules = st.recursive(leaves, _rules, max_leaves=12)


def lookup(data: Any, path: Any, default: Any = None) -> Any:
    if path in (None, ""):
        return data
    for key in to_string(path).split("."):
        if isinstance(data, dict) and key in data:
            data = data[key]
        elif isinstance(data, list) and key.isdigit() and int(key) < len(data):
            data = data[int(key)]
        else:
            return default
    return data


def js_extreme(pick: Any, values: Any) -> float:
    """Math.max / Math.min: NaN if any argument is not a number."""
    numbers = [to_number(value) for value in values]
    return math.nan if any(math.isnan(n) for n in numbers) else float(pick(numbers))


def interpret(rule: Any, data: Any) -> Any:  # one branch per operator, read plainly
    if isinstance(rule, list):
        return [interpret(item, data) for item in rule]
    if not isinstance(rule, dict) or len(rule) != 1:
        return rule
    ((op, args),) = rule.items()
    args = args if isinstance(args, list) else [args]
    if op == "if":
        for i in range(0, len(args) - 1, 2):
            if truthy(interpret(args[i], data)):
                return interpret(args[i + 1], data)
        return interpret(args[-1], data) if len(args) % 2 else None
    if op in ("and", "or"):
        value = None
        for arg in args:
            value = interpret(arg, data)
            if truthy(value) is (op == "or"):
                return value
        return value
    if op in ITERATING:
        items = interpret(args[0], data)
        if op == "all" and items is None:
            raise TypeError("null has no length")  # json-logic-js reads items.length
        if op == "all" and not (isinstance(items, list) and items):
            return False
        if not isinstance(items, list):
            return [] if op in ("map", "filter") else op == "none"
        results = [interpret(args[1], item) for item in items]
        if op == "map":
            return results
        if op == "filter":
            return [item for item, r in zip(items, results, strict=True) if truthy(r)]
        hits = [truthy(r) for r in results]
        return {"some": any(hits), "all": all(hits), "none": not any(hits)}[op]
    values = [interpret(arg, data) for arg in args]
    if op == "var":
        return lookup(data, *values)
    if op == "missing":
        return [key for key in values if lookup(data, key) in (None, "")]
    simple: dict[str, Callable[..., Any]] = {
        "==": loose_eq,
        "!=": lambda a, b: not loose_eq(a, b),
        "===": strict_eq,
        "!==": lambda a, b: not strict_eq(a, b),
        "<": lambda a, b, c=None: js_lt(a, b) and (len(values) == 2 or js_lt(b, c)),
        "<=": js_le,
        ">": lambda a, b: js_lt(b, a),
        ">=": lambda a, b: js_le(b, a),
        "!": lambda a: not truthy(a),
        "!!": truthy,
        "in": lambda a, b: (
            to_string(a) in b
            if isinstance(b, str)
            else isinstance(b, list) and any(strict_eq(a, x) for x in b)
        ),
        "starts_with": lambda a, b: (
            a.startswith(b) if isinstance(a, str) and isinstance(b, str) else None
        ),
        "ends_with": lambda a, b: (
            a.endswith(b) if isinstance(a, str) and isinstance(b, str) else None
        ),
        "cat": lambda *xs: "".join(to_string(x) for x in xs),
        "+": lambda *xs: sum(parse_float(x) for x in xs),
        "*": lambda *xs: math.prod(parse_float(x) for x in xs),
        "-": lambda a, b: to_number(a) - to_number(b),
        "max": lambda *xs: js_extreme(max, xs),
        "min": lambda *xs: js_extreme(min, xs),
        "merge": lambda *xs: [y for x in xs for y in (x if isinstance(x, list) else [x])],
    }
    if op in simple:
        return simple[op](*values)
    return UNCHECKED  # the remaining operators: only that both sides agree on errors below


UNCHECKED = object()


def same(a: Any, b: Any) -> bool:
    if isinstance(a, Exception) or isinstance(b, Exception):
        return isinstance(a, Exception) and isinstance(b, Exception)
    if isinstance(a, float) and isinstance(b, float) and math.isnan(a) and math.isnan(b):
        return True
    if isinstance(a, list) and isinstance(b, list):
        return len(a) == len(b) and all(same(x, y) for x, y in zip(a, b, strict=True))
    numbers = (int, float)
    if type(a) in numbers and type(b) in numbers:
        return bool(a == b)
    return type(a) is type(b) and bool(a == b)


def outcome(run: Any) -> Any:
    """The value, or the error it raised (JsonLogic's TypeErrors: both sides must raise)."""
    try:
        return run()
    except Exception as error:  # compared, not hidden: same() wants both sides to raise
        return error


UNCHECKED_OPERATORS = ("/", "%", "sem_ver", "substr")


def contains_unchecked(rule: Any) -> bool:
    text = repr(rule)
    return any(f"'{op}'" in text for op in UNCHECKED_OPERATORS)


@settings(max_examples=400, deadline=None)
@given(rules, contexts)
def test_compiled_rules_agree_with_a_plain_interpretation(
    rule: Any, context: dict[str, Any]
) -> None:
    compiled = compile_rule(rule, {})
    result = outcome(lambda: compiled.evaluate(context, new_budget()))
    if contains_unchecked(rule):
        return  # operators with tests of their own: here only that compiling and running work
    expected = outcome(lambda: interpret(rule, context))
    assert same(result, expected), (rule, context, result, expected)


@settings(max_examples=300, deadline=None)
@given(rules, contexts)
def test_generated_code_agrees_with_the_closures(rule: Any, context: dict[str, Any]) -> None:
    """The generated function (common operators inline) and the closure per node agree."""
    generated = compile_rule(rule, {})
    closures = compile_rule(rule, None)  # checking mode: closures only, nothing generated
    result = outcome(lambda: generated.evaluate(context, new_budget()))
    expected = outcome(lambda: closures.evaluate(context, new_budget()))
    assert same(result, expected), (rule, context, result, expected)


@settings(max_examples=200, deadline=None)
@given(rules)
def test_rules_that_read_no_data_answer_alike_for_any_context(rule: Any) -> None:
    """Constant folding keeps the answer: a rule without var/missing ignores the context."""
    compiled = compile_rule(rule, {})
    first = outcome(lambda: compiled.evaluate({}, new_budget()))
    second = outcome(lambda: compiled.evaluate({"a": 1, "tags": ["x"]}, new_budget()))
    if "'var'" not in repr(rule) and "'missing'" not in repr(rule):
        assert same(first, second)
