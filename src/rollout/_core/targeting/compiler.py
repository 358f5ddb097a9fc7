"""JsonLogic compiled once into Python closures; checked (operators, arity, size, depth) as it goes.

A compiled rule is an ``Evaluator``: ``evaluator(data, budget) -> value``. ``data`` is the
context (or, inside map/filter/..., the element being visited); ``budget`` is a one-item list
holding how many more items the iterating operators may visit in this evaluation
(bounds.MAX_ITERATIONS), so that nested iterations over large lists cannot run unbounded.

Operators whose arguments are all constants are evaluated at compile time (unless they read
the data), so ``{"in": [{"var": "plan"}, ["pro", "team"]]}`` builds its list once.
"""

from __future__ import annotations

import contextlib
import math
import re
from collections.abc import Callable, Mapping
from typing import Any

from .bounds import MAX_BUILT, MAX_ITERATIONS, MAX_RULE_DEPTH, MAX_RULE_NODES
from .codegen import generate
from .errors import JSON, RuleError
from .flagd_operators import FLAGD_DATA_OPERATORS, FLAGD_OPERATORS, fractional_of_constants
from .jsvalues import to_string, truthy
from .operators import DATA_OPERATORS, PURE_OPERATORS, Operator, lookup

__all__ = [
    "ITERATING",
    "KNOWN_OPERATORS",
    "UNSPENT",
    "CompiledRule",
    "EvaluationError",
    "Evaluator",
    "MissingEvaluatorError",
    "compile_rule",
    "new_budget",
]

Evaluator = Callable[[Any, list[int]], Any]

_EAGER: dict[str, Operator] = {**PURE_OPERATORS, **FLAGD_OPERATORS}
_READS_DATA: dict[str, Operator] = {**DATA_OPERATORS, **FLAGD_DATA_OPERATORS}
# Operators that decide which arguments to evaluate, with their arity bounds.
_CONTROL: dict[str, tuple[int, int | None]] = {"if": (1, None), "?:": (1, None)}
_CONTROL |= {"and": (1, None), "or": (1, None)}
ITERATING: dict[str, tuple[int, int | None]] = {
    "map": (2, 2),
    "filter": (2, 2),
    "all": (2, 2),
    "none": (2, 2),
    "some": (2, 2),
    "reduce": (3, 3),
}
KNOWN_OPERATORS = frozenset({*_EAGER, *_READS_DATA, *_CONTROL, *ITERATING})
_FLAGD_PROPERTIES = ("$flagd.flagKey", "$flagd.timestamp")
_IDENTIFIER = re.compile(r"[A-Za-z_$][A-Za-z0-9_$]*")


class EvaluationError(Exception):
    """A rule failed while running (never escapes a resolution: the flag resolves ERROR)."""


class MissingEvaluatorError(RuleError):
    """A ``$ref`` names no evaluator: flagd resolves that flag ERROR / PARSE_ERROR."""


def new_budget() -> list[int]:
    """What one evaluation may still spend: [weighted item visits, characters/items built]."""
    return [MAX_ITERATIONS, MAX_BUILT]


UNSPENT = new_budget()  # shared by rules that spend nothing (no iteration, no cat or merge)
# Operators whose result can be larger than their arguments: what they build is charged.
_BUILDING = frozenset({"cat", "merge"})
_ABSENT = object()


class CompiledRule:
    """A compiled rule, and whether it reads flagd's ``$flagd`` properties."""

    __slots__ = ("evaluate", "iterates", "reads_flagd")

    def __init__(self, evaluate: Evaluator, reads_flagd: bool, iterates: bool) -> None:
        self.evaluate = evaluate
        self.reads_flagd = reads_flagd
        self.iterates = iterates  # False: no budget is spent (no iteration, cat or merge)


def _key_path(path: str, key: str) -> str:
    return f"{path}.{key}" if _IDENTIFIER.fullmatch(key) else f"{path}[{key!r}]"


def _constant(value: Any) -> Evaluator:
    return lambda _data, _budget: value


