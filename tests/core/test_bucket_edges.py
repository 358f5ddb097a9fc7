"""A user whose bucket is next to a flag's bound: let in exactly when the bucket is below it.

The inline percentage check in ``flags.active``, a flag's generated check and ``explain`` each
compare the memoised default bucket with the bound their own way; an off-by-one or a rounding
anywhere would show first on the bucket one below, at, or one above the bound. Each example
takes a user and makes a percentage whose bound is exactly that near the user's bucket.
"""

from __future__ import annotations

import math
from dataclasses import dataclass

from hypothesis import assume, given
from hypothesis import strategies as st

from rollout import Rollout
from rollout._core.bucketing import ruby_bucket, threshold


@dataclass(frozen=True)
class User:
    id: int | str


def percentage_with_bound(bound: int) -> float:
    """A percentage whose bucket bound is exactly ``bound`` (between 1 and 2**32 - 1)."""
    percentage = bound / ((2**32 - 1) / 100.0)
    while threshold(percentage) > bound:
        percentage = math.nextafter(percentage, 0.0)
    while threshold(percentage) < bound:
        percentage = math.nextafter(percentage, 100.0)
    assert threshold(percentage) == bound
    return percentage


ids = st.one_of(st.integers(min_value=0, max_value=2**63), st.text(min_size=1, max_size=12))


@given(ident=ids, offset=st.sampled_from([-1, 0, 1]))
def test_a_bucket_next_to_the_bound_is_let_in_only_below_it(ident: int | str, offset: int) -> None:
    bucket = ruby_bucket(str(ident))
    bound = bucket + offset  # the bucket is one above, at, or one below the bound
    assume(0 < bound < 2**32)
    percentage = percentage_with_bound(bound)
    flags = Rollout()
    flags.define_group("nobody", lambda user: False)
    flags.activate_percentage("plain", percentage)  # checked by flags.active itself
    flags.activate_percentage("grouped", percentage)  # by the flag's own generated check
    flags.activate_group("grouped", "nobody")
    want = bucket < bound
    for user in (ident, User(ident)):
        assert flags.active("plain", user) is want
        assert flags.active("grouped", user) is want
    for flag in ("plain", "grouped"):
        explanation = flags.explain(flag, ident)
        assert explanation.active is want
        assert (explanation.bucket, explanation.threshold) == (bucket, bound)
        assert type(explanation.bucket) is int
