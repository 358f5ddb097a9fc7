"""What the compiled per-flag checks (rollout._core.specialize) do on their fast paths.

The evaluation property test compares every flag shape with the rules read plainly; these pin
the paths it does not reach: many groups (called one by one up to a count, in a loop beyond),
ids read as an attribute in the generated source, and the process-wide memo of CRC32 buckets.
The memo and the moment between two lookups are the Python check's own (``python_check``);
the C accelerator's check computes the bucket of an int or ASCII id instead, and is compared
with the Python check in tests/core/test_speedups.py.
"""

from __future__ import annotations

import copy
import math
import os
import sys
import zlib
from typing import Any

import pytest

from rollout import Rollout
from rollout._core.bucketing import MEMO_ID_LENGTH, MEMO_SIZE, crc32_memo, ruby_bucket
from rollout._core.evaluate import build_active


class User:
    def __init__(self, ident: object) -> None:
        self.id = ident


def inside(uid: str, percentage: float) -> bool:
    return ruby_bucket(uid) < math.ceil((2**32 - 1) / 100.0 * percentage)


def outside_user(percentage: float) -> int:
    return next(i for i in range(1, 10_000) if not inside(str(i), percentage))


@pytest.mark.parametrize("count", [1, 2, 3, 7, 8, 9, 12])
def test_every_group_of_a_flag_is_asked_in_turn_until_one_says_yes(count: int) -> None:
    flags = Rollout()
    asked: list[int] = []

    def group(index: int) -> Any:
        def predicate(user: User) -> bool:
            asked.append(index)
            if index == 0:
                raise RuntimeError("a broken group says no")
            return index == user.id

        return predicate

    for index in range(count):
        flags.define_group(f"g{index:02d}", group(index))
        flags.activate_group("chat", f"g{index:02d}")
    for wanted in range(1, count):  # user `wanted` is in group g<wanted> only
        asked.clear()
        assert flags.active("chat", User(wanted)) is True
        assert asked == list(range(wanted + 1))  # every group before it was asked, in order
    asked.clear()
    assert flags.active("chat", User(count + 5)) is False
    assert asked == list(range(count))
    assert flags.stats()["group_errors"] == count  # g00 raised once per check, counted


@pytest.mark.parametrize("attribute", ["id", "user_id", "\ufb01", "class", "_id"])
def test_an_id_attribute_is_read_as_getattr_reads_it(attribute: str) -> None:
    # "\ufb01" (the ligature fi) is NFKC-normalised to "fi" in source code: the check must read
    # the attribute named by the string, never "fi". "class" is a keyword, not an attribute
    # access the source can spell.
    flags = Rollout(id_user_by=attribute)
    flags.activate_user("chat", "42")
    user = User(0)
    setattr(user, attribute, 42)
    user.fi = 7  # type: ignore[attr-defined]
    assert flags.active("chat", user) is True
    setattr(user, attribute, 43)
    assert flags.active("chat", user) is False
    flags.activate_user("chat", "7")
    setattr(user, attribute, "x")
    assert flags.active("chat", user) is False


class TalkativeName(str):
    """An attribute name whose ``repr`` is a Python expression with a side effect."""

    def __repr__(self) -> str:
        return "(__import__('os').environ.__setitem__('ROLLOUT_INJECTED', 'yes') or 'id')"


