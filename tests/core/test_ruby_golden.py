"""Behaviour pinned against the real Ruby rollout gem 2.6.2.

The golden file was recorded by driving the gem itself (see its ``_about``); it is read here as
it is and never rewritten. Percentage buckets must match the gem exactly, so Ruby and Python
services put the same users in the same percentage.
"""

from __future__ import annotations

import hashlib
import json
import re
from dataclasses import dataclass
from typing import Any, Final

import pytest

from rollout import Rollout
from rollout.testing import FakeClock

from ..golden import GOLDEN_PATH as RECORDING_PATH
from ..golden import find_golden, load_golden

GOLDEN_PATH: Final = find_golden()
GOLDEN: Final[dict[str, Any]] = load_golden()
BUCKETING: Final[dict[str, list[int]]] = GOLDEN["bucketing"]
PERCENTAGES: Final = sorted((float(pct), pct) for pct in BUCKETING)
IDS: Final = range(1, 2001)


@dataclass(frozen=True)
class User:
    """The gem's recording used ``User(42)``: an object whose ``id`` is 42."""

    id: int


def let_in(flags: Rollout, name: str, users: range = IDS) -> list[int]:
    return [user for user in users if flags.active(name, user)]


#: The recording's SHA-256 as recorded: it is used as it is, never edited to make a test pass.
RECORDING_SHA256: Final = "534b52a5c6bfe81851c7a5800dc37ca17157ceb4b045d369fad1eb1d7d85ba08"


def test_the_golden_file_is_the_recording_of_gem_2_6_2() -> None:
    assert GOLDEN_PATH.is_file()
    if GOLDEN_PATH == RECORDING_PATH:  # not another recording named by $ROLLOUT_GOLDEN
        assert hashlib.sha256(GOLDEN_PATH.read_bytes()).hexdigest() == RECORDING_SHA256
    assert GOLDEN["rollout_version"] == "2.6.2"
    assert set(BUCKETING) >= {"0.1", "1", "5", "20", "33.3", "50", "99", "100"}
    assert set(GOLDEN["randomized"]) >= {"chat", "beta", "signup"}
    assert GOLDEN["records"]


# Percentage buckets ---------------------------------------------------------------------------


@pytest.mark.parametrize("pct", [pct for _, pct in PERCENTAGES])
def test_percentage_buckets_match_the_gem_for_ids_1_to_2000(flags: Rollout, pct: str) -> None:
    expected: list[int] = BUCKETING[pct]
    flags.activate_percentage("chat", float(pct))
    assert let_in(flags, "chat") == expected
    # The same users whichever way the id is given.
    assert [u for u in IDS if flags.active("chat", str(u))] == expected
    assert [u for u in IDS if flags.active("chat", User(u))] == expected


def test_default_buckets_do_not_depend_on_the_flag_name(flags: Rollout) -> None:
    for name in ("chat", "beta", "signup", "a much longer flag name"):
        flags.activate_percentage(name, 20)
        assert let_in(flags, name) == BUCKETING["20"]


def test_string_ids_at_20_percent_match_the_gem(flags: Rollout) -> None:
    listed: list[str] = GOLDEN["bucketing_strings_20"]
    # The recording tried "alice" and "u1".."u200" and kept the ids the gem let in.
    candidates = [f"u{n}" for n in range(1, 201)]
    assert set(listed) <= {"alice", *candidates}
    flags.activate_percentage("chat", 20)
    for user in listed:
        assert flags.active("chat", user) is True, user
    not_listed = [u for u in candidates if u not in listed]
    assert len(not_listed) > 100
    assert [u for u in not_listed if flags.active("chat", u)] == []


@pytest.mark.parametrize("name", sorted(GOLDEN["randomized"]))
def test_ruby_randomized_buckets_match_the_gem(name: str) -> None:
    with Rollout(randomize_percentage="ruby", clock=FakeClock()) as flags:
        flags.activate_percentage(name, 20)
        assert let_in(flags, name) == GOLDEN["randomized"][name]


def test_ruby_randomized_flags_with_same_length_names_are_disjoint() -> None:
    # The gem's CRC32 of id + name is linear: that is why "ruby" mode exists only for interop.
    assert not set(GOLDEN["randomized"]["chat"]) & set(GOLDEN["randomized"]["beta"])
    with Rollout(randomize_percentage="ruby", clock=FakeClock()) as flags:
        flags.activate_percentage("chat", 20)
        flags.activate_percentage("beta", 20)
        assert not set(let_in(flags, "chat")) & set(let_in(flags, "beta"))


