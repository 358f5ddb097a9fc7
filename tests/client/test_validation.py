"""Bad input: a clear TypeError/ValueError naming the argument and the value, and nothing written.

"Nothing written" is checked the way a user can see it: ``export()`` is byte-identical before
and after, the flag reads the same, and no subscriber is called.
"""

from __future__ import annotations

import json
import math
from collections.abc import Callable, Iterator
from dataclasses import dataclass
from enum import Enum
from typing import Any

import pytest

from rollout import FormatError, Rollout, RolloutError
from rollout.testing import FakeClock


@dataclass(frozen=True)
class User:
    id: object


class NoId:
    def __repr__(self) -> str:
        return "NoId()"


class NumberFlag(Enum):
    ONE = 1


@dataclass
class Populated:
    flags: Rollout
    calls: list[set[str]]


@pytest.fixture
def populated(clock: FakeClock) -> Iterator[Populated]:
    """A Rollout with some state and a subscriber that records every notification."""
    flags = Rollout(clock=clock)
    flags.activate_percentage("chat", 20)
    flags.activate_percentage_of_time("timed", 5)
    flags.activate_users("chat", [1, "alice"])
    flags.exclude_user("chat", 3)
    flags.activate_group("chat", "admins")
    flags.set_feature_data("chat", {"owner": "web"})
    flags.activate("signup")
    calls: list[set[str]] = []
    flags.subscribe(calls.append)
    yield Populated(flags, calls)
    flags.close()


def assert_rejected(
    state: Populated,
    action: Callable[[Rollout], object],
    error: type[Exception],
    *fragments: str,
) -> str:
    """Run ``action``: it must raise ``error`` whose message contains every fragment, and
    change nothing that can be seen. Returns the message."""
    flags = state.flags
    before = flags.export()
    features = flags.features()
    chat = flags.get("chat")
    with pytest.raises(error) as info:
        action(flags)
    message = str(info.value)
    for fragment in fragments:
        assert fragment in message, f"{fragment!r} not in {message!r}"
    assert flags.export() == before
    assert flags.features() == features
    assert flags.get("chat") == chat
    assert state.calls == []
    return message


# Flag names -----------------------------------------------------------------------------------

#: (bad name, error, what the message must show of it)
BAD_NAMES: list[tuple[object, type[Exception], str]] = [
    ("", ValueError, "''"),
    ("a\nb", ValueError, repr("a\nb")),
    ("a\x00b", ValueError, repr("a\x00b")),
    ("tab\there", ValueError, repr("tab\there")),
    ("del\x7f", ValueError, repr("del\x7f")),
    ("c1\x85", ValueError, repr("c1\x85")),
    (None, TypeError, "None"),
    (42, TypeError, "42"),
    (4.2, TypeError, "4.2"),
    (b"chat", TypeError, "b'chat'"),
    (True, TypeError, "True"),
    (NumberFlag.ONE, TypeError, "1"),  # its value (1) or the member itself
    # The naming rule beyond control characters (one rule for flags, groups and data keys):
    (" chat", ValueError, "whitespace"),
    ("chat\u3000", ValueError, "whitespace"),
    (".", ValueError, "'.' or '..'"),
    ("..", ValueError, "'.' or '..'"),
    ("x\ud800", ValueError, "lone surrogate"),
    ("\udcff", ValueError, "lone surrogate"),  # a byte not UTF-8, through surrogateescape
]

NAME_USES: dict[str, Callable[[Rollout, Any], object]] = {
    "activate": lambda r, n: r.activate(n),
    "deactivate": lambda r, n: r.deactivate(n),
    "set": lambda r, n: r.set(n, True),
    "delete": lambda r, n: r.delete(n),
    "activate_user": lambda r, n: r.activate_user(n, 1),
    "deactivate_user": lambda r, n: r.deactivate_user(n, 1),
    "activate_users": lambda r, n: r.activate_users(n, [1, 2]),
    "deactivate_users": lambda r, n: r.deactivate_users(n, [1]),
    "set_users": lambda r, n: r.set_users(n, [1]),
    "exclude_user": lambda r, n: r.exclude_user(n, 1),
    "include_user": lambda r, n: r.include_user(n, 1),
    "activate_group": lambda r, n: r.activate_group(n, "all"),
    "deactivate_group": lambda r, n: r.deactivate_group(n, "all"),
    "activate_percentage": lambda r, n: r.activate_percentage(n, 10),
    "deactivate_percentage": lambda r, n: r.deactivate_percentage(n),
    "activate_percentage_of_time": lambda r, n: r.activate_percentage_of_time(n, 10),
    "deactivate_percentage_of_time": lambda r, n: r.deactivate_percentage_of_time(n),
    "set_feature_data": lambda r, n: r.set_feature_data(n, {"k": 1}),
    "clear_feature_data": lambda r, n: r.clear_feature_data(n),
    "set_default": lambda r, n: r.set_default(n, True),
    "active": lambda r, n: r.active(n),
    "active with user": lambda r, n: r.active(n, 1),
    "inactive": lambda r, n: r.inactive(n),
    "user_in_active_users": lambda r, n: r.user_in_active_users(n, 1),
    "get": lambda r, n: r.get(n),
    "multi_get": lambda r, n: r.multi_get("chat", n),
    "exists": lambda r, n: r.exists(n),
}