class _Compiler:
    def __init__(self, evaluators: Mapping[str, JSON] | None) -> None:
        self.evaluators = evaluators
        self.nodes = 0
        self.expanding: list[str] = []
        self.reads_flagd = False
        self.iterates = False
        # Constant evaluators -> their value, for folding. Keyed by the function itself, not
        # by its id, which a later closure may reuse once a folded-away one is freed.
        self.constants: dict[Evaluator, Any] = {}

    def const(self, value: Any) -> Evaluator:
        evaluator = _constant(value)
        self.constants[evaluator] = value
        return evaluator

    def compile(self, node: JSON, path: str, depth: int) -> Evaluator:
        self.nodes += 1
        if self.nodes > MAX_RULE_NODES:
            raise RuleError(path, f"the rule has more than {MAX_RULE_NODES} nodes")
        if depth > MAX_RULE_DEPTH:
            raise RuleError(path, f"the rule is nested deeper than {MAX_RULE_DEPTH} levels")
        if isinstance(node, list):
            items = [self.compile(item, f"{path}[{i}]", depth + 1) for i, item in enumerate(node)]
            if all(item in self.constants for item in items):
                return self.const([self.constants[item] for item in items])
            return lambda data, budget: [item(data, budget) for item in items]
        if isinstance(node, dict) and len(node) == 1:
            ((operator, arguments),) = node.items()
            return self.operation(str(operator), arguments, path, depth)
        if node is None or isinstance(node, str | bool | int | float | dict):
            if isinstance(node, float) and not math.isfinite(node):
                raise RuleError(path, f"{node!r} is not a JSON number")
            return self.const(node)  # dicts of 0 or 2+ keys are data in JsonLogic, not rules
        raise RuleError(path, f"{type(node).__name__} {node!r} is not a JSON value")

    def operation(self, operator: str, arguments: JSON, path: str, depth: int) -> Evaluator:
        here = _key_path(path, operator)
        if operator == "$ref":
            return self.reference(arguments, here, depth)
        if operator not in KNOWN_OPERATORS:
            raise RuleError(here, f"unknown operator {operator!r}")
        in_list = isinstance(arguments, list)
        listed = arguments if in_list else [arguments]
        self.nodes += in_list  # the argument list is a node of the rule too
        low, high = self.arity(operator)
        if len(listed) < low or (high is not None and len(listed) > high):
            wanted = f"{low}" if low == high else f"{low} to {high}" if high else f"{low} or more"
            raise RuleError(here, f"{operator!r} takes {wanted} arguments, not {len(listed)}")
        if operator in ("var", "missing", "missing_some", "fractional"):
            self.note_data_read(operator, listed, here)
        compiled, sizes = [], []
        for i, argument in enumerate(listed):
            before = self.nodes
            compiled.append(self.compile(argument, f"{here}[{i}]" if in_list else here, depth + 1))
            sizes.append(self.nodes - before)
        if operator in _CONTROL:
            return _control(operator, compiled)
        if operator in ITERATING:
            self.iterates = True
            return _iterating(operator, compiled, max(sizes[1], 1))
        if operator == "var" and compiled and all(c in self.constants for c in compiled[:2]):
            return _var_at(*[self.constants[c] for c in compiled[:2]])
        if operator == "fractional" and compiled:
            fast = self.fractional(compiled)
            if fast is not None:
                return fast
        if operator in _READS_DATA:
            return _with_data(_READS_DATA[operator].function, compiled)
        if operator == "in" and len(compiled) == 2 and compiled[1] in self.constants:
            fast = _in_constant(compiled[0], self.constants[compiled[1]])
            if fast is not None:
                return fast
        function = _EAGER[operator].function
        if all(c in self.constants for c in compiled):
            try:
                return self.const(function(*[self.constants[c] for c in compiled]))
            except Exception:  # left to fail at evaluation, as it would unfolded
                pass
        if operator in _BUILDING:
            self.iterates = True  # it spends from the budget: each evaluation needs its own
            return _building(function, compiled)
        return _eager(function, compiled)

    def fractional(self, compiled: list[Evaluator]) -> Evaluator | None:
        """``fractional`` with constant entries (the usual case), prepared once."""
        constants = self.constants
        first = compiled[0]
        if first in constants and isinstance(constants[first], list):  # shorthand: all entries
            if not all(c in constants for c in compiled):
                return None
            choose = fractional_of_constants(False, [constants[c] for c in compiled])
            return lambda data, _budget: choose(data, None)
        if not all(c in constants for c in compiled[1:]):
            return None
        choose = fractional_of_constants(True, [constants[c] for c in compiled[1:]])
        return lambda data, budget: choose(data, first(data, budget))

    def arity(self, operator: str) -> tuple[int, int | None]:
        if operator in _CONTROL:
            return _CONTROL[operator]
        if operator in ITERATING:
            return ITERATING[operator]
        spec: Operator = _EAGER.get(operator) or _READS_DATA[operator]
        return spec.min_args, spec.max_args

    def note_data_read(self, operator: str, arguments: list[JSON], path: str) -> None:
        """Remember whether the rule can read ``$flagd`` (then the context gets it added)."""
        if operator == "fractional":
            self.reads_flagd = True
            return
        if operator == "var":
            names = arguments[:1]
        elif operator == "missing_some":
            names = arguments[1] if isinstance(arguments[1], list) else arguments[1:]
        else:
            names = arguments[0] if arguments and isinstance(arguments[0], list) else arguments
        for name in names:
            if isinstance(name, list | dict):  # computed: it may name anything
                self.reads_flagd = True
            elif isinstance(name, str) and name.split(".")[0] == "$flagd":
                self.reads_flagd = True
                if operator == "var" and name != "$flagd" and name not in _FLAGD_PROPERTIES:
                    raise RuleError(path, f"{name!r}: flagd's context has only {_FLAGD_PROPERTIES}")

    def reference(self, name: JSON, path: str, depth: int) -> Evaluator:
        if not isinstance(name, str):
            raise RuleError(path, f"$ref must name an evaluator with a string, not {name!r}")
        if self.evaluators is None:  # checking a rule alone: any name may be defined later
            self.reads_flagd = True

            def unresolved(_data: Any, _budget: list[int]) -> Any:
                raise EvaluationError(f"$ref {name!r} was not resolved")

            return unresolved
        if name not in self.evaluators:
            raise MissingEvaluatorError(path, f"$ref names no evaluator {name!r}")
        if name in self.expanding:
            cycle = " -> ".join([*self.expanding, name])
            raise RuleError(path, f"$ref cycle: {cycle}")
        self.expanding.append(name)
        try:
            return self.compile(self.evaluators[name], f"$.$evaluators.{name}", depth)
        finally:
            self.expanding.pop()


