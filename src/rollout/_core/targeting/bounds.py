"""The limits every rule is held to at write time, so that no rule can run unbounded."""

from __future__ import annotations

__all__ = ["MAX_ITERATIONS", "MAX_RULE_DEPTH", "MAX_RULE_NODES"]

# Nodes of a rule (every JSON value in it, operators and literals alike), after $ref expansion.
MAX_RULE_NODES = 2_000
# Nesting of a rule: a deeper rule is refused (it would also strain Python's recursion).
MAX_RULE_DEPTH = 32
# Items the iterating operators (map, filter, reduce, all, none, some) may visit in one
# evaluation, summed over nested iterations: the context's lists bound one pass, this bounds
# nested passes over big lists. Going over it is an evaluation error (flag resolves ERROR).
MAX_ITERATIONS = 100_000
