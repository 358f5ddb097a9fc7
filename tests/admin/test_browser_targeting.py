"""Targeting as data in a real browser: a flag's variants and targeting rule shown and edited as
JSON (the server's refusal, naming the JSON path, shown under the editor), the "evaluate for
this context" preview, the Rules page, and named rules shown as segments among groups."""

from __future__ import annotations

import json
from collections.abc import Iterator
from dataclasses import dataclass

import pytest
from playwright.sync_api import Browser, Page, expect

from rollout.testing import eventually

from .browser_helpers import PATIENCE, Dashboard, dashboard, launch_chromium, not_reloaded

PRO = {"in": [{"var": "plan"}, ["pro", "enterprise"]]}


@dataclass
class User:
    id: str
    plan: str


@pytest.fixture(scope="module")
def browser() -> Iterator[Browser]:
    yield from launch_chromium()


@pytest.fixture
def board() -> Iterator[Dashboard]:
    with dashboard() as served:
        with served.flags.with_context(user="bob"):
            served.flags.define_rule("pro", PRO)
            served.flags.define_flag(
                "color",
                {"red": "#f00", "blue": "#00f"},
                default_variant="red",
                targeting={"if": [{"$ref": "pro"}, "blue", None]},
            )
        yield served


def _evaluate(page: Page, context: dict[str, object]) -> None:
    page.get_by_label("Evaluate for this context").fill(json.dumps(context))
    page.get_by_role("button", name="Evaluate").click()


def test_a_flag_with_variants_is_labelled_by_what_decides_it(
    browser: Browser, board: Dashboard
) -> None:
    # Not "off · nobody": its on/off state does not decide it, its variants and rule do.
    page = board.open(browser, "/")
    row = page.locator("tr", has=page.get_by_role("link", name="color", exact=True))
    expect(row.locator(".badge")).to_have_text("variants")
    expect(row.locator('[data-field="summary"]')).to_have_text(
        "variants red, blue · default red · targeting"
    )
    flag_page = board.open(browser, "/flags/color")
    badge = flag_page.locator(".flag-head .badge")
    expect(badge).to_have_text("variants")
    expect(flag_page.locator('[data-field="summary"]')).to_have_text(
        "variants red, blue · default red · targeting"
    )
    board.flags.disable_flag("color")  # elsewhere: both pages follow live
    expect(badge).to_have_text("disabled")
    expect(row.locator(".badge")).to_have_text("disabled")
    board.flags.set_targeting("color", None)
    expect(flag_page.locator('[data-field="summary"]')).to_have_text(
        "variants red, blue · default red"
    )


def test_a_definition_is_shown_edited_and_previewed(browser: Browser, board: Dashboard) -> None:
    page = board.open(browser, "/flags/color")
    panel = page.locator("#definition-panel")
    # What decides is said at the top: the rule and the default variant, not on/off.
    expect(page.locator('[data-field="definition-note"]')).to_be_visible()
    expect(panel.locator('[data-field="def-state"]')).to_have_text("ENABLED")
    expect(panel.locator('[data-field="def-default"]')).to_have_text("red")
    expect(panel.locator('[data-field="def-variants"] tr')).to_have_count(2)
    expect(panel.locator('[data-field="def-variants"]')).to_contain_text('"#00f"')
    expect(panel.locator('[data-field="def-targeting"]')).to_contain_text('"$ref": "pro"')

    # The preview: value, variant and reason for a context typed in.
    _evaluate(page, {"targetingKey": "42", "plan": "pro"})
    expect(page.locator('[data-field="eval-value"]')).to_have_text('"#00f"')
    expect(page.locator('[data-field="eval-variant"]')).to_have_text("blue")
    expect(page.locator('[data-field="eval-reason"]')).to_have_text("TARGETING_MATCH")
    _evaluate(page, {"targetingKey": "42", "plan": "free"})
    expect(page.locator('[data-field="eval-reason"]')).to_have_text("DEFAULT")
    expect(page.locator('[data-field="eval-variant"]')).to_have_text("red")

    # An edit the server refuses: its JSON path under the editor, nothing written.
    editor = page.get_by_label("Definition (flagd JSON")
    before = json.loads(editor.input_value())
    assert before["targeting"] == {"if": [{"$ref": "pro"}, "blue", None]}
    editor.fill(json.dumps({**before, "targeting": {"if": [{"==": [1]}, "blue", None]}}))
    page.get_by_role("button", name="Save definition").click()
    expect(page.locator("#definition-error")).to_contain_text("$.targeting.if[0]['==']")
    expect(editor).to_have_attribute("aria-invalid", "true")
    assert board.flags.get("color").targeting == before["targeting"]
    editor.fill("{not json")
    expect(page.locator("#definition-error")).to_contain_text("Not valid JSON")
    expect(page.get_by_role("button", name="Save definition")).to_be_disabled()

    # A good one: saved with the reason typed, shown, and the preview follows.
    page.get_by_label("Reason for your changes").fill("green for everybody")
    edited = {**before, "variants": {**before["variants"], "green": "#0f0"}}
    edited["defaultVariant"] = "green"
    edited["targeting"] = {}
    editor.fill(json.dumps(edited))
    page.get_by_role("button", name="Save definition").click()
    eventually(
        lambda: board.flags.get("color").default_variant == "green", PATIENCE, "default green"
    )
    expect(panel.locator('[data-field="def-default"]')).to_have_text("green")
    expect(panel.locator('[data-field="def-targeting"]')).to_have_text("none")
    expect(page.locator("#definition-error")).to_have_text("")
    event = board.flags.history("color")[0]
    assert (event.actor, event.reason) == ("alice", "green for everybody")
    _evaluate(page, {"targetingKey": "42", "plan": "pro"})
    expect(page.locator('[data-field="eval-variant"]')).to_have_text("green")
    expect(page.locator('[data-field="eval-reason"]')).to_have_text("STATIC")

    # A change made elsewhere reaches the panel and the editor (not being edited) live.
    with board.flags.with_context(user="bob"):
        board.flags.disable_flag("color")
    expect(panel.locator('[data-field="def-state"]')).to_have_text("DISABLED")
    disabled = {**edited, "state": "DISABLED"}
    eventually(lambda: json.loads(editor.input_value()) == disabled, PATIENCE, "editor follows")
    assert not_reloaded(page)