@pytest.mark.parametrize("use", NAME_USES.values(), ids=NAME_USES.keys())
@pytest.mark.parametrize(
    ("name", "error", "shown"), BAD_NAMES, ids=[repr(name) for name, _, _ in BAD_NAMES]
)
def test_a_bad_flag_name_is_refused_by_every_method(
    populated: Populated,
    use: Callable[[Rollout, Any], object],
    name: object,
    error: type,
    shown: str,
) -> None:
    assert_rejected(populated, lambda r: use(r, name), error, "name", shown)


@pytest.mark.parametrize("use", NAME_USES.values(), ids=NAME_USES.keys())
def test_a_flag_name_longer_than_255_characters_is_refused(
    populated: Populated, use: Callable[[Rollout, Any], object]
) -> None:
    assert_rejected(populated, lambda r: use(r, "x" * 256), ValueError, "name", "255", "xxxx")


def test_a_flag_name_of_255_characters_is_fine(populated: Populated) -> None:
    populated.flags.activate("x" * 255)
    assert "x" * 255 in populated.flags.features()


@pytest.mark.parametrize("name", [["chat"], {"chat": 1}, {"chat"}], ids=repr)
def test_an_unhashable_flag_name_gets_a_clear_message_from_checks(
    populated: Populated, name: Any
) -> None:
    for check in (lambda r: r.active(name), lambda r: r.active(name, 1), lambda r: r.exists(name)):
        assert_rejected(populated, check, TypeError, "name", repr(name))


# Percentages ----------------------------------------------------------------------------------

BAD_PERCENTAGES: list[tuple[object, type[Exception]]] = [
    (-1, ValueError),
    (-0.001, ValueError),
    (100.001, ValueError),
    (150, ValueError),
    (math.nan, ValueError),
    (math.inf, ValueError),
    (-math.inf, ValueError),
    (True, TypeError),
    (False, TypeError),
    ("50", TypeError),
    (None, TypeError),
    ([50], TypeError),
]


@pytest.mark.parametrize(
    ("pct", "error"), BAD_PERCENTAGES, ids=[repr(p) for p, _ in BAD_PERCENTAGES]
)
def test_a_bad_percentage_is_refused(populated: Populated, pct: Any, error: type) -> None:
    assert_rejected(
        populated, lambda r: r.activate_percentage("chat", pct), error, "percentage", repr(pct)
    )
    assert_rejected(
        populated,
        lambda r: r.activate_percentage_of_time("chat", pct),
        error,
        "percentage",
        repr(pct),
    )
    assert_rejected(populated, lambda r: r.activate_percentage("new", pct), error, repr(pct))


@pytest.mark.parametrize(
    ("pct", "error"), BAD_PERCENTAGES[:7], ids=[repr(p) for p, _ in BAD_PERCENTAGES[:7]]
)
def test_a_bad_default_percentage_is_refused(populated: Populated, pct: Any, error: type) -> None:
    assert_rejected(populated, lambda r: r.set_default("chat", pct), error, "value", repr(pct))
    assert populated.flags.exists("new") is False


@pytest.mark.parametrize("value", ["on", None, [1]], ids=repr)
def test_a_default_that_is_not_a_bool_or_number_is_refused(
    populated: Populated, value: Any
) -> None:
    assert_rejected(populated, lambda r: r.set_default("new", value), TypeError, repr(value))
    assert populated.flags.exists("new") is False


@pytest.mark.parametrize("pct", [0, 0.0, 0.001, 50, 99.999, 100, 100.0])
def test_boundary_percentages_are_accepted(populated: Populated, pct: float) -> None:
    populated.flags.activate_percentage("chat", pct)
    populated.flags.activate_percentage_of_time("chat", pct)
    assert populated.flags.get("chat").percentage == pct
    assert populated.flags.get("chat").percentage_of_time == pct


