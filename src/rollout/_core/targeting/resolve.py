"""Resolving a flag for a context, as flagd's evaluator does (core/pkg/evaluator/json.go).

- disabled: DISABLED, no value, no variant;
- no targeting (or ``{}``): the default variant, STATIC; no default variant: DEFAULT, no value
  (the caller's default applies);
- targeting returns null: the default variant, DEFAULT (no default variant: no value);
- targeting returns a variant's name (a boolean counts as "true"/"false", a number as its
  JSON text): that variant, TARGETING_MATCH;
- targeting returns anything else: ERROR, GENERAL; the rule fails while running: ERROR,
  GENERAL; the rule could not be compiled (a ``$ref`` to no evaluator, ...): ERROR, PARSE_ERROR.

A resolution never raises: a flag's problems are in its reason and error code.
"""

from __future__ import annotations

import reprlib
import time
from collections.abc import Callable, Mapping
from typing import Any

from .compiler import UNSPENT, CompiledRule, compile_rule, new_budget
from .definition import FlagDefinition
from .errors import JSON, RuleError
from .jsvalues import number_to_string, truthy
from .resolution import Resolution

__all__ = ["CompiledFlag", "Resolution", "compile_flag", "compile_predicate"]

STATIC = "STATIC"
TARGETING_MATCH = "TARGETING_MATCH"
DEFAULT = "DEFAULT"
DISABLED = "DISABLED"
ERROR = "ERROR"
PARSE_ERROR = "PARSE_ERROR"
GENERAL = "GENERAL"


def _variant_name(result: Any) -> str | None:
    """The variant name a rule's result stands for, as flagd reads its JSON; None if none."""
    if isinstance(result, str):
        return result
    if isinstance(result, bool):
        return "true" if result else "false"
    if isinstance(result, int | float):
        text = number_to_string(result)
        return None if text in ("NaN", "Infinity", "-Infinity") else text
    return None


def with_flagd(context: Mapping[str, Any], flag_key: str, now: float) -> dict[str, Any]:
    """The context plus flagd's ``$flagd`` properties (replacing any the caller passed)."""
    data = dict(context)
    data["$flagd"] = {"flagKey": flag_key, "timestamp": int(now)}
    return data


def _failed(error: Exception) -> Resolution:
    message = f"the targeting rule failed: {type(error).__name__}: {error}"
    return Resolution(None, None, ERROR, GENERAL, message)


def _not_a_variant(result: Any, matches: Mapping[str, Resolution]) -> Resolution:
    """A result that is not a string variant name: flagd's reading of it, or ERROR."""
    name = _variant_name(result)
    match = matches.get(name) if name is not None else None
    if match is not None:
        return match
    # An excerpt: the result can be a context value of a megabyte, or a list holding itself
    # twice at every level (2**n elements written out).
    try:
        shown = _EXCERPT.repr(name if name is not None else result)
    except Exception:  # an integer too long for Python to write out, in a list: never raise
        shown = f"a {type(result).__name__}"
    message = f"the targeting rule returned {shown}, which is not a variant"
    return Resolution(None, None, ERROR, GENERAL, message)


_EXCERPT = reprlib.Repr()  # also 6 items of a list or an object, 30 characters of a string
_EXCERPT.maxlevel = 2

Resolver = Callable[[str, Mapping[str, Any]], Resolution]


def _resolver(
    rule: CompiledRule,
    matches: dict[str, Resolution],
    fallback: Resolution,
    now: Callable[[], float],
) -> Resolver:
    """The per-check function of a flag with targeting, everything it needs bound in it."""
    evaluate, reads_flagd, iterates = rule.evaluate, rule.reads_flagd, rule.iterates

    def resolve(flag_key: str, context: Mapping[str, Any]) -> Resolution:
        try:
            data = with_flagd(context, flag_key, now()) if reads_flagd else context
            result = evaluate(data, new_budget() if iterates else UNSPENT)
        except Exception as error:  # an evaluation error never escapes a check
            return _failed(error)
        if type(result) is str:
            match = matches.get(result)
            if match is not None:
                return match
        elif result is None:
            return fallback
        return _not_a_variant(result, matches)

    return resolve


