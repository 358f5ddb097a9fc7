"""The pure core: the clock, the replicated state, its codec, bucketing, evaluation.

Nothing here does I/O, starts a thread or imports anything outside this package and the
standard library (tests/test_layers.py holds it to that): it is where the correctness lives, and
it is tested hardest.
"""
