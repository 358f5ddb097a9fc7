"""A write that only lists or unlists users keeps the flag's compiled check (it shares the sets
it reads with the flag's state); every other change builds it again. Either way a check answers
for exactly the users the flag lists."""

from __future__ import annotations

import time

from rollout import Rollout
from rollout._core.clock import Timestamp
from rollout._core.codec import encode
from rollout._core.keys import RESET
from rollout._core.state import Register


def test_users_listed_after_a_merge_that_moved_a_watermark_and_changed_nothing_are_on() -> None:
    flags = Rollout()
    # A reset older than every user (another replica's deactivate, a minute ago): the watermark
    # moves, nothing is hidden, nothing visible changes, and the flag's sets are built again.
    older = Timestamp(int(time.time() * 1000) - 60_000, 0, 1)
    flags.activate_user("f", "a")
    assert flags.merge(encode({"f": {RESET: Register(older, None)}})) == set()
    flags.activate_user("f", "b")
    flags.deactivate_user("f", "a")
    assert flags.active("f", "b")
    assert not flags.active("f", "a")
    assert flags.get("f").users == frozenset({"b"})


def test_each_kind_of_user_write_is_answered() -> None:
    flags = Rollout()
    flags.activate_user("f", "a")
    flags.activate_user("f", "b")  # in place
    assert flags.active("f", "a")
    assert flags.active("f", "b")
    flags.exclude_user("f", "b")  # the excluded set goes from empty to one: built again
    assert not flags.active("f", "b")
    flags.exclude_user("f", "c")  # in place
    flags.activate_user("f", "c")
    assert not flags.active("f", "c")
    flags.include_user("f", "b")
    flags.include_user("f", "c")  # the excluded set empty again: built again
    assert flags.active("f", "b")
    assert flags.active("f", "c")
    flags.deactivate_user("f", "a")
    flags.deactivate_user("f", "b")
    flags.deactivate_user("f", "c")  # no user listed: built again
    assert not any(flags.active("f", user) for user in "abc")
    flags.activate_percentage("f", 100)
    assert flags.active("f", "z")
