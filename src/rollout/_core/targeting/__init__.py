"""Targeting as data: flagd definitions and JsonLogic rules, compiled once, resolved per check.

The engine is pure (no I/O): it parses and validates flagd flag-definition documents, checks
rules at write time (known operators, arity, size and depth bounds), compiles each rule once
into Python closures, and resolves a flag for an evaluation context exactly as flagd does
(reasons STATIC, TARGETING_MATCH, DEFAULT, DISABLED, ERROR). See docs/targeting.md.
"""

from __future__ import annotations

# Light names, always here: the library names them without running the engine.
from ..lazy import lazy_names
from .bounds import MAX_RULE_DEPTH, MAX_RULE_NODES
from .errors import JSON, RuleError
from .resolution import Resolution

TYPE_CHECKING = False
if TYPE_CHECKING:
    from .check import check_rule
    from .definition import (
        FlagdDocument,
        FlagDefinition,
        check_definition,
        parse_flagd,
        to_flagd,
    )
    from .resolve import CompiledFlag, compile_flag, compile_predicate

# The engine itself (the compiler, the generated code, flagd's operators) is loaded on first
# use: a process with no flag definition and no rule never pays for importing it.
_LAZY = {
    "check_rule": "check",
    "FlagdDocument": "definition",
    "FlagDefinition": "definition",
    "check_definition": "definition",
    "parse_flagd": "definition",
    "to_flagd": "definition",
    "CompiledFlag": "resolve",
    "compile_flag": "resolve",
    "compile_predicate": "resolve",
}


__getattr__ = lazy_names(
    globals(), {name: f"{__name__}.{module}" for name, module in _LAZY.items()}
)


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
