"""The JSON shapes of a flag (full, summary) and of a check, and what history says of a flag."""

from __future__ import annotations

import datetime
import json

from rollout import Rollout
from rollout._core.feature import Feature
from rollout._core.shapes import check_shape, flag_shape, summary_shape, usage_from_history
from rollout.testing import FakeClock

HOUR_MS = 3_600_000


def at(clock_ms: int) -> str:
    moment = datetime.datetime.fromtimestamp(clock_ms / 1000, datetime.UTC)
    return moment.isoformat(timespec="milliseconds").replace("+00:00", "Z")


def test_the_summary_counts_what_the_full_shape_lists() -> None:
    feature = Feature(
        "chat",
        percentage=20,
        users=frozenset({"1", "2", "3"}),
        excluded_users=frozenset({"x"}),
        groups=frozenset({"admins"}),
        data={"description": "Chat", "owner": "web"},
    )
    full, summary = flag_shape(feature), summary_shape(feature)
    assert full["flag"] == summary["flag"] == "chat"
    assert "name" not in full
    assert "name" not in summary
    assert full["users"] == ["1", "2", "3"]
    assert "users" not in summary
    assert full["counts"] == summary["counts"] == {"users": 3, "excluded_users": 1, "groups": 1}
    assert (summary["data_keys"], summary["description"]) == (["description", "owner"], "Chat")
    assert full["state"] == summary["state"] == "partial"
    assert json.loads(json.dumps(full)) == full  # plain JSON


def test_a_flag_with_a_definition_shows_it_and_an_on_off_flag_is_unchanged() -> None:
    rule = {"if": [{"var": "pro"}, "wide", None]}
    feature = Feature(
        "layout",
        variants={"wide": {"columns": 3}, "narrow": {"columns": 1}},
        default_variant="narrow",
        targeting=rule,
        enabled=False,
    )
    full, summary = flag_shape(feature), summary_shape(feature)
    assert full["variants"] == {"wide": {"columns": 3}, "narrow": {"columns": 1}}
    assert (full["default_variant"], full["targeting"], full["enabled"]) == ("narrow", rule, False)
    assert summary["variants"] == ["wide", "narrow"]
    assert (summary["default_variant"], summary["has_targeting"]) == ("narrow", True)
    assert summary["enabled"] is False
    assert json.loads(json.dumps(full)) == full
    plain = Feature("chat", percentage=20)
    for shape in (flag_shape(plain), summary_shape(plain)):
        assert not {"variants", "default_variant", "targeting", "enabled"} & set(shape)


def test_a_check_carries_the_state_of_its_flag() -> None:
    partial = Feature("chat", percentage=50)
    assert check_shape("chat", "1", False, partial) == {
        "flag": "chat",
        "user": "1",
        "active": False,
        "state": "partial",
    }


def test_on_since_is_the_newest_change_that_could_have_turned_it_on() -> None:
    clock = FakeClock()
    start = clock.now_ms
    with Rollout(clock=clock) as flags, flags.with_context(user="bob"):
        flags.activate_percentage("f", 50)
        clock.advance(HOUR_MS)
        flags.activate("f")  # on for everybody from here
        clock.advance(HOUR_MS)
        flags.activate_users("f", ["42"])  # changes nothing of "on"
        clock.advance(HOUR_MS)
        flags.set_feature_data("f", {"owner": "web"})
        usage = usage_from_history(flags.get("f"), flags.history("f"))
        shown = flag_shape(flags.get("f"), usage)
        assert (shown["on_since"], shown["last_changed"], shown["last_changed_by"]) == (
            at(start + HOUR_MS),
            at(start + 3 * HOUR_MS),
            "bob",
        )
        clock.advance(HOUR_MS)
        flags.exclude_users("f", ["7"])  # partial now: not on for everybody, no on_since
        assert usage_from_history(flags.get("f"), flags.history("f")).on_since is None


def test_without_history_nothing_is_known() -> None:
    shown = summary_shape(Feature("f"), usage_from_history(Feature("f"), []))
    usage = {k: shown[k] for k in ("last_changed", "last_changed_by", "on_since")}
    assert usage == {"last_changed": None, "last_changed_by": None, "on_since": None}
    assert (shown["last_checked"], shown["checks"]) == (None, None)
