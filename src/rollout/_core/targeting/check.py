"""Write-time checks of a rule: structure, known operators, arity, size and depth."""

from __future__ import annotations

from .errors import JSON

__all__ = ["check_rule"]


def check_rule(rule: JSON, path: str = "$") -> None:
    """Raise RuleError (with the JSON path) if ``rule`` cannot be compiled; unknown $ref is fine."""