# Users ----------------------------------------------------------------------------------------

BAD_USERS: list[object] = [None, True, False, NoId(), User(None), User(True), User(4.2), 4.2, b"7"]

USER_USES: dict[str, Callable[[Rollout, Any], object]] = {
    "activate_user": lambda r, u: r.activate_user("chat", u),
    "deactivate_user": lambda r, u: r.deactivate_user("chat", u),
    "exclude_user": lambda r, u: r.exclude_user("chat", u),
    "include_user": lambda r, u: r.include_user("chat", u),
    "activate_user on a new flag": lambda r, u: r.activate_user("new", u),
    "user_in_active_users": lambda r, u: r.user_in_active_users("chat", u),
}


@pytest.mark.parametrize("use", USER_USES.values(), ids=USER_USES.keys())
@pytest.mark.parametrize("user", BAD_USERS, ids=repr)
def test_a_bad_user_is_refused(
    populated: Populated, use: Callable[[Rollout, Any], object], user: object
) -> None:
    assert_rejected(populated, lambda r: use(r, user), TypeError, "user", repr(user))


LIST_USES: dict[str, Callable[[Rollout, Any], object]] = {
    "activate_users": lambda r, us: r.activate_users("chat", us),
    "deactivate_users": lambda r, us: r.deactivate_users("chat", us),
    "set_users": lambda r, us: r.set_users("chat", us),
    "activate_users on a new flag": lambda r, us: r.activate_users("new", us),
}


@pytest.mark.parametrize("use", LIST_USES.values(), ids=LIST_USES.keys())
@pytest.mark.parametrize("user", BAD_USERS, ids=repr)
def test_one_bad_user_in_a_list_writes_nothing_at_all(
    populated: Populated, use: Callable[[Rollout, Any], object], user: object
) -> None:
    assert_rejected(populated, lambda r: use(r, [7, 8, user, 9]), TypeError, "user", repr(user))
    assert_rejected(populated, lambda r: use(r, iter([7, user])), TypeError, repr(user))
    assert not populated.flags.active("chat", 7)


@pytest.mark.parametrize("use", LIST_USES.values(), ids=LIST_USES.keys())
@pytest.mark.parametrize("users", ["alice", b"alice", 42, None], ids=repr)
def test_users_must_be_an_iterable_of_users(
    populated: Populated, use: Callable[[Rollout, Any], object], users: object
) -> None:
    assert_rejected(populated, lambda r: use(r, users), TypeError, "users", repr(users))


@pytest.mark.parametrize("user", [True, NoId(), User(None), 4.2], ids=repr)
@pytest.mark.parametrize("name", ["chat", "signup", "unknown"])
def test_a_check_with_a_bad_user_raises(populated: Populated, name: str, user: object) -> None:
    assert_rejected(populated, lambda r: r.active(name, user), TypeError, "user", repr(user))
    assert_rejected(populated, lambda r: r.inactive(name, user), TypeError, "user")


@pytest.mark.parametrize("id_user_by", [42, "not an attribute", "", None], ids=repr)
def test_id_user_by_must_be_an_attribute_name_or_a_callable(id_user_by: Any) -> None:
    with pytest.raises(TypeError, match="id_user_by") as info:
        Rollout(id_user_by=id_user_by)
    assert repr(id_user_by) in str(info.value)


# Data -----------------------------------------------------------------------------------------


@pytest.mark.parametrize("data", [[("k", 1)], "k=1", None, 42, {"k"}], ids=repr)
def test_data_must_be_a_mapping(populated: Populated, data: Any) -> None:
    assert_rejected(populated, lambda r: r.set_feature_data("chat", data), TypeError, "data")


BAD_VALUES: list[object] = [{1, 2}, NoId(), math.nan, math.inf, -math.inf, [1, {2}], {"x": b"y"}]


@pytest.mark.parametrize("value", BAD_VALUES, ids=repr)
def test_data_values_must_be_json(populated: Populated, value: object) -> None:
    data = {"fine": 1, "bad": value, "also fine": "x"}
    message = assert_rejected(
        populated, lambda r: r.set_feature_data("chat", data), ValueError, "data", "bad"
    )
    assert repr(value) in message or type(value).__name__ in message
    assert_rejected(populated, lambda r: r.set_feature_data("new", data), ValueError, "data")
    assert dict(populated.flags.get("chat").data) == {"owner": "web"}


