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

import time
from collections.abc import Callable, Mapping
from typing import Any, NamedTuple

from .compiler import CompiledRule, compile_rule, new_budget
from .definition import FlagDefinition
from .errors import JSON, RuleError
from .jsvalues import number_to_string, truthy

__all__ = ["CompiledFlag", "Resolution", "compile_flag", "compile_predicate"]

STATIC = "STATIC"
TARGETING_MATCH = "TARGETING_MATCH"
DEFAULT = "DEFAULT"
DISABLED = "DISABLED"
ERROR = "ERROR"
PARSE_ERROR = "PARSE_ERROR"
GENERAL = "GENERAL"


class Resolution(NamedTuple):
    """What a flag resolves to for one context, in OpenFeature's (and flagd's) terms."""

    value: JSON | None  # None: the caller's default applies (no default variant, DISABLED, ERROR)
    variant: str | None
    reason: str  # STATIC | TARGETING_MATCH | DEFAULT | DISABLED | ERROR
    error_code: str | None  # PARSE_ERROR | GENERAL | None
    error_message: str | None


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


class CompiledFlag:
    """A flag definition compiled once; ``resolve`` runs per check and never raises."""

    __slots__ = ("_default", "_now", "_problem", "_rule", "_static", "_variants")

    def __init__(
        self,
        definition: FlagDefinition,
        rule: CompiledRule | None,
        problem: str | None,
        now: Callable[[], float],
    ) -> None:
        self._variants = dict(definition.variants)
        default = definition.default_variant
        self._default = default
        self._rule = rule
        self._problem = problem
        self._now = now
        if not definition.enabled:
            self._static: Resolution | None = Resolution(None, None, DISABLED, None, None)
        elif problem is not None:
            self._static = Resolution(None, None, ERROR, PARSE_ERROR, problem)
        elif rule is None:
            self._static = (
                Resolution(None, None, DEFAULT, None, None)
                if default is None
                else Resolution(self._variants[default], default, STATIC, None, None)
            )
        else:
            self._static = None

    def _fallback(self) -> Resolution:
        if self._default is None:
            return Resolution(None, None, DEFAULT, None, None)
        return Resolution(self._variants[self._default], self._default, DEFAULT, None, None)

    def resolve(self, flag_key: str, context: Mapping[str, Any]) -> Resolution:
        if self._static is not None:
            return self._static
        rule = self._rule
        assert rule is not None
        try:
            data = with_flagd(context, flag_key, self._now()) if rule.reads_flagd else context
            result = rule.evaluate(data, new_budget())
        except Exception as error:  # an evaluation error never escapes a check
            message = f"the targeting rule failed: {type(error).__name__}: {error}"
            return Resolution(None, None, ERROR, GENERAL, message)
        if result is None:
            return self._fallback()
        name = _variant_name(result)
        if name is None or name not in self._variants:
            shown = name if name is not None else repr(result)
            message = f"the targeting rule returned {shown!r}, which is not a variant"
            return Resolution(None, None, ERROR, GENERAL, message)
        return Resolution(self._variants[name], name, TARGETING_MATCH, None, None)


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
    evaluate, reads_flagd = compiled.evaluate, compiled.reads_flagd

    def predicate(context: Mapping[str, Any]) -> bool:
        try:
            data = with_flagd(context, "", now()) if reads_flagd else context
            return truthy(evaluate(data, new_budget()))
        except Exception as error:  # never raised into a check
            if on_error is not None:
                on_error(error)
            return False

    return predicate