def test_randomize_true_draws_independent_users_per_flag() -> None:
    with Rollout(randomize_percentage=True, clock=FakeClock()) as flags:
        flags.activate_percentage("chat", 20)
        flags.activate_percentage("beta", 20)
        chat, beta = set(let_in(flags, "chat")), set(let_in(flags, "beta"))
        for users in (chat, beta):
            assert 0.16 <= len(users) / len(IDS) <= 0.24
        assert 0.02 <= len(chat & beta) / len(IDS) <= 0.065
        assert chat != set(GOLDEN["randomized"]["chat"])
        assert chat != set(BUCKETING["20"])
        # Still deterministic: the same users on every check and in every process.
        assert set(let_in(flags, "chat")) == chat
        with Rollout(randomize_percentage=True, clock=FakeClock()) as elsewhere:
            elsewhere.activate_percentage("chat", 20)
            assert set(let_in(elsewhere, "chat")) == chat


@pytest.mark.parametrize("randomize", [False, True, "ruby"])
def test_raising_a_percentage_keeps_the_users_already_in(randomize: Any) -> None:
    with Rollout(randomize_percentage=randomize, clock=FakeClock()) as flags:
        flags.activate_percentage("chat", 20)
        twenty = set(let_in(flags, "chat"))
        flags.activate_percentage("chat", 50)
        assert twenty < set(let_in(flags, "chat"))
        flags.activate_percentage("chat", 100)
        assert let_in(flags, "chat") == list(IDS)


# Gem behaviours -------------------------------------------------------------------------------


@pytest.mark.parametrize("pct", [0, 0.1, 20, 99, 99.9])
def test_without_a_user_a_flag_is_on_only_at_100_percent(flags: Rollout, pct: float) -> None:
    flags.activate_percentage("chat", pct)
    assert flags.active("chat") is False
    flags.activate_percentage("chat", 100)
    assert flags.active("chat") is True


def test_groups_given_as_strings(flags: Rollout) -> None:
    flags.define_group("caretakers", lambda user: user.id in (1, 2))
    flags.activate_group("chat", "caretakers")
    assert flags.active("chat", User(1)) is True
    assert flags.active("chat", User(3)) is False
    assert flags.get("chat").groups == {"caretakers"}


def test_the_all_group(flags: Rollout) -> None:
    flags.activate_group("chat", "all")
    assert let_in(flags, "chat") == list(IDS)
    assert flags.active("chat", User(5)) is True


def test_deactivate_turns_off_groups_users_and_percentage(flags: Rollout) -> None:
    flags.define_group("fivers", lambda user: user == 5)
    flags.activate_group("chat", "fivers")
    flags.activate_group("chat", "all")
    flags.activate_user("chat", User(42))
    flags.activate_percentage("chat", 20)
    flags.deactivate("chat")
    assert let_in(flags, "chat") == []
    assert flags.active("chat", User(42)) is False
    feature = flags.get("chat")
    assert (feature.percentage, feature.users, feature.groups) == (0.0, frozenset(), frozenset())


def test_delete_removes_the_flag_from_features(flags: Rollout) -> None:
    flags.activate("chat")
    flags.activate("signup")
    flags.delete("chat")
    assert flags.features() == ["signup"]


def test_activating_twice_lists_the_flag_once(flags: Rollout) -> None:
    flags.activate("chat")
    flags.activate("chat")
    flags.activate_user("chat", 1)
    assert flags.features() == ["chat"]


def test_42_and_the_string_42_are_one_user(flags: Rollout) -> None:
    flags.activate_user("chat", 42)
    flags.activate_user("chat", "42")
    flags.activate_user("chat", User(42))
    assert flags.get("chat").users == {"42"}
    assert flags.active("chat", "42") is True
    flags.deactivate_user("chat", "42")
    assert flags.active("chat", 42) is False


# Replaying the gem's recorded calls -----------------------------------------------------------

_TOKEN = re.compile(
    r"\s*(?:"
    r"(?P<symbol>:\w+)"
    r"|(?P<key>\w+):\s"
    r"|User\((?P<user>\d+)\)"
    r"|(?P<number>-?\d+(?:\.\d+)?)"
    r"|'(?P<string>[^']*)'"
    r"|(?P<punct>[\[\],])"
    r")"
)


def _tokens(text: str) -> list[tuple[str, str]]:
    tokens: list[tuple[str, str]] = []
    position, text = 0, text.rstrip()
    while position < len(text):
        match = _TOKEN.match(text, position)
        if match is None or match.lastgroup is None:
            raise ValueError(f"cannot read the Ruby arguments at {text[position:]!r}")
        tokens.append((match.lastgroup, match.group(match.lastgroup)))
        position = match.end()
    return tokens


def _value(tokens: list[tuple[str, str]], i: int) -> tuple[object, int]:
    kind, text = tokens[i]
    if kind == "symbol":
        return text[1:], i + 1
    if kind == "string":
        return text, i + 1
    if kind == "number":
        return (float(text) if "." in text else int(text)), i + 1
    if kind == "user":
        return User(int(text)), i + 1
    if text == "[":
        items: list[object] = []
        i += 1
        while tokens[i][1] != "]":
            item, i = _value(tokens, i)
            items.append(item)
            if tokens[i][1] == ",":
                i += 1
        return items, i + 1
    raise ValueError(f"unexpected Ruby token {text!r}")