def _eager(function: Callable[..., Any], compiled: list[Evaluator]) -> Evaluator:
    if len(compiled) == 1:
        (a,) = compiled
        return lambda data, budget: function(a(data, budget))
    if len(compiled) == 2:
        a, b = compiled
        return lambda data, budget: function(a(data, budget), b(data, budget))
    return lambda data, budget: function(*[c(data, budget) for c in compiled])


def _building(function: Callable[..., Any], compiled: list[Evaluator]) -> Evaluator:
    """cat or merge, whose result is charged to the budget: repeated doubling stops there."""

    def build(data: Any, budget: list[int]) -> Any:
        built = function(*[c(data, budget) for c in compiled])
        budget[1] -= len(built)
        if budget[1] < 0:
            raise EvaluationError(f"the values built are too large (over {MAX_BUILT})")
        return built

    return build


def _var_at(path: Any = None, default: Any = None, *_ignored: Any) -> Evaluator:
    """``var`` of a constant path: split once; a dict at every step takes the fast way."""
    if path is None or path == "":
        return lambda data, _budget: data
    keys = to_string(path).split(".")
    if len(keys) == 1:
        (key,) = keys

        def var_key(data: Any, _budget: list[int]) -> Any:
            if type(data) is dict:
                return data.get(key, default)
            return lookup(data, path, default)

        return var_key

    def var_path(data: Any, _budget: list[int]) -> Any:
        value = data
        for key in keys:
            if type(value) is not dict:
                return lookup(data, path, default)  # lists, other mappings, null: the long way
            value = value.get(key, _ABSENT)
            if value is _ABSENT:
                return default
        return value

    return var_path


def _in_constant(needle: Evaluator, haystack: Any) -> Evaluator | None:
    """``in`` a constant list of strings/numbers: a set lookup, same strict equality."""
    if not isinstance(haystack, list) or not all(type(x) in (str, int, float) for x in haystack):
        return None
    strings = frozenset(x for x in haystack if type(x) is str)
    numbers = frozenset(x for x in haystack if type(x) is not str)

    def member(data: Any, budget: list[int]) -> bool:
        value = needle(data, budget)
        kind = type(value)
        if kind is str:
            return value in strings
        return (kind is int or kind is float) and value in numbers

    return member