@pytest.mark.parametrize(("key", "error"), [(1, TypeError), (None, TypeError), ("", ValueError)])
def test_data_keys_must_be_non_empty_strings(
    populated: Populated, key: object, error: type
) -> None:
    data: Any = {"fine": 1, key: "v"}
    assert_rejected(populated, lambda r: r.set_feature_data("chat", data), error, "data", repr(key))


#: Deeper than MAX_DEPTH (32) and deeper than Python's recursion limit.
DEEP_33: Any = []
for _ in range(32):
    DEEP_33 = [DEEP_33]
DEEP_100K: Any = {}
for _ in range(100_000):
    DEEP_100K = {"k": DEEP_100K}


@pytest.mark.parametrize(
    ("data", "shown"),
    [
        ({"k": "x\ud800"}, "lone surrogate"),
        ({"k": ["ok", {"deep": "\udfff"}]}, "lone surrogate"),
        ({"k": {"inner\ud800": 1}}, "lone surrogate"),
        ({"x\ud800": 1}, "lone surrogate"),
        ({"k": DEEP_33}, "32 levels"),
        ({"k": DEEP_100K}, "32 levels"),
    ],
    ids=["value", "value at depth", "inner key", "key", "33 deep", "100,000 deep"],
)
def test_data_must_be_unicode_text_and_at_most_32_deep(
    populated: Populated, data: Any, shown: str
) -> None:
    assert_rejected(populated, lambda r: r.set_feature_data("chat", data), ValueError, shown)
    assert_rejected(populated, lambda r: r.replace_feature_data("chat", data), ValueError, shown)


def test_data_32_levels_deep_is_fine(populated: Populated) -> None:
    populated.flags.set_feature_data("chat", {"k": DEEP_33[0]})
    assert populated.flags.get("chat").data["k"] == DEEP_33[0]


SURROGATE_USES: dict[str, Callable[[Rollout], object]] = {
    "activate_user": lambda r: r.activate_user("chat", "u\ud800"),
    "activate_users": lambda r: r.activate_users("chat", ["fine", "u\ud800"]),
    "exclude_user": lambda r: r.exclude_user("chat", "u\ud800"),
    "user object id": lambda r: r.activate_user("chat", User("u\ud800")),
    "activate_group": lambda r: r.activate_group("chat", "g\ud800"),
    "with_context user": lambda r: r.with_context(user="a\ud800"),
    "with_context reason": lambda r: r.with_context(reason="why\ud800"),
}


@pytest.mark.parametrize("use", SURROGATE_USES.values(), ids=SURROGATE_USES.keys())
def test_text_that_is_not_unicode_is_refused_everywhere(
    populated: Populated, use: Callable[[Rollout], object]
) -> None:
    assert_rejected(populated, use, ValueError, "lone surrogate")
    # History, listing and export still work (they once failed forever after such a write).
    assert populated.flags.export()
    assert populated.flags.history("chat")


def test_node_name_must_be_unicode_text() -> None:
    with pytest.raises(ValueError, match="node_name"):
        Rollout(node_name="web\ud800")


# Other arguments ------------------------------------------------------------------------------


@pytest.mark.parametrize("on", ["yes", 1, 0, None], ids=repr)
def test_set_takes_only_a_bool(populated: Populated, on: Any) -> None:
    assert_rejected(populated, lambda r: r.set("chat", on), TypeError, "on", repr(on))


@pytest.mark.parametrize(("group", "error"), [("", ValueError), (None, TypeError), (7, TypeError)])
def test_a_bad_group_name_is_refused(populated: Populated, group: Any, error: type) -> None:
    assert_rejected(populated, lambda r: r.activate_group("chat", group), error, "group")
    assert_rejected(populated, lambda r: r.deactivate_group("chat", group), error, "group")


def test_the_all_group_cannot_be_redefined(populated: Populated) -> None:
    flags = populated.flags
    with pytest.raises(ValueError, match="'all'"):
        flags.define_group("all", lambda user: False)
    with pytest.raises(ValueError, match="'all'"):
        flags.define_group("all")
    assert flags.active_in_group("all", 1) is True
    flags.activate_group("everyone", "all")
    assert flags.active("everyone", 1) is True


@pytest.mark.parametrize(("name", "error"), [("", ValueError), (None, TypeError), (3, TypeError)])
def test_define_group_needs_a_name(populated: Populated, name: Any, error: type) -> None:
    with pytest.raises(error, match="name"):
        populated.flags.define_group(name, lambda user: True)


