"""Write-time checks of a rule: structure, known operators, arity, size and depth."""

from __future__ import annotations

from .compiler import compile_rule
from .errors import JSON, RuleError

__all__ = ["check_rule"]


def check_rule(rule: JSON, path: str = "$") -> None:
    """Raise RuleError (naming the JSON path) if ``rule`` cannot be accepted as targeting.

    A rule is a JSON object (flagd's schema: ``{}`` is no targeting), whose operators are known
    with the arguments they take, at most MAX_RULE_NODES nodes and MAX_RULE_DEPTH levels deep.
    A ``$ref`` to an evaluator that does not exist is not an error here (it may be defined
    later); a flag whose rule still names none when it is compiled resolves ERROR.
    """
    if not isinstance(rule, dict):
        raise RuleError(path, f"a rule is a JSON object, not {type(rule).__name__} {rule!r:.80}")
    if len(rule) > 1:  # deeper down such an object is a literal value; as a rule it is a mistake
        keys = ", ".join(repr(key) for key in list(rule)[:5])
        raise RuleError(path, f"a rule has one operator, not several keys ({keys})")
    try:
        compile_rule(rule, None, path)
    except RecursionError:
        raise RuleError(path, "the rule is nested too deeply") from None