def _with_data(function: Callable[..., Any], compiled: list[Evaluator]) -> Evaluator:
    if len(compiled) == 1:
        (a,) = compiled
        return lambda data, budget: function(data, a(data, budget))
    return lambda data, budget: function(data, *[c(data, budget) for c in compiled])


def _control(operator: str, compiled: list[Evaluator]) -> Evaluator:
    if operator == "and":

        def conjunction(data: Any, budget: list[int]) -> Any:
            value = None
            for argument in compiled:
                value = argument(data, budget)
                if not truthy(value):
                    return value
            return value

        return conjunction
    if operator == "or":

        def disjunction(data: Any, budget: list[int]) -> Any:
            value = None
            for argument in compiled:
                value = argument(data, budget)
                if truthy(value):
                    return value
            return value

        return disjunction
    if len(compiled) == 3:
        condition, then, otherwise = compiled
        return lambda d, b: then(d, b) if truthy(condition(d, b)) else otherwise(d, b)
    pairs = [(compiled[i], compiled[i + 1]) for i in range(0, len(compiled) - 1, 2)]
    last = compiled[-1] if len(compiled) % 2 else None

    def branch(data: Any, budget: list[int]) -> Any:
        for condition, then in pairs:
            if truthy(condition(data, budget)):
                return then(data, budget)
        return last(data, budget) if last is not None else None

    return branch


def _spend(items: Any, budget: list[int], cost: int) -> None:
    budget[0] -= len(items) * cost
    if budget[0] < 0:
        raise EvaluationError(
            f"the rule visited more than {MAX_ITERATIONS} items (weighted by their logic's size)"
        )


def _iterating(operator: str, compiled: list[Evaluator], cost: int) -> Evaluator:
    """``cost``: the nodes of the logic run for each item, what one visit is charged."""
    scope, logic = compiled[0], compiled[1]
    if operator == "reduce":
        initial = compiled[2]

        def reduce(data: Any, budget: list[int]) -> Any:
            items = scope(data, budget)
            accumulator = initial(data, budget)
            if not isinstance(items, list | tuple):
                return accumulator
            _spend(items, budget, cost)
            for item in items:
                accumulator = logic({"current": item, "accumulator": accumulator}, budget)
            return accumulator

        return reduce

    def iterate(data: Any, budget: list[int]) -> Any:
        items = scope(data, budget)
        if operator == "all":
            if items is None:  # json-logic-js reads null.length: a TypeError
                raise EvaluationError("'all' over null")
            if not isinstance(items, list | tuple | str) or not items:
                return False
        elif not isinstance(items, list | tuple):
            return [] if operator in ("map", "filter") else operator == "none"
        _spend(items, budget, cost)
        if operator == "map":
            return [logic(item, budget) for item in items]
        if operator == "filter":
            return [item for item in items if truthy(logic(item, budget))]
        if operator == "all":
            return all(truthy(logic(item, budget)) for item in items)
        found = any(truthy(logic(item, budget)) for item in items)
        return found if operator == "some" else not found

    return iterate


def compile_rule(
    rule: JSON, evaluators: Mapping[str, JSON] | None = None, path: str = "$"
) -> CompiledRule:
    """Compile ``rule`` (RuleError naming the path if it cannot be).

    ``evaluators`` resolves ``{"$ref": name}``; None leaves references unresolved (checking a
    rule on its own, where a name may be defined later).
    """
    compiler = _Compiler(evaluators)
    evaluate = compiler.compile(rule, path, 0)
    if evaluators is not None and evaluate not in compiler.constants:
        # Checked: now the faster form, with the closures for what it does not inline. Should
        # Python refuse the generated source (a parser limit), the closures answer the same.
        with contextlib.suppress(SyntaxError, RecursionError, MemoryError):
            evaluate = generate(
                rule, evaluators, lambda node: _Compiler(evaluators).compile(node, path, 0)
            )
    return CompiledRule(evaluate, compiler.reads_flagd, compiler.iterates)
