"""The Ruby rollout gem's record format, pinned byte for byte against the real gem 2.6.2.

The golden file's ``records`` were recorded by driving the gem against Redis: after each call,
every key and value. Replaying the same calls through our API must give the same bytes.
"""

from __future__ import annotations

import re
from collections.abc import Callable
from dataclasses import dataclass
from typing import Any, Final

import pytest

from rollout import Rollout
from rollout._core.state import FlagState
from rollout.redis.ruby import (
    FEATURES_KEY,
    RubyRecord,
    check_ruby_safe,
    diff_records,
    feature_key,
    features_after_delete,
    features_after_save,
    features_key,
    features_list,
    flag_from_key,
    format_record,
    parse_features_list,
    parse_record,
    percentage_text,
    record_from_state,
    ruby_float_text,
    ruby_json,
)
from rollout.testing import FakeClock

from ..golden import load_golden

GOLDEN: Final[dict[str, Any]] = load_golden()
RECORDS: Final[list[dict[str, Any]]] = GOLDEN["records"]
#: Every distinct flag record the gem wrote.
FLAG_RECORDS: Final = sorted(
    {value for r in RECORDS for key, value in r["keys"].items() if key != FEATURES_KEY}
)


@dataclass(frozen=True)
class User:
    id: int


@dataclass(frozen=True)
class Step:
    after: str  # the gem call, as the golden file names it
    call: Callable[[Rollout], None]
    flag: str
    #: The percentage argument when the call set the flag's percentage (as the gem holds it).
    percentage: int | float | None = None


STEPS: Final = [
    Step("activate_percentage(:chat, 20)", lambda f: f.activate_percentage("chat", 20), "chat", 20),
    Step(
        "activate_group(:chat, :caretakers)",
        lambda f: f.activate_group("chat", "caretakers"),
        "chat",
    ),
    Step("activate_user(:chat, User(42))", lambda f: f.activate_user("chat", User(42)), "chat"),
    Step(
        "activate_users(:chat, [7, 'user-9'])",
        lambda f: f.activate_users("chat", [7, "user-9"]),
        "chat",
    ),
    Step(
        "set_feature_data(:chat, description: 'Chat v2', owner: 'a|b')",
        lambda f: f.set_feature_data("chat", {"description": "Chat v2", "owner": "a|b"}),
        "chat",
    ),
    Step("activate(:signup)", lambda f: f.activate("signup"), "signup", 100),
    Step("deactivate_user(:chat, User(42))", lambda f: f.deactivate_user("chat", User(42)), "chat"),
    Step("deactivate(:signup)", lambda f: f.deactivate("signup"), "signup", 0),
    Step(
        "activate_percentage(:beta, 0.5)", lambda f: f.activate_percentage("beta", 0.5), "beta", 0.5
    ),
    Step("delete(:beta)", lambda f: f.delete("beta"), "beta"),
]


def state_of(flags: Rollout, name: str) -> FlagState:
    # Private, but the only way to reach a flag's registers (their timestamps order the record).
    return flags._replica._flags[name]


def apply(flags: Rollout, name: str, writes: list[tuple[str, tuple[Any, ...]]]) -> None:
    for method, args in writes:
        getattr(flags, method)(name, *args)


# Python -> Ruby: replaying the gem's calls gives the gem's bytes ------------------------------


def test_the_steps_are_the_golden_calls() -> None:
    assert [step.after for step in STEPS] == [record["after"] for record in RECORDS]


@pytest.mark.parametrize("with_previous", [False, True], ids=["from-state", "with-previous"])
def test_replaying_the_gem_calls_writes_the_gem_bytes(with_previous: bool) -> None:
    with Rollout(clock=FakeClock()) as flags:
        mirrored: dict[str, str] = {}  # what a mirror would have written to Redis
        listed: list[str] = []
        for step, golden in zip(STEPS, RECORDS, strict=True):
            step.call(flags)
            state = state_of(flags, step.flag)
            if state.exists:
                known = step.flag in mirrored
                previous = parse_record(mirrored[step.flag]) if known and with_previous else None
                # A flag new to Ruby starts at the Integer 0 in the gem.
                set_pct = step.percentage if step.percentage is not None or known else 0
                mirrored[step.flag] = record_from_state(
                    state, set_percentage=set_pct, previous=previous
                )
                listed = features_after_save(listed, step.flag)
            else:
                del mirrored[step.flag]
                listed = features_after_delete(listed, step.flag)
            keys = {feature_key(name): value for name, value in mirrored.items()}
            keys[FEATURES_KEY] = features_list(listed)
            expected: dict[str, str] = golden["keys"]
            assert {k: v.encode() for k, v in keys.items()} == {
                k: v.encode() for k, v in expected.items()
            }, step.after
            assert sorted(listed) == flags.features(), step.after


@pytest.mark.parametrize("text", FLAG_RECORDS)
def test_every_golden_record_round_trips(text: str) -> None:
    assert format_record(parse_record(text)).encode() == text.encode()


