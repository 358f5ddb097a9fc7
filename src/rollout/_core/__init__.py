"""The pure core: the clock, the replicated state, its keys and codec, bucketing, evaluation.

Nothing here does I/O, starts a thread or imports anything outside this package, the error
tree (rollout.errors) and the standard library; tests/test_layers.py holds it to that. It is
where the correctness lives, and it is tested hardest.
"""
