"""What a hostile rule or a hostile context can cost: bounded work and memory, never a crash.

A rule is written by an operator (or arrives in a flagd file, or from a peer); a context is
sent by anyone holding an evaluation token. Neither may make one evaluation grow without
bound, nor make the process keep what it was sent.
"""

from __future__ import annotations

import gc
import tracemalloc
from typing import Any

from rollout._core.targeting import FlagDefinition, compile_flag

ACCUMULATOR = {"var": "accumulator"}


def resolve(rule: Any, context: dict[str, Any] | None = None) -> Any:
    definition = FlagDefinition({"on": True, "off": False}, "off", rule)
    return compile_flag(definition, {}).resolve("f", context or {})


def doubled(step: Any, times: int) -> dict[str, Any]:
    """A rule whose value doubles ``times`` times (reduce over a list written in the rule)."""
    return {"if": [{"reduce": [list(range(times)), step, "x"]}, "on", "off"]}


def test_a_string_a_rule_doubles_is_bounded() -> None:
    # 2**22 characters (4 MiB) is cheap to build, so this fails fast without the bound;
    # without it, 64 doublings would ask for 2**64 characters.
    for times in (22, 64):
        answer = resolve(doubled({"cat": [ACCUMULATOR, ACCUMULATOR]}, times))
        assert (answer.reason, answer.error_code) == ("ERROR", "GENERAL")
        assert "too large" in (answer.error_message or "")


def test_a_list_a_rule_doubles_is_bounded() -> None:
    for times in (22, 64):
        answer = resolve(doubled({"merge": [ACCUMULATOR, ACCUMULATOR]}, times))
        assert (answer.reason, answer.error_code) == ("ERROR", "GENERAL")
        assert "too large" in (answer.error_message or "")


def test_a_shared_nested_value_is_never_expanded_without_bound() -> None:
    # [acc, acc] 64 times is 64 small lists in memory, but 2**64 leaves when written out:
    # turning it into text (cat, ==, an error message naming the result) must stay bounded.
    nested = {"reduce": [list(range(64)), [ACCUMULATOR, ACCUMULATOR], 0]}
    as_text = resolve({"if": [{"cat": [nested]}, "on", "off"]})
    assert (as_text.reason, as_text.error_code) == ("ERROR", "GENERAL")
    assert "too large" in (as_text.error_message or "")
    as_result = resolve(nested)  # not a variant name: the message shows a bounded excerpt
    assert (as_result.reason, as_result.error_code) == ("ERROR", "GENERAL")
    assert len(as_result.error_message or "") < 300


def test_iteration_is_charged_for_the_work_done_per_item() -> None:
    # 2,000 items (well under the item budget) times a 1,000-node logic is two million
    # node evaluations: charged as work, it is refused.
    heavy_logic = [{"var": ""}] * 500
    rule = {"if": [{"map": [{"var": "items"}, heavy_logic]}, "on", "off"]}
    answer = resolve(rule, {"items": list(range(2_000))})
    assert (answer.reason, answer.error_code) == ("ERROR", "GENERAL")
    light = resolve(rule, {"items": list(range(20))})
    assert light.variant == "on"


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


def test_a_long_almost_numeric_string_is_read_in_linear_time() -> None:
    # `age >= 18` reads a string age as JavaScript's Number(): the pattern for a decimal was
    # ambiguous (digits, optional dot, digits), so a long run of digits that ends in a letter
    # backtracked quadratically: 16,000 characters took seconds, a 1 MB context hours.
    adult = {"if": [{">=": [{"var": "age"}, 18]}, "on", "off"]}
    for age in ("1" * 1_000_000 + "x", "." + "1" * 1_000_000 + "e"):
        assert resolve(adult, {"age": age}).variant == "off"  # NaN >= 18 is false
    assert resolve(adult, {"age": "1" * 400}).variant == "on"  # 1e399 digits: Infinity
    assert resolve(adult, {"age": "17.5e0"}).variant == "off"
    assert resolve(adult, {"age": " 18. "}).variant == "on"


def test_arithmetic_is_javascript_numbers_never_unbounded_integers() -> None:
    # JSON integers are JavaScript numbers (doubles): squaring 10 thirteen times is Infinity,
    # not an integer of 8,193 digits (whose text Python refuses to write: that error escaped
    # the resolution), and 64 times would not be a number of 2**64 digits.
    for times in (13, 64):
        squared = {"reduce": [list(range(times)), {"*": [ACCUMULATOR, ACCUMULATOR]}, 10]}
        answer = resolve(squared)
        assert (answer.reason, answer.error_code) == ("ERROR", "GENERAL")
        assert "returned inf" in (answer.error_message or "")
    product = {"*": [{"var": "n"}, {"var": "n"}]}  # a context's integer, as JSON allows
    assert resolve(product, {"n": 10**2500}).reason == "ERROR"
    # As in JavaScript, 10**20 * 10 is 1e+21 (a double), and names the variant "1e+21".
    named = FlagDefinition({"1e+21": "big", "small": "small"}, "small", {"*": [10**20, 10]})
    assert compile_flag(named, {}).resolve("f", {}).variant == "1e+21"
    assert resolve({"if": [{"==": [{"+": [2**53, 1]}, 2**53]}, "on", "off"]}).variant == "on"