def test_define_group_needs_a_callable(populated: Populated) -> None:
    flags = populated.flags
    with pytest.raises(TypeError, match="predicate"):
        flags.define_group("admins", 42)  # type: ignore[call-overload]
    decorate: Any = flags.define_group("admins")
    with pytest.raises(TypeError, match="predicate"):
        decorate("not callable")
    assert flags.groups() == ["all"]
    assert flags.active_in_group("admins", 99) is False


def test_subscribe_needs_a_callable(populated: Populated) -> None:
    with pytest.raises(TypeError, match="callback"):
        populated.flags.subscribe(42)  # type: ignore[arg-type]


@pytest.mark.parametrize("randomize", ["yes", "Ruby", None, 0, 1, 1.0, "true"], ids=repr)
def test_randomize_percentage_must_be_false_true_or_ruby(randomize: Any) -> None:
    with pytest.raises((TypeError, ValueError), match="randomize_percentage") as info:
        Rollout(randomize_percentage=randomize)
    assert repr(randomize) in str(info.value)


@pytest.mark.parametrize(
    ("defaults", "error"),
    [({"": True}, ValueError), ({"x": "on"}, TypeError), ({"x": 150}, ValueError)],
    ids=["empty name", "text value", "150"],
)
def test_bad_defaults_are_refused(defaults: Any, error: type) -> None:
    with pytest.raises(error):
        Rollout(defaults=defaults)


def test_store_must_be_a_store_a_url_or_none() -> None:
    with pytest.raises(TypeError, match="store"):
        Rollout(42)  # type: ignore[arg-type]


# merge() --------------------------------------------------------------------------------------


def _valid_document(clock: FakeClock) -> dict[str, Any]:
    with Rollout(clock=clock) as source:
        source.activate_percentage("chat", 20)
        source.activate_user("chat", 5)
        source.set_feature_data("chat", {"k": [1, 2]})
        source.activate("fresh")
        document: dict[str, Any] = json.loads(source.export())
    return document


def _with(clock: FakeClock, change: Callable[[dict[str, Any]], object]) -> bytes:
    document = _valid_document(clock)
    change(document)
    return json.dumps(document).encode()


def _register(document: dict[str, Any], key: str, value: object) -> None:
    exists = document["flags"]["chat"]["exists"]
    document["flags"]["chat"][key] = [*exists[:3], value]


