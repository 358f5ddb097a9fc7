"""The common JsonLogic operators as one generated Python function per rule, for speed.

A closure per node (rollout._core.targeting.compiler) costs a Python call per node, and a
typical rule (``plan in [...] and country == "DE" and age >= 18``) is mostly such calls.
This generates one function whose body is a single expression: ``var`` of a constant path,
the comparisons, ``!``/``!!``, ``and``/``or``, ``if`` and ``in`` a constant list are written
inline, with JavaScript's semantics kept by a fast path for the common types (two strings, two
numbers) and the general coercion (rollout._core.targeting.jsvalues) otherwise. Any other node
is compiled by the closure compiler and called from the generated code, so every operator keeps
one definition of its semantics.

The rule has been compiled (and so checked) by the closure compiler before it gets here; the
generated source contains only operators, temporaries and the names of constants, never text
from the rule (constants are passed in the function's namespace).
"""

from __future__ import annotations

from collections.abc import Callable, Mapping
from typing import Any

from ..context import UserAttributes
from .errors import JSON
from .jsvalues import js_le, js_lt, loose_eq, strict_eq, truthy
from .operators import lookup

__all__ = ["generate"]

Evaluator = Callable[[Any, list[int]], Any]
_NUMBERS = frozenset({int, float})
_SCALARS = frozenset({str, int, float, bool})
_EQUALITY = {"==": ("==", "_loose_eq", False), "!=": ("!=", "_loose_eq", True)}
_EQUALITY |= {"===": ("==", "_strict_eq", False), "!==": ("!=", "_strict_eq", True)}
# operator -> (Python operator, JavaScript function, whether its arguments are swapped)
_ORDER = {"<": ("<", "_js_lt", False), "<=": ("<=", "_js_le", False)}
_ORDER |= {">": (">", "_js_lt", True), ">=": (">=", "_js_le", True)}
_SCALAR_LITERALS = (str, int, float, bool, type(None))
# The contexts whose get(key, default) is exactly lookup() of a plain key, read directly: a dict,
# and a user object's lazy view (rollout._core.context), the two an application passes.
_PLAIN_GET = frozenset({dict, UserAttributes})


