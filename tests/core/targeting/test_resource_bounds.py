"""What a hostile rule or a hostile context can cost: bounded work and memory, never a crash.

A rule is written by an operator (or arrives in a flagd file, or from a peer); a context is
sent by anyone holding an evaluation token. Neither may make one evaluation grow without
bound, nor make the process keep what it was sent.
"""

from __future__ import annotations

import gc
import tracemalloc

from rollout._core.targeting import FlagDefinition, compile_flag


def test_caches_do_not_keep_long_values_a_context_sent() -> None:
    # fractional buckets by flagKey + targetingKey, and sem_ver parses a context value: both
    # cache recent answers. A client sending long unique values must not fill memory.
    split = {"fractional": [["on", 50], ["off", 50]]}
    version = {"if": [{"sem_ver": [{"var": "v"}, ">=", "1.0.0"]}, "on", "off"]}
    flags = [
        compile_flag(FlagDefinition({"on": True, "off": False}, "off", rule), {})
        for rule in (split, version)
    ]
    gc.collect()
    tracemalloc.start()
    try:
        before, _ = tracemalloc.get_traced_memory()
        for i in range(40):
            long_value = f"{i}-" + "k" * 50_000
            for flag in flags:
                flag.resolve("f", {"targetingKey": long_value, "v": "1.0.0-" + long_value})
        del long_value
        gc.collect()
        after, _ = tracemalloc.get_traced_memory()
    finally:
        tracemalloc.stop()
    assert after - before < 500_000  # 40 values of 50 kB each are 2 MB (4 MB with both)