BLOBS: dict[str, Callable[[FakeClock], bytes]] = {
    "empty": lambda c: b"",
    "corrupt bytes": lambda c: b"\x80\x81\xfe\xff",
    "truncated": lambda c: _with(c, lambda d: None)[:-7],
    "not JSON": lambda c: b"hello, flags",
    "JSON list": lambda c: b"[1, 2, 3]",
    "JSON string": lambda c: b'"rollout"',
    "no format": lambda c: _with(c, lambda d: d.pop("format")),
    "wrong format": lambda c: _with(c, lambda d: d.update(format="flipper")),
    "version 2": lambda c: _with(c, lambda d: d.update(version=2)),
    "version as text": lambda c: _with(c, lambda d: d.update(version="1")),
    "no version": lambda c: _with(c, lambda d: d.pop("version")),
    "flags not an object": lambda c: _with(c, lambda d: d.update(flags=[1])),
    "no flags": lambda c: _with(c, lambda d: d.pop("flags")),
    "flag not an object": lambda c: _with(c, lambda d: d["flags"].update(chat=[1])),
    "unknown register key": lambda c: _with(c, lambda d: _register(d, "colour", "red")),
    "bare user prefix": lambda c: _with(c, lambda d: _register(d, "user:", True)),
    "percentage 150": lambda c: _with(c, lambda d: _register(d, "percentage", 150)),
    "percentage -1": lambda c: _with(c, lambda d: _register(d, "percentage", -1)),
    "percentage as text": lambda c: _with(c, lambda d: _register(d, "percentage", "50")),
    "percentage true": lambda c: _with(c, lambda d: _register(d, "percentage", True)),
    "percentage NaN": lambda c: _with(c, lambda d: _register(d, "percentage", math.nan)),
    "time percentage 101": lambda c: _with(c, lambda d: _register(d, "percentage_of_time", 101)),
    "user not a bool": lambda c: _with(c, lambda d: _register(d, "user:9", "yes")),
    "exists not a bool": lambda c: _with(c, lambda d: _register(d, "exists", 1)),
    "data NaN": lambda c: _with(c, lambda d: _register(d, "data:x", math.nan)),
    "data Infinity": lambda c: _with(c, lambda d: _register(d, "data:x", [math.inf])),
    "short register": lambda c: _with(c, lambda d: d["flags"]["chat"].update(exists=[1, 2])),
    "negative timestamp": lambda c: _with(
        c, lambda d: d["flags"]["chat"].update(exists=[-1, 0, 1, True])
    ),
    "float timestamp": lambda c: _with(
        c, lambda d: d["flags"]["chat"].update(exists=[1.5, 0, 1, True])
    ),
    # A listed user's register is decoded on a path of its own (a flag may list a million):
    # it refuses what the general path refuses.
    "negative timestamp on a user": lambda c: _with(
        c, lambda d: d["flags"]["chat"].update({"user:9": [-1, 0, 1, True]})
    ),
    "boolean timestamp on a user": lambda c: _with(
        c, lambda d: d["flags"]["chat"].update({"user:9": [True, 0, 1, True]})
    ),
    "timestamp past int64 on a user": lambda c: _with(
        c, lambda d: d["flags"]["chat"].update({"user:9": [1, 0, 2**63, True]})
    ),
    "a user of the rules entity": lambda c: _with(
        c, lambda d: d["flags"].update({" rules": {"user:9": [1, 0, 1, True]}})
    ),
    "empty flag name": lambda c: _with(c, lambda d: d["flags"].update({"": d["flags"]["chat"]})),
    "control char name": lambda c: _with(
        c, lambda d: d["flags"].update({"a\nb": d["flags"]["chat"]})
    ),
    "lone surrogate in a data value": lambda c: _with(
        c, lambda d: _register(d, "data:x", {"k": "x\ud800"})
    ),
    "lone surrogate in a user id": lambda c: _with(c, lambda d: _register(d, "user:\ud800", True)),
    "lone surrogate in a flag name": lambda c: _with(
        c, lambda d: d["flags"].update({"x\ud800": d["flags"]["chat"]})
    ),
    "a flag name the rule refuses": lambda c: _with(
        c, lambda d: d["flags"].update({"chat ": d["flags"]["chat"]})
    ),
    "data nested 33 deep": lambda c: _with(c, lambda d: _register(d, "data:x", DEEP_33)),
    "nested deeper than the parser": lambda c: (
        b'{"format":"rollout","version":1,"flags":' + b"[" * 100_000 + b"]" * 100_000 + b"}"
    ),
    "history reason not text": lambda c: _with(
        c,
        lambda d: d["flags"]["chat"].update(
            {
                key: [*value[:3], {**value[3], "reason": "r\ud800"}]
                for key, value in d["flags"]["chat"].items()
                if key.startswith("history:")
            }
        ),
    ),
    "one good flag, one bad": lambda c: _with(
        c,
        lambda d: d["flags"].update(
            {"aaa": d["flags"]["fresh"], "zzz": {"percentage": [1, 0, 1, 150]}}
        ),
    ),
}


@pytest.mark.parametrize("make_blob", BLOBS.values(), ids=BLOBS.keys())
def test_merge_refuses_a_bad_blob_and_changes_nothing(
    populated: Populated, clock: FakeClock, make_blob: Callable[[FakeClock], bytes]
) -> None:
    blob = make_blob(clock)
    before_stats = populated.flags.stats()
    assert_rejected(populated, lambda r: r.merge(blob), FormatError)
    assert populated.flags.exists("fresh") is False
    assert populated.flags.exists("aaa") is False
    after_stats = populated.flags.stats()
    assert after_stats["merges"] == before_stats["merges"]


def test_format_error_is_a_value_error_and_a_rollout_error(
    populated: Populated, clock: FakeClock
) -> None:
    with pytest.raises(ValueError, match="version") as info:
        populated.flags.merge(_with(clock, lambda d: d.update(version=2)))
    assert isinstance(info.value, FormatError)
    assert isinstance(info.value, RolloutError)


def test_the_valid_blob_the_bad_ones_are_made_from_merges(
    populated: Populated, clock: FakeClock
) -> None:
    changed = populated.flags.merge(_with(clock, lambda d: None))
    assert changed == {"chat", "fresh"}
    assert populated.flags.get("chat").users >= {"5"}


@pytest.mark.parametrize("data", ["text", None, 42, [1, 2]], ids=repr)
def test_merge_needs_bytes(populated: Populated, data: Any) -> None:
    assert_rejected(populated, lambda r: r.merge(data), TypeError, "data")
