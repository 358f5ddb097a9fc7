"""The limits every rule is held to at write time, so that no rule can run unbounded."""

from __future__ import annotations

__all__ = ["MAX_BUILT", "MAX_ITERATIONS", "MAX_RULE_DEPTH", "MAX_RULE_NODES"]

# Nodes of a rule (every JSON value in it, operators and literals alike), after $ref expansion.
MAX_RULE_NODES = 2_000
# Nesting of a rule: a deeper rule is refused (it would also strain Python's recursion).
MAX_RULE_DEPTH = 32
# Items the iterating operators (map, filter, reduce, all, none, some) may visit in one
# evaluation, summed over nested iterations, each visit weighted by the nodes of the logic run
# for it: the work of one evaluation is then bounded whatever the lists and the logic. Going
# over it is an evaluation error (the flag resolves ERROR).
MAX_ITERATIONS = 100_000
# Characters and items that cat and merge may build in one evaluation, and that one value may
# have when written out as text: a reduce whose accumulator doubles at each step would
# otherwise ask for 2**n characters. Going over it is an evaluation error too.
MAX_BUILT = 1_000_000