def test_an_id_attribute_name_of_a_str_subclass_is_read_as_its_text(
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    # The name is written into the generated check's source: only its text may reach it, never
    # what the subclass's own methods answer.
    monkeypatch.delenv("ROLLOUT_INJECTED", raising=False)
    flags = Rollout(id_user_by=TalkativeName("id"))
    flags.activate_percentage("everyone-ish", 100)  # a flag checked inline in active()
    flags.activate_users("listed", ["42"])  # a flag with a compiled check of its own
    assert flags.active("everyone-ish", User(42)) is True
    assert flags.active("listed", User(42)) is True
    assert flags.active("listed", User(43)) is False
    assert "ROLLOUT_INJECTED" not in os.environ


def test_an_id_property_that_raises_raises_its_own_error() -> None:
    class Broken:
        @property
        def id(self) -> int:
            raise LookupError("no id today")

    flags = Rollout()
    flags.activate_percentage("chat", 50)
    with pytest.raises(LookupError, match="no id today"):  # the application's bug, surfaced
        flags.active("chat", Broken())


@pytest.mark.usefixtures("python_check")
def test_the_bucket_memo_keeps_only_exact_str_and_int_ids() -> None:
    flags = Rollout()
    flags.activate_percentage("chat", 50)
    one_in = inside("1", 50)
    assert flags.active("chat", 1) is one_in
    assert flags.active("chat", User(1)) is one_in
    assert flags.active("chat", "1") is one_in
    assert crc32_memo[1] == crc32_memo["1"] == ruby_bucket("1")
    # True == 1 and 1.0 == 1 as dict keys: neither may borrow user 1's bucket.
    with pytest.raises(TypeError):
        flags.active("chat", User(True))
    with pytest.raises(TypeError):
        flags.active("chat", User(1.0))
    with pytest.raises(TypeError):
        flags.active("chat", True)
    assert all(type(key) in (str, int) for key in crc32_memo)


@pytest.mark.usefixtures("python_check")
def test_the_bucket_memo_is_bounded_and_answers_the_same_after_it_is_emptied() -> None:
    flags = Rollout()
    flags.activate_percentage("chat", 20)
    first = [flags.active("chat", i) for i in range(1, 2001)]
    for i in range(MEMO_SIZE + 10):  # more distinct ids than it holds
        flags.active("chat", f"user-{i}")
        assert len(crc32_memo) <= MEMO_SIZE
    assert [flags.active("chat", User(i)) for i in range(1, 2001)] == first
    assert first == [inside(str(i), 20) for i in range(1, 2001)]


def test_an_id_no_utf8_encoder_takes_gets_the_bytes_it_came_from() -> None:
    flags = Rollout()
    flags.activate_percentage("chat", 50)
    raw = b"caf\xe9"  # Latin-1 bytes, decoded the way os.fsdecode does
    uid = raw.decode("utf-8", "surrogateescape")
    want = zlib.crc32(raw) < math.ceil((2**32 - 1) / 100.0 * 50)
    assert flags.active("chat", uid) is want
    assert flags.active("chat", uid) is want  # and again, from the memo
    assert crc32_memo[uid] == zlib.crc32(raw)


def test_every_rollout_has_its_own_check() -> None:
    first, second = Rollout(), Rollout()
    first.activate("chat")
    second.activate("chat")
    assert type(first) is not type(second)
    assert isinstance(first, Rollout)
    assert type(first).__name__ == "Rollout"
    with first.override("chat", False):
        assert first.active("chat") is False
        assert second.active("chat") is True
    assert first.active("chat") is True


def test_a_subclass_of_rollout_keeps_its_own_methods() -> None:
    class AppFlags(Rollout):
        def chat(self, user: object) -> bool:
            return self.active("chat", user)

    flags = AppFlags()
    flags.activate_user("chat", 5)
    assert isinstance(flags, AppFlags)
    assert flags.chat(5) is True
    assert flags.chat(6) is False


@pytest.mark.usefixtures("python_check")
def test_a_long_id_is_answered_and_not_kept() -> None:
    # Ids come from the network too: a memo of 16,384 ids of any length could be made to hold
    # gigabytes. A long id is bucketed on every check, with the same answer.
    flags = Rollout()
    flags.activate_percentage("chat", 50)
    long_id = "x" * (MEMO_ID_LENGTH + 1)
    want = inside(long_id, 50)
    assert flags.active("chat", long_id) is want
    assert flags.active("chat", User(long_id)) is want
    assert long_id not in crc32_memo
    short_id = "y" * MEMO_ID_LENGTH
    assert flags.active("chat", short_id) is inside(short_id, 50)
    assert short_id in crc32_memo


@pytest.mark.usefixtures("python_check")
def test_ints_that_share_a_hash_are_answered_and_not_kept() -> None:
    # Int hashes are not randomised: ids n + k * modulus all hash alike, and a memo holding
    # thousands of them would walk them all on every lookup. Only ints whose hash is the int
    # itself are kept; the others are bucketed on every check, with the same answers.
    modulus = sys.hash_info.modulus
    colliding = [7 + k * modulus for k in range(1, 50)]
    assert len({hash(i) for i in colliding}) == 1
    flags = Rollout()
    flags.activate_percentage("chat", 50)
    assert [flags.active("chat", i) for i in colliding] == [inside(str(i), 50) for i in colliding]
    assert not any(i in crc32_memo for i in colliding)
    flags.active("chat", 7)
    assert 7 in crc32_memo
    flags.active("chat", -7)  # hash(-1) == hash(-2): negative ints are not kept either
    assert -7 not in crc32_memo


def test_a_subclass_with_its_own_init_subclass_is_made_once_and_checks_alike() -> None:
    made: list[type] = []

    class Hooked(Rollout):
        def __init_subclass__(cls, *, tag: str, **kwargs: Any) -> None:
            super().__init_subclass__(**kwargs)
            made.append(cls)

    class Tagged(Hooked, tag="x"):
        pass

    assert made == [Tagged]
    first, second = Tagged(), Tagged()
    assert made == [Tagged]  # no class made per instance: the application's hook ran once
    assert type(first) is Tagged
    first.activate_user("chat", 5)
    second.activate("chat")
    assert first.active("chat", 5) is True
    assert first.active("chat", 6) is False
    with first.override("chat", False):
        assert first.active("chat", 5) is False
        assert second.active("chat", 6) is True
    assert first.active("chat", 5) is True


def test_a_copied_rollout_does_not_stack_classes() -> None:
    flags = Rollout()
    again = copy.copy(copy.copy(flags))
    assert type(again).__mro__[1] is Rollout


def test_a_percentage_flag_answers_by_its_rules_as_writes_add_and_remove_other_rules() -> None:
    # A flag that is only a percentage is checked by flags.active itself (its bound kept apart
    # from the other flags' functions); every write that adds or removes a rule moves it.
    flags = Rollout()
    flags.define_group("sevens", lambda user: user.id % 10 == 7)
    out = outside_user(30)
    ids = range(1, 400)

    def answers() -> list[bool]:
        return [flags.active("chat", User(i)) for i in ids]

    def bucket(i: int) -> bool:
        return inside(str(i), 30)

    assert flags.active("chat", User(out)) is False  # no flag yet
    flags.activate_percentage("chat", 30)
    assert answers() == [bucket(i) for i in ids]
    assert [flags.active("chat", i) for i in ids] == [flags.active("chat", str(i)) for i in ids]
    flags.activate_user("chat", str(out))
    assert flags.active("chat", User(out)) is True
    flags.deactivate_user("chat", str(out))
    assert flags.active("chat", User(out)) is False
    flags.activate_group("chat", "sevens")
    assert answers() == [bucket(i) or i % 10 == 7 for i in ids]
    flags.deactivate_group("chat", "sevens")
    assert answers() == [bucket(i) for i in ids]
    flags.activate_percentage("chat", 100)
    assert all(answers())
    flags.activate_percentage("chat", 30)
    assert answers() == [bucket(i) for i in ids]
    flags.delete("chat")
    assert not any(answers())


@pytest.mark.parametrize("attribute", ["numerator", "upper"])
def test_a_percentage_flag_reads_an_id_attribute_that_str_or_int_has(attribute: str) -> None:
    # getattr(user, attribute, user) cannot tell such an id from a str or int user: the flag's
    # own function (type first) checks it.
    flags = Rollout(id_user_by=attribute)
    flags.activate_percentage("chat", 30)
    user = User(0)
    want = [inside(str(i), 30) for i in range(1, 200)]
    got = []
    for i in range(1, 200):
        setattr(user, attribute, i)
        got.append(flags.active("chat", user))
    assert got == want
    assert [flags.active("chat", i) for i in range(1, 200)] == want


@pytest.mark.usefixtures("python_check")
def test_a_check_that_races_a_write_making_a_percentage_flag_more_still_finds_the_flag() -> None:
    # flags.active looks in user_checks, then (on a miss) in percentage_bounds. A write that
    # gives a bare percentage flag a group lands between the two lookups here: the check must
    # still answer by the flag (the user is inside its 50%), not as for an unknown flag.
    flags = Rollout()
    flags.define_group("nobody", lambda user: False)
    flags.activate_percentage("chat", 50)
    uid = next(i for i in range(1, 1000) if inside(str(i), 50))
    replica = flags._replica

    class Racing(dict[str, Any]):
        def get(self, name: str, default: Any = None) -> Any:
            found = replica.user_checks.get(name, default)
            flags.activate_group("chat", "nobody")  # the write, after the first lookup
            return found

    active = build_active(
        replica.checks,
        replica.anonymous,
        Racing(),
        flags._active_uncompiled,
        percentage_bounds=replica.percentage_bounds,
        id_attribute="id",
        user_id=flags._user_id,
    )
    assert active(None, "chat", User(uid)) is True
    assert flags.active("chat", User(uid)) is True
