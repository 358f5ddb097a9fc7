"""Benchmarks for rollout: check speed against a baseline and peer libraries, write cost, memory.

Run ``python -m bench`` (or ``make bench``). Each module is one concept: ``_timing`` (how a time
is measured), ``checks``, ``writes``, ``memory`` (what is measured), ``report`` (how it is
printed), ``peers`` (the peer libraries, set up offline).
"""