def parse_ruby_call(call: str) -> tuple[str, list[object]]:
    """Read one recorded Ruby call into a method name and Python arguments.

    ``activate_users(:chat, [7, 'user-9'])`` gives ``("activate_users", ["chat", [7, "user-9"]])``.

    Ruby keyword arguments (``set_feature_data(:chat, description: 'x')``) become one mapping,
    which is how this library takes feature data.
    """
    match = re.fullmatch(r"(\w+)\((.*)\)", call.strip())
    if match is None:
        raise ValueError(f"not a Ruby call: {call!r}")
    method, inner = match.groups()
    tokens = _tokens(inner)
    args: list[object] = []
    keywords: dict[str, object] = {}
    i = 0
    while i < len(tokens):
        kind, text = tokens[i]
        if kind == "key":
            keywords[text], i = _value(tokens, i + 1)
        else:
            value, i = _value(tokens, i)
            args.append(value)
        if i < len(tokens):
            assert tokens[i][1] == ",", call
            i += 1
    if keywords:
        args.append(keywords)
    return method, args


def test_the_ruby_call_reader() -> None:
    assert parse_ruby_call("activate_percentage(:chat, 20)") == (
        "activate_percentage",
        ["chat", 20],
    )
    assert parse_ruby_call("activate_percentage(:beta, 0.5)") == (
        "activate_percentage",
        ["beta", 0.5],
    )
    assert parse_ruby_call("activate_user(:chat, User(42))") == (
        "activate_user",
        ["chat", User(42)],
    )
    assert parse_ruby_call("activate_users(:chat, [7, 'user-9'])") == (
        "activate_users",
        ["chat", [7, "user-9"]],
    )
    assert parse_ruby_call("set_feature_data(:chat, description: 'Chat v2', owner: 'a|b')") == (
        "set_feature_data",
        ["chat", {"description": "Chat v2", "owner": "a|b"}],
    )
    assert parse_ruby_call("delete(:beta)") == ("delete", ["beta"])


@dataclass(frozen=True)
class RubyRecord:
    """One ``feature:<name>`` value as the gem stores it: ``percentage|users|groups|json-data``."""

    percentage: float
    users: frozenset[str]
    groups: frozenset[str]
    data: dict[str, Any]

    @classmethod
    def parse(cls, text: str) -> RubyRecord:
        # The data is JSON and may itself contain "|", so split off the first three fields only.
        percentage, users, groups, data = text.split("|", 3)
        return cls(
            percentage=float(percentage) if percentage else 0.0,
            users=frozenset(u for u in users.split(",") if u),
            groups=frozenset(g for g in groups.split(",") if g),
            data=json.loads(data) if data else {},
        )


def test_the_ruby_record_reader() -> None:
    record = RubyRecord.parse('20.0|42,7,user-9|caretakers|{"description":"Chat v2","owner":"a|b"}')
    assert record == RubyRecord(
        20.0,
        frozenset({"42", "7", "user-9"}),
        frozenset({"caretakers"}),
        {"description": "Chat v2", "owner": "a|b"},
    )
    assert RubyRecord.parse("0|||{}") == RubyRecord(0.0, frozenset(), frozenset(), {})


def test_replaying_the_recorded_calls_gives_the_same_state_as_the_gem(flags: Rollout) -> None:
    flags.define_group("caretakers", lambda user: False)
    for step, record in enumerate(GOLDEN["records"]):
        call: str = record["after"]
        keys: dict[str, str] = record["keys"]
        method, args = parse_ruby_call(call)
        getattr(flags, method)(*args)

        where = f"step {step}, after {call}"
        listed = keys.get("feature:__features__", "")
        expected_names = {name for name in listed.split(",") if name}
        assert set(flags.features()) == expected_names, where
        stored = {key.removeprefix("feature:") for key in keys if key != "feature:__features__"}
        for name in stored | expected_names:
            ruby = RubyRecord.parse(keys.get(f"feature:{name}", ""))
            feature = flags.get(name)
            assert feature.percentage == ruby.percentage, f"{where}: {name} percentage"
            assert feature.users == ruby.users, f"{where}: {name} users"
            assert feature.groups == ruby.groups, f"{where}: {name} groups"
            assert dict(feature.data) == ruby.data, f"{where}: {name} data"
            assert feature.percentage_of_time == 0.0
            assert feature.excluded_users == frozenset()
        for name in flags.features():
            # Where the golden buckets say who a percentage lets in, the answers agree too.
            ruby = RubyRecord.parse(keys[f"feature:{name}"])
            assert flags.active(name) is (ruby.percentage == 100.0), f"{where}: {name}"
            bucket = {"0.0": [], "100.0": list(IDS)}.get(str(ruby.percentage))
            if bucket is None and f"{ruby.percentage:g}" in BUCKETING:
                bucket = BUCKETING[f"{ruby.percentage:g}"]
            if bucket is None:
                continue
            for user in (1, 2, 6, 7, 42, 1999):
                expected = str(user) in ruby.users or user in bucket
                assert flags.active(name, user) is expected, f"{where}: {name} for {user}"
