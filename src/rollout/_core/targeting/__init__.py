"""Targeting as data: flagd definitions and JsonLogic rules, compiled once, resolved per check.

The engine is pure (no I/O): it parses and validates flagd flag-definition documents, checks
rules at write time (known operators, arity, size and depth bounds), compiles each rule once
into Python closures, and resolves a flag for an evaluation context exactly as flagd does
(reasons STATIC, TARGETING_MATCH, DEFAULT, DISABLED, ERROR). See docs/targeting.md.
"""

from __future__ import annotations

from .bounds import MAX_RULE_DEPTH, MAX_RULE_NODES
from .check import check_rule
from .definition import FlagdDocument, FlagDefinition, check_definition, parse_flagd, to_flagd
from .errors import JSON, RuleError
from .resolve import CompiledFlag, Resolution, compile_flag, compile_predicate

__all__ = [
    "JSON",
    "MAX_RULE_DEPTH",
    "MAX_RULE_NODES",
    "CompiledFlag",
    "FlagDefinition",
    "FlagdDocument",
    "Resolution",
    "RuleError",
    "check_definition",
    "check_rule",
    "compile_flag",
    "compile_predicate",
    "parse_flagd",
    "to_flagd",
]
