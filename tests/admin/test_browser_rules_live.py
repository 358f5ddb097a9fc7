"""Named rules changed elsewhere (the HTTP API, the library in the serving process) reach open
pages in a real browser without a reload: the Rules page's editors, count and sections, and a
flag page's segments."""

from __future__ import annotations

import json
from collections.abc import Iterator

import pytest
from playwright.sync_api import Browser, expect

from .browser_helpers import Dashboard, dashboard, launch_chromium, not_reloaded

PRO = {"in": [{"var": "plan"}, ["pro", "enterprise"]]}
WIDER = {"in": [{"var": "plan"}, ["pro", "enterprise", "team"]]}


@pytest.fixture(scope="module")
def browser() -> Iterator[Browser]:
    yield from launch_chromium()


@pytest.fixture
def board() -> Iterator[Dashboard]:
    with dashboard() as served:
        with served.flags.with_context(user="bob"):
            served.flags.define_rule("pro", PRO)
        yield served


def test_the_rules_page_follows_rules_changed_through_the_api(
    browser: Browser, board: Dashboard
) -> None:
    page = board.open(browser, "/rules")
    pro = page.get_by_label("Rule pro")
    expect(pro).to_have_value(json.dumps(PRO, indent=2))
    expect(page.locator("#count")).to_have_text("1")

    # No flag uses either rule: only the rules' own event can tell the page.
    assert board.api.put("/rules/pro", json={"logic": WIDER}).status_code == 200
    expect(pro).to_have_value(json.dumps(WIDER, indent=2))

    beta = {"==": [{"var": "beta"}, True]}
    assert board.api.put("/rules/beta", json={"logic": beta}).status_code == 200
    expect(page.get_by_label("Rule beta")).to_have_value(json.dumps(beta, indent=2))
    expect(page.locator("#count")).to_have_text("2")

    assert board.api.delete("/rules/beta").status_code == 200
    expect(page.locator('[data-rule="beta"]')).to_have_count(0)
    expect(page.locator("#count")).to_have_text("1")
    assert not_reloaded(page)


def test_a_rule_being_edited_is_not_overwritten_by_a_change_elsewhere(
    browser: Browser, board: Dashboard
) -> None:
    page = board.open(browser, "/rules")
    pro = page.get_by_label("Rule pro")
    typed = '{"==": [{"var": "plan"}, "mine"]}'
    pro.fill(typed)
    board.flags.define_rule("other", {"==": [1, 1]})  # a change the page hears of
    expect(page.get_by_label("Rule other")).to_be_visible()
    expect(pro).to_have_value(typed)
    assert not_reloaded(page)


def test_a_flag_page_follows_segments_defined_and_removed_elsewhere(
    browser: Browser, board: Dashboard
) -> None:
    page = board.open(browser, "/flags/chat")
    beta = page.locator("label.check", has=page.locator('input[data-group="beta"]'))
    expect(beta).to_have_count(0)

    assert board.api.put("/rules/beta", json={"logic": {"==": [1, 1]}}).status_code == 200
    expect(beta).to_contain_text("segment")
    expect(beta.locator("input")).not_to_be_checked()
    expect(page.locator('#known-groups option[value="beta"]')).to_have_count(1)

    pro = page.locator("label.check", has=page.locator('input[data-group="pro"]'))
    expect(pro).to_contain_text("segment")
    assert board.api.delete("/rules/pro").status_code == 200
    expect(pro.locator(".segment")).to_have_count(0)
    assert not_reloaded(page)


def test_a_flag_page_redraws_when_its_segment_rule_changes(
    browser: Browser, board: Dashboard
) -> None:
    board.flags.activate_group("chat", "pro")
    page = board.open(browser, "/flags/chat")
    with page.expect_request(lambda request: "fragment=flag" in request.url):
        assert board.api.put("/rules/pro", json={"logic": WIDER}).status_code == 200
    assert not_reloaded(page)