@pytest.mark.parametrize("text", FLAG_RECORDS)
@pytest.mark.parametrize("with_previous", [False, True], ids=["from-state", "with-previous"])
def test_record_to_flags_to_record_is_identical(text: str, with_previous: bool) -> None:
    record = parse_record(text)
    with Rollout(clock=FakeClock()) as flags:
        apply(flags, "chat", diff_records(None, record))
        # "20" is what the gem writes right after setting the Integer 20; "20.0" after a reload.
        text_pct = record.percentage_text
        set_pct = int(text_pct) if text_pct.isdigit() else None
        previous = record if with_previous else None
        again = record_from_state(
            state_of(flags, "chat"), set_percentage=set_pct, previous=previous
        )
    assert again.encode() == text.encode()


# Ruby -> Python: the gem's record changes become ordinary writes ------------------------------


def test_following_the_gem_record_by_record_gives_the_same_flags() -> None:
    seen: dict[str, RubyRecord] = {}
    with Rollout(clock=FakeClock()) as flags:
        for golden in RECORDS:
            keys: dict[str, str] = golden["keys"]
            now = {
                name: parse_record(keys[feature_key(name)])
                for name in parse_features_list(keys[FEATURES_KEY])
            }
            for name in sorted(set(seen) | set(now)):
                apply(flags, name, diff_records(seen.get(name), now.get(name)))
            seen = now
            assert flags.features() == sorted(now), golden["after"]
            for name, record in now.items():
                feature = flags.get(name)
                assert feature.percentage == record.percentage
                assert feature.users == set(record.users)
                assert feature.groups == set(record.groups)
                assert dict(feature.data) == record.data


def test_a_reload_that_only_turns_20_into_20_0_writes_nothing() -> None:
    assert diff_records(parse_record("20|||{}"), parse_record("20.0||caretakers|{}")) == [
        ("activate_group", ("caretakers",))
    ]
    assert diff_records(parse_record("20|||{}"), parse_record("20.0|||{}")) == []


def test_diff_writes_only_what_changed() -> None:
    old = parse_record('20.0|42,7|a,b|{"x":1,"y":"z"}')
    new = parse_record('50.0|7,9|b,c|{"x":1.0,"y":"z","w":null}')
    assert diff_records(old, new) == [
        ("activate_percentage", (50.0,)),
        ("activate_users", (["9"],)),
        ("deactivate_users", (["42"],)),
        ("activate_group", ("c",)),
        ("deactivate_group", ("a",)),
        ("set_feature_data", ({"x": 1.0, "w": None},)),  # 1 and 1.0 are different JSON
    ]


def test_a_removed_data_key_clears_then_sets_the_rest() -> None:
    old = parse_record('0|||{"a":1,"b":2}')
    assert diff_records(old, parse_record('0|||{"b":2}')) == [
        ("clear_feature_data", ()),
        ("set_feature_data", ({"b": 2},)),
    ]
    assert diff_records(old, parse_record("0|||{}")) == [("clear_feature_data", ())]


def test_ruby_deactivate_becomes_the_individual_removals() -> None:
    # Not our deactivate: that would also clear exclusions and percentage of time, which the
    # Ruby record never showed.
    old = parse_record('20.0|7|g|{"a":1}')
    assert diff_records(old, parse_record("0|||{}")) == [
        ("deactivate_percentage", ()),
        ("deactivate_users", (["7"],)),
        ("deactivate_group", ("g",)),
        ("clear_feature_data", ()),
    ]


def test_a_new_empty_record_creates_the_flag_and_a_gone_one_deletes_it() -> None:
    with Rollout(clock=FakeClock()) as flags:
        apply(flags, "quiet", diff_records(None, parse_record("0|||{}")))
        assert flags.features() == ["quiet"]
        apply(flags, "quiet", diff_records(parse_record("0|||{}"), None))
        assert flags.features() == []
    assert diff_records(None, None) == []
    assert diff_records(parse_record("0|||{}"), parse_record("0|||{}")) == []


# The record format ------------------------------------------------------------------------


def test_parse_follows_the_gem() -> None:
    assert parse_record("20|||{}") == RubyRecord(20.0, "20", (), (), {})
    record = parse_record('20.0|42,7,user-9|caretakers|{"owner":"a|b","n":[1,2.5]}')
    assert record.users == ("42", "7", "user-9")
    assert record.groups == ("caretakers",)
    assert list(record.data) == ["owner", "n"]  # key order kept
    assert record.data == {"owner": "a|b", "n": [1, 2.5]}
    # Blank or missing fields are empty; Ruby's split drops trailing blanks only.
    assert parse_record("") == RubyRecord(0.0, "", (), (), {})
    assert parse_record("5") == RubyRecord(5.0, "5", (), (), {})
    assert parse_record("5|a,,b,|g| ") == RubyRecord(5.0, "5", ("a", "", "b"), ("g",), {})


