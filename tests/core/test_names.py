"""The naming rule, its regular expression (the OpenAPI document's), and the JSON check.

The rule is one function, ``name_problem``; the pattern the API publishes must say the same, or
a client that trusts the document would send names the server refuses (or the reverse)."""

from __future__ import annotations

import re
from typing import Any

import pytest
from hypothesis import example, given
from hypothesis import strategies as st

from rollout._core.validate import (
    MAX_DEPTH,
    MAX_NAME_LENGTH,
    NAME_PATTERN,
    json_problem,
    name_problem,
)

_NAME = re.compile(NAME_PATTERN)
_EDGES = " \t\n\u00a0\u2028\u3000\ufeff\u0085./%,x"


@given(
    st.text(
        st.one_of(st.sampled_from(_EDGES), st.characters(codec="utf-8")),
        min_size=1,
        max_size=MAX_NAME_LENGTH,
    )
)
@example(".")
@example("..")
@example("...")
@example(" x")
@example("x\u3000")
@example("\ufeffx")  # not whitespace to Python's strip(), so allowed by both
@example("a\u2028b ")
def test_the_published_pattern_is_the_rule(name: str) -> None:
    assert (_NAME.fullmatch(name) is not None) == (name_problem(name) is None), name


@pytest.mark.parametrize(
    ("value", "problem"),
    [
        (1, None),
        ("text", None),
        ([], None),
        ({"k": [1, {"j": "x"}]}, None),
        ("x\ud800", "lone surrogate"),
        ({"k\udc00": 1}, "lone surrogate"),
        ([[["\udfff"]]], "lone surrogate"),
    ],
)
def test_json_problem_finds_text_that_is_not_unicode(value: Any, problem: str | None) -> None:
    found = json_problem(value)
    assert (found is None) if problem is None else (found is not None and problem in found)


def nested(levels: int) -> Any:
    value: Any = 1
    for _ in range(levels):
        value = [value]
    return value


def test_depth_counts_containers_and_the_limit_is_inclusive() -> None:
    assert json_problem(nested(MAX_DEPTH)) is None
    assert json_problem(nested(MAX_DEPTH + 1)) == f"nests more than {MAX_DEPTH} levels deep"
    assert json_problem(nested(200_000)) is not None  # measured, not recursed into


def test_a_list_that_contains_itself_is_too_deep_not_a_hang() -> None:
    loop: list[Any] = []
    loop.append(loop)
    assert json_problem(loop) == f"nests more than {MAX_DEPTH} levels deep"