def test_an_on_off_flag_shows_no_variants_and_previews_on_and_off(
    browser: Browser, board: Dashboard
) -> None:
    page = board.open(browser, "/flags/signup")
    expect(page.locator('[data-field="no-variants"]')).to_be_visible()
    expect(page.locator('[data-field="definition-note"]')).to_be_hidden()
    expect(page.locator('[data-field="definition-shown"]')).to_be_hidden()
    _evaluate(page, {"targetingKey": "42"})
    expect(page.locator('[data-field="eval-value"]')).to_have_text("true")
    expect(page.locator('[data-field="eval-variant"]')).to_have_text("on")


def test_named_rules_are_edited_on_the_rules_page_and_shown_as_segments(
    browser: Browser, board: Dashboard
) -> None:
    page = board.open(browser, "/rules")
    pro = page.locator('[data-rule="pro"]')
    editor = pro.get_by_label("Rule pro")
    expect(editor).to_have_value(json.dumps(PRO, indent=2))

    editor.fill('{"in": [{"var": "plan"}]}')
    pro.get_by_role("button", name="Save rule").click()
    expect(pro.locator('[data-field="error"]')).to_contain_text("$.logic.in")
    assert board.flags.rules()["pro"] == PRO

    wider = {"in": [{"var": "plan"}, ["pro", "enterprise", "team"]]}
    editor.fill(json.dumps(wider))
    pro.get_by_role("button", name="Save rule").click()
    eventually(lambda: board.flags.rules()["pro"] == wider, PATIENCE, "the rule saved")
    expect(pro.locator('[data-field="error"]')).to_have_text("")

    page.get_by_label("Name", exact=True).fill("beta")
    page.get_by_label("Rule (JsonLogic)", exact=True).fill('{"==": [{"var": "beta"}, true]}')
    page.get_by_role("button", name="Define rule").click()
    expect(page.locator('[data-rule="beta"]')).to_be_visible()
    assert board.flags.rules()["beta"] == {"==": [{"var": "beta"}, True]}
    expect(page.locator("#count")).to_have_text("2")

    page.locator('[data-rule="beta"]').get_by_role("button", name="Remove…").click()
    page.locator("#confirm-ok").click()
    expect(page.locator('[data-rule="beta"]')).to_have_count(0)
    assert "beta" not in board.flags.rules()

    # On a flag's page, a named rule is a group like the others, marked as a segment.
    flag = board.open(browser, "/flags/chat")
    segment = flag.locator("label.check", has=flag.locator('input[data-group="pro"]'))
    expect(segment).to_contain_text("segment")
    segment.locator("input").check()
    eventually(lambda: "pro" in board.flags.get("chat").groups, PATIENCE, "group pro on chat")
    # User 5's bucket is above chat's 20%: the rule is what says yes, for a plan it names.
    why = board.flags.explain("chat", User("5", "team"))
    assert (why.active, why.group) == (True, "pro")
    assert board.flags.active("chat", User("5", "free")) is False