class _Generator:
    def __init__(self, evaluators: Mapping[str, JSON], fallback: Callable[[JSON], Evaluator]):
        self.evaluators = evaluators
        self.fallback = fallback
        self.namespace: dict[str, Any] = {
            "_NUMBERS": _NUMBERS,
            "_SCALARS": _SCALARS,
            "_loose_eq": loose_eq,
            "_strict_eq": strict_eq,
            "_js_lt": js_lt,
            "_js_le": js_le,
            "_truthy": truthy,
            "_lookup": lookup,
            "_PLAIN_GET": _PLAIN_GET,
        }
        self.count = 0

    def fresh(self, prefix: str) -> str:
        self.count += 1
        return f"{prefix}{self.count}"

    def constant(self, value: Any) -> str:
        name = self.fresh("_k")
        self.namespace[name] = value
        return name

    def called(self, node: JSON) -> tuple[str, bool]:
        name = self.fresh("_c")
        self.namespace[name] = self.fallback(node)
        return f"{name}(d, b)", False

    def truth(self, node: JSON) -> str:
        code, boolean = self.expression(node)
        return code if boolean else f"_truthy({code})"

    def expression(self, node: JSON) -> tuple[str, bool]:
        """Python source for ``node`` and whether it is always a bool."""
        if isinstance(node, _SCALAR_LITERALS):
            return self.constant(node), isinstance(node, bool)
        if not (isinstance(node, dict) and len(node) == 1):
            return self.called(node)
        ((operator, arguments),) = node.items()
        if operator == "$ref":
            return self.expression(self.evaluators[arguments])
        args = arguments if isinstance(arguments, list) else [arguments]
        if operator == "var":
            return self.var(node, args)
        if operator in _EQUALITY and len(args) == 2:
            return self.equality(operator, args), True
        if operator in _ORDER and len(args) == 2:
            return self.order(operator, args), True
        if operator in ("!", "!!") and args:
            negate = "not " if operator == "!" else ""
            return f"({negate}{self.truth(args[0])})", True
        if operator in ("and", "or"):
            parts = [self.expression(a) for a in args]
            if all(boolean for _, boolean in parts):  # Python's and/or are JavaScript's then
                return "(" + f" {operator} ".join(code for code, _ in parts) + ")", True
            return self.called(node)
        if operator in ("if", "?:"):
            return self.branches(args)
        if operator == "in" and len(args) == 2 and _constant_list(args[1]):
            return self.membership(args[0], args[1]), True
        return self.called(node)

    def var(self, node: JSON, args: list[JSON]) -> tuple[str, bool]:
        path = args[0] if args else None
        default = args[1] if len(args) > 1 else None
        simple_path = isinstance(path, str | int) and not isinstance(path, bool) and path != ""
        if not simple_path or "." in str(path) or not isinstance(default, _SCALAR_LITERALS):
            return self.called(node)
        key, whole, fallback = self.constant(str(path)), self.constant(path), self.constant(default)
        return (
            f"(d.get({key}, {fallback}) if d_is_dict else _lookup(d, {whole}, {fallback}))",
            False,
        )

    def equality(self, operator: str, args: list[JSON]) -> str:
        python, general, negated = _EQUALITY[operator]
        a, b = args
        if isinstance(a, str | int | float) and not isinstance(b, str | int | float):
            a, b = b, a  # equality is symmetric: the constant goes right
        if isinstance(b, str | int | float) and not isinstance(b, bool):
            left, _ = self.expression(a)
            k, t = self.constant(b), self.fresh("_t")
            kinds = "is str" if isinstance(b, str) else "in _NUMBERS"
            slow = f"{'not ' if negated else ''}{general}({t}, {k})"
            return f"({t} {python} {k} if type({t} := {left}) {kinds} else {slow})"
        left, _ = self.expression(a)
        right, _ = self.expression(b)
        x, y = self.fresh("_t"), self.fresh("_t")
        slow = f"{'not ' if negated else ''}{general}({x}, {y})"
        return (
            f"({x} {python} {y} if (({x} := {left}), ({y} := {right})) "
            f"and type({x}) is type({y}) and type({x}) in _SCALARS else {slow})"
        )

    def order(self, operator: str, args: list[JSON]) -> str:
        python, general, swapped = _ORDER[operator]
        a, b = args
        if _is_number(b):  # the usual form: a value against a constant number
            left, _ = self.expression(a)
            k, t = self.constant(b), self.fresh("_t")
            slow = f"{general}({k}, {t})" if swapped else f"{general}({t}, {k})"
            return f"({t} {python} {k} if type({t} := {left}) in _NUMBERS else {slow})"
        left, _ = self.expression(a)
        right, _ = self.expression(b)
        x, y = self.fresh("_t"), self.fresh("_t")
        slow = f"{general}({y}, {x})" if swapped else f"{general}({x}, {y})"
        return (
            f"({x} {python} {y} if (({x} := {left}), ({y} := {right})) "
            f"and type({x}) in _NUMBERS and type({y}) in _NUMBERS else {slow})"
        )

    def branches(self, args: list[JSON]) -> tuple[str, bool]:
        if not args:
            return "None", False
        if len(args) == 1:
            return self.expression(args[0])
        condition = self.truth(args[0])
        then, then_boolean = self.expression(args[1])
        otherwise, otherwise_boolean = self.branches(args[2:]) if len(args) > 2 else ("None", False)
        return f"({then} if {condition} else {otherwise})", then_boolean and otherwise_boolean

    def membership(self, needle: JSON, haystack: list[Any]) -> str:
        value, _ = self.expression(needle)
        strings = self.constant(frozenset(x for x in haystack if type(x) is str))
        numbers = self.constant(frozenset(x for x in haystack if type(x) is not str))
        t = self.fresh("_t")
        number = f"type({t}) in _NUMBERS and {t} in {numbers}"
        return f"({t} in {strings} if type({t} := {value}) is str else {number})"


def _is_number(node: JSON) -> bool:
    return type(node) is int or type(node) is float


def _constant_list(node: JSON) -> bool:
    return isinstance(node, list) and all(type(x) in (str, int, float) for x in node)


def generate(
    rule: JSON, evaluators: Mapping[str, JSON], fallback: Callable[[JSON], Evaluator]
) -> Evaluator:
    """One function for ``rule`` (already checked); ``fallback`` compiles the other nodes."""
    generator = _Generator(evaluators, fallback)
    body, _ = generator.expression(rule)
    # d_is_dict: whether the context's get(key, default) is a plain key's lookup (a dict, or a
    # user object's lazy view), tested once for every var of the rule.
    source = f"def rule(d, b):\n    d_is_dict = type(d) in _PLAIN_GET\n    return {body}\n"
    exec(
        compile(source, "<targeting rule>", "exec"), generator.namespace
    )  # our own source: see the docstring
    function: Evaluator = generator.namespace["rule"]
    return function