@pytest.mark.parametrize(
    "text",
    ["abc|||{}", "20abc|||{}", "nan|||{}", "150|||{}", "-1|||{}", "20|||{", "20|||[1]", "5|||NaN"],
)
def test_a_malformed_record_raises_naming_the_text(text: str) -> None:
    with pytest.raises(ValueError, match=re.escape(repr(text))):
        parse_record(text)


def test_data_is_written_as_ruby_to_json_writes_it() -> None:
    assert ruby_json({}) == "{}"
    # UTF-8 as is, compact, Ruby's floats, escapes as JSON requires.
    assert ruby_json({"owner": "Zoë 日本", "n": [1, 2.5, 1e20, True, None]}) == (
        '{"owner":"Zoë 日本","n":[1,2.5,1.0e+20,true,null]}'
    )
    assert ruby_json({"s": 'a"b\\c\n\x01/'}) == '{"s":"a\\"b\\\\c\\n\\u0001/"}'
    with pytest.raises(ValueError, match="nan"):
        ruby_json({"x": float("nan")})


@pytest.mark.parametrize(
    ("value", "text"),
    [
        (20.0, "20.0"),
        (0.5, "0.5"),
        (33.3, "33.3"),
        (100.0, "100.0"),
        (0.0, "0.0"),
        (0.1, "0.1"),
        (99.99, "99.99"),
        (0.0001, "0.0001"),
        (1e-05, "1.0e-05"),
        (1.5e-07, "1.5e-07"),
    ],
)
def test_ruby_float_text(value: float, text: str) -> None:
    assert ruby_float_text(value) == text


def test_percentage_text_depends_on_how_the_gem_got_it() -> None:
    assert percentage_text(20.0, set_now=20) == "20"
    assert percentage_text(20.0, set_now=None) == "20.0"
    assert percentage_text(100.0, set_now=100) == "100"
    assert percentage_text(0.0, set_now=0) == "0"
    assert percentage_text(0.5, set_now=0.5) == "0.5"
    assert percentage_text(20.0, set_now=20.0) == "20.0"
    # Another write won since: the visible value is written, as the gem would reload it.
    assert percentage_text(30.0, set_now=20) == "30.0"
    with pytest.raises(TypeError, match="set_now"):
        percentage_text(100.0, set_now=True)


def test_ids_added_in_one_write_come_out_sorted_unless_already_mirrored() -> None:
    with Rollout(clock=FakeClock()) as flags:
        flags.activate_users("f", ["b", "a"])
        flags.activate_users("f", ["0"])
        state = state_of(flags, "f")
        # The documented caveat: the gem would write b,a,0 (argument order).
        assert record_from_state(state) == "0.0|a,b,0||{}"
        assert record_from_state(state, previous=parse_record("0|b,a||{}")) == "0.0|b,a,0||{}"


# Names the format cannot hold -------------------------------------------------------------


@pytest.mark.parametrize(("kind", "value"), [("user id", "a,b"), ("group name", "a|b")])
def test_commas_and_bars_are_refused(kind: str, value: str) -> None:
    message = f"{kind} {value!r} holds ',' or '|', which the Ruby rollout format cannot store"
    with pytest.raises(ValueError, match=re.escape(message)):
        check_ruby_safe(kind, value)


def test_flag_names_the_feature_list_cannot_hold_are_refused() -> None:
    with pytest.raises(ValueError, match="flag name 'a,b' holds ','"):
        check_ruby_safe("flag name", "a,b")
    with pytest.raises(ValueError, match="__features__"):
        check_ruby_safe("flag name", "__features__")
    check_ruby_safe("flag name", "a|b")  # only the list splits on ","
    for kind in ("user id", "group name", "flag name"):
        check_ruby_safe(kind, "user-9 ok")
    with pytest.raises(ValueError, match="kind"):
        check_ruby_safe("data key", "x")


# Keys and the feature list ----------------------------------------------------------------


def test_keys_and_namespace() -> None:
    assert feature_key("chat") == "feature:chat"
    assert features_key() == FEATURES_KEY == "feature:__features__"
    assert feature_key("chat", "app") == "app:feature:chat"
    assert features_key("app") == "app:feature:__features__"
    assert flag_from_key("app:feature:chat", "app") == "chat"
    assert flag_from_key("app:feature:__features__", "app") is None
    assert flag_from_key("feature:chat", "app") is None
    assert flag_from_key("feature:a|b:c") == "a|b:c"


def test_the_feature_list() -> None:
    assert parse_features_list("") == []
    assert parse_features_list("chat,signup,beta") == ["chat", "signup", "beta"]
    assert parse_features_list("a,,b,a,") == ["a", "b"]
    assert features_list(["chat", "signup"]) == "chat,signup"
    assert features_after_save(["chat", "signup"], "chat") == ["chat", "signup"]
    assert features_after_save(["chat"], "beta") == ["chat", "beta"]
    assert features_after_delete(["chat", "beta", "signup"], "beta") == ["chat", "signup"]
