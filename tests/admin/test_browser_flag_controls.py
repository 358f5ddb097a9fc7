"""A flag's page in a real browser, for what issue 13 added: a big flag's users a page at a
time (the page stays small), "check a user", the reason of a change (optional, or required by
the server), and a history that reads as sentences."""

from __future__ import annotations

from collections.abc import Iterator

import pytest
from playwright.sync_api import Browser, Page, Request, expect

from rollout.testing import eventually

from .browser_helpers import PATIENCE, Dashboard, dashboard, launch_chromium

#: What a flag page may weigh in all (HTML, scripts, styles, the live updates' first fetches),
#: whatever the number of users: the first page of them, not all of them.
MAX_PAGE_BYTES = 50_000
BIG = 100_000


@pytest.fixture(scope="module")
def browser() -> Iterator[Browser]:
    yield from launch_chromium()


@pytest.fixture
def board() -> Iterator[Dashboard]:
    with dashboard() as served:
        yield served


def history(page: Page) -> str:
    return page.locator("#history .history > li").first.inner_text()


def test_a_flag_with_100000_users_opens_small_and_pages_through_them(
    browser: Browser, board: Dashboard
) -> None:
    flags = board.flags
    with flags.with_context(user="bob"):
        flags.activate_users("big", [str(n) for n in range(1, BIG + 1)])
        flags.exclude_users("big", ["5"])
    page = board.open(browser, "/flags/big")
    requests: list[Request] = []
    page.on("requestfinished", lambda request: requests.append(request))  # noqa: PLW0108 (a bound method is refused)
    # Opened again, counting every byte that arrives: the page, its scripts and styles (nothing
    # changed since it was drawn, so the live updates fetch nothing again once connected).
    page.reload()
    expect(page.locator("#live")).to_have_attribute("data-live", "open")
    page.wait_for_timeout(500)  # room for a fetch that must not come
    assert not [r.url for r in requests if "fragment=" in r.url]
    received = sum(
        r.sizes()["responseBodySize"] + r.sizes()["responseHeadersSize"] for r in requests
    )
    assert 0 < received < MAX_PAGE_BYTES, received

    users = page.locator('[data-ids="users"]')
    chips = users.locator(".chips li")
    expect(users.locator('[data-field="count"]')).to_have_text("100,000")
    expect(page.locator('[data-field="summary"]')).to_contain_text("100,000 users")
    expect(chips).to_have_count(100)
    expect(chips.first).to_contain_text("1")  # numeric ids by value: 1, 2, ... 100
    expect(chips.nth(99)).to_contain_text("100")
    expect(users.locator('[data-field="shown"]')).to_have_text("Showing 100 of 100,000.")
    # Listed and excluded: the exclusion wins, and the page says so.
    expect(chips.nth(4)).to_contain_text("excluded: off")
    expect(chips.nth(3)).not_to_contain_text("excluded")

    users.get_by_role("button", name="Show more").click()
    expect(chips).to_have_count(200)
    expect(chips.nth(199)).to_contain_text("200")
    expect(users.locator('[data-field="shown"]')).to_have_text("Showing 200 of 100,000.")

    search = users.get_by_role("searchbox", name="Search users")
    search.fill("99999")
    expect(chips).to_have_count(1)
    expect(chips.first).to_contain_text("99999")
    expect(users.locator('[data-field="shown"]')).to_have_text("1 matching “99999”.")
    # Removed from a search result: gone, and the count follows.
    page.get_by_role("button", name="Remove user 99999", exact=True).click()
    expect(users.locator('[data-field="shown"]')).to_have_text("No ids match “99999”.")
    expect(users.locator('[data-field="count"]')).to_have_text("99,999")
    assert "99999" not in flags.get("big").users
    search.fill("")
    expect(chips).to_have_count(100)
    expect(page.locator('[data-field="partial"]')).to_contain_text("99,999 users")


def test_checking_a_user_says_on_or_off_and_why(browser: Browser, board: Dashboard) -> None:
    board.flags.exclude_user("chat", "13")
    page = board.open(browser, "/flags/chat")
    box = page.get_by_label("User id")
    result = page.locator("#check-result")
    box.fill("42")
    page.get_by_role("button", name="Check", exact=True).click()
    expect(result).to_have_text("On for user 42: user '42' is listed")
    box.fill("13")
    box.press("Enter")
    expect(result).to_have_text("Off for user 13: user '13' is excluded")
    expect(result).to_have_attribute("data-active", "false")


def test_a_reason_goes_with_each_change_and_the_history_reads_as_sentences(
    browser: Browser, board: Dashboard
) -> None:
    flags = board.flags
    page = board.open(browser, "/flags/chat")
    # Near the top, in words: bob's seeding, newest first.
    expect(page.locator("#history .action-title").first).to_have_text("changed data")
    expect(page.locator("#history")).to_contain_text("on for 20% of users")
    expect(page.locator("#history")).to_contain_text("added 2 users")
    history_box = page.locator("#h-history").bounding_box()
    percentages_box = page.locator("#h-rollout").bounding_box()
    assert history_box is not None
    assert percentages_box is not None
    assert history_box["y"] < percentages_box["y"]

    page.get_by_label("Reason for your changes (optional)").fill("JIRA-7: wider beta")
    exact = page.get_by_role("spinbutton", name="Percentage of time, exact")
    exact.fill("5")
    exact.press("Enter")
    eventually(lambda: flags.get("chat").percentage_of_time == 5, PATIENCE, "5% of the time")
    event = flags.history("chat")[0]
    assert (event.actor, event.reason) == ("alice", "JIRA-7: wider beta")
    expect(page.locator("#history .action-title").first).to_have_text("on for 5% of the time")
    expect(page.locator("#history .history-reason").first).to_have_text("Why: JIRA-7: wider beta")
    expect(page.locator('[data-field="time-badge"]')).to_have_text("5% of the time")
    expect(page.locator('[data-field="time-badge"]')).to_be_visible()


def test_a_server_that_requires_a_reason_refuses_a_change_without_one(browser: Browser) -> None:
    with dashboard(require_reason=True) as board:
        page = board.open(browser, "/flags/chat")
        reason = page.get_by_label("Reason for your changes")
        expect(reason).to_have_attribute("required", "")
        box = page.get_by_label("Add users")
        box.fill("77")
        box.press("Enter")
        expect(page.locator("#notice")).to_contain_text("reason is required")
        expect(reason).to_be_focused()
        assert "77" not in board.flags.get("chat").users
        reason.fill("support ticket 12")
        box.press("Enter")
        eventually(lambda: "77" in board.flags.get("chat").users, PATIENCE, "77 added")
        assert board.flags.history("chat")[0].reason == "support ticket 12"
        expect(box).to_have_value("")


def test_the_flag_page_on_a_phone(browser: Browser, board: Dashboard) -> None:
    page = board.open(
        browser, "/flags/chat", viewport={"width": 390, "height": 844}, is_mobile=True,
        has_touch=True,
    )  # fmt: skip
    overflow = "document.documentElement.scrollWidth > window.innerWidth"
    assert page.evaluate(overflow) is False  # nothing wider than the screen
    states = page.get_by_role("group", name="Who gets chat")
    expect(states.get_by_role("button", name="On for everybody")).to_be_in_viewport()
    expect(page.get_by_label("Reason for your changes (optional)")).to_be_in_viewport()