class CompiledFlag:
    """A flag definition compiled once; ``resolve(flag_key, context)`` never raises.

    Resolutions are immutable, so those that do not depend on the context (each variant's
    match, the fallback, a disabled or static flag) are built once here and shared; ``resolve``
    is a function made for this flag (no attribute lookups per check).
    """

    __slots__ = ("resolve",)

    resolve: Resolver

    def __init__(
        self,
        definition: FlagDefinition,
        rule: CompiledRule | None,
        problem: str | None,
        now: Callable[[], float],
    ) -> None:
        variants = dict(definition.variants)
        default = definition.default_variant
        if default is not None and default not in variants:  # parse_flagd refuses this
            problem = problem or f"the default variant {default!r} is not a variant"
            default = None
        matches = {
            name: Resolution(value, name, TARGETING_MATCH, None, None)
            for name, value in variants.items()
        }
        fallback = (
            Resolution(None, None, DEFAULT, None, None)
            if default is None
            else Resolution(variants[default], default, DEFAULT, None, None)
        )
        if not definition.enabled:
            static: Resolution | None = Resolution(None, None, DISABLED, None, None)
        elif problem is not None:
            static = Resolution(None, None, ERROR, PARSE_ERROR, problem)
        elif rule is None:
            static = fallback if default is None else fallback._replace(reason=STATIC)
        else:
            static = None
        if static is not None or rule is None:
            answer = static if static is not None else fallback
            self.resolve = lambda _flag_key, _context: answer
        else:
            self.resolve = _resolver(rule, matches, fallback, now)


def compile_flag(
    definition: FlagDefinition,
    evaluators: Mapping[str, JSON],
    *,
    now: Callable[[], float] = time.time,
) -> CompiledFlag:
    """Compile ``definition``; a rule that cannot compile resolves ERROR / PARSE_ERROR.

    ``now`` gives ``$flagd.timestamp`` (seconds since the epoch), injectable for tests.
    """
    targeting = definition.targeting
    if targeting is None or targeting == {}:  # flagd: "{}" is no targeting
        return CompiledFlag(definition, None, None, now)
    try:
        rule = compile_rule(targeting, evaluators, "$.targeting")
    except RuleError as error:
        return CompiledFlag(definition, None, str(error), now)
    except RecursionError:
        return CompiledFlag(definition, None, "the targeting rule is nested too deeply", now)
    except Exception as error:  # a definition built by hand, unchecked: still never raise
        problem = f"the targeting rule cannot compile: {type(error).__name__}: {error}"
        return CompiledFlag(definition, None, problem, now)
    return CompiledFlag(definition, rule, None, now)


def compile_predicate(
    rule: JSON,
    evaluators: Mapping[str, JSON],
    *,
    on_error: Callable[[Exception], object] | None = None,
    now: Callable[[], float] = time.time,
) -> Callable[[Mapping[str, Any]], bool]:
    """A named rule as a group's predicate: a truthy result (JsonLogic's truthiness) -> True.

    RuleError if the rule cannot compile. An evaluation error answers False and is passed to
    ``on_error`` (for the caller to count). ``$flagd.flagKey`` is "" (no flag is evaluated).
    """
    try:
        compiled = compile_rule(rule, evaluators)
    except RecursionError:
        raise RuleError("$", "the rule is nested too deeply") from None
    evaluate, reads_flagd, iterates = compiled.evaluate, compiled.reads_flagd, compiled.iterates

    def predicate(context: Mapping[str, Any]) -> bool:
        try:
            data = with_flagd(context, "", now()) if reads_flagd else context
            result = evaluate(data, new_budget() if iterates else UNSPENT)
            return result if result is True or result is False else truthy(result)
        except Exception as error:  # never raised into a check
            if on_error is not None:
                on_error(error)
            return False

    return predicate
