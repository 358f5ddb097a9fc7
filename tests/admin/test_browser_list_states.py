"""The list's off / partial / on control in Chromium: the three states, a reason with the
confirmation (required when the server requires one), and turning on a flag of 100,000 users
without downloading them."""

from __future__ import annotations

from collections.abc import Iterator

import pytest
from playwright.sync_api import Browser, Request, expect

from .browser_helpers import Dashboard, dashboard, launch_chromium, not_reloaded
from .test_browser_list import shown_state, states


@pytest.fixture(scope="module")
def browser() -> Iterator[Browser]:
    yield from launch_chromium()


@pytest.fixture
def board() -> Iterator[Dashboard]:
    with dashboard() as served:
        yield served


def test_three_states_follow_the_flag(browser: Browser, board: Dashboard) -> None:
    page = board.open(browser)
    assert [shown_state(page, name) for name in ("beta", "chat", "signup")] == [
        "off",
        "partial",
        "on",
    ]
    # One listed user is partial, not on: the control says so (as the badge does).
    board.flags.activate_users("beta", ["42"])
    expect(page.locator('tr[data-flag="beta"] .badge')).to_have_text("partial")
    assert shown_state(page, "beta") == "partial"
    board.flags.activate_percentage("beta", 100)
    expect(page.locator('tr[data-flag="beta"] .badge')).to_have_text("on")
    assert shown_state(page, "beta") == "on"
    # Pressing the state it is in already asks nothing and writes nothing.
    changes = len(board.flags.history("beta", None))
    states(page, "beta").get_by_role("button", name="On", exact=True).click()
    expect(page.get_by_role("dialog")).to_be_hidden()
    assert len(board.flags.history("beta", None)) == changes
    # A new row (cloned from the template) has the control too.
    board.flags.activate_percentage("new_one", 5)
    expect(page.locator('tr[data-flag="new_one"] .badge')).to_have_text("partial 5%")
    assert shown_state(page, "new_one") == "partial"
    states(page, "new_one").get_by_role("button", name="On", exact=True).click()
    dialog = page.get_by_role("dialog")
    expect(dialog).to_contain_text("Turn new_one on for everybody? Today it is on for 5%.")
    dialog.get_by_role("button", name="Turn on for everybody").click()
    expect(page.locator('tr[data-flag="new_one"] .badge')).to_have_text("on")
    assert board.flags.get("new_one").percentage == 100
    assert not_reloaded(page)


def test_the_confirmation_takes_a_reason(browser: Browser, board: Dashboard) -> None:
    page = board.open(browser)
    states(page, "chat").get_by_role("button", name="On", exact=True).click()
    dialog = page.get_by_role("dialog")
    expect(dialog).to_contain_text("Today it is on for 20%, 2 users and 1 group.")
    dialog.get_by_label("Reason (optional)").fill("launch day")
    dialog.get_by_label("Reason (optional)").press("Enter")  # confirms, as the button does
    expect(page.locator('tr[data-flag="chat"] .badge')).to_have_text("on")
    event = board.flags.history("chat")[0]
    assert (event.actor, event.reason) == ("alice", "launch day")
    # The next confirmation starts with an empty box.
    states(page, "chat").get_by_role("button", name="Off", exact=True).click()
    expect(dialog.get_by_label("Reason (optional)")).to_have_value("")
    dialog.get_by_role("button", name="Cancel").click()
    assert board.flags.get("chat").percentage == 100


def test_a_server_that_requires_a_reason_gets_one_from_the_list(browser: Browser) -> None:
    with dashboard(require_reason=True) as board:
        page = board.open(browser)
        states(page, "signup").get_by_role("button", name="Off", exact=True).click()
        dialog = page.get_by_role("dialog")
        reason = dialog.get_by_label("Reason", exact=True)
        expect(reason).to_have_attribute("required", "")
        # Without a reason the browser keeps the dialog open and sends nothing.
        dialog.get_by_role("button", name="Turn off").click()
        expect(dialog).to_be_visible()
        assert board.flags.active("signup")
        reason.press("Enter")  # nor with Enter
        expect(dialog).to_be_visible()
        assert board.flags.active("signup")
        reason.fill("incident 7")
        dialog.get_by_role("button", name="Turn off").click()
        expect(page.locator('tr[data-flag="signup"] .badge')).to_have_text("off")
        assert board.flags.history("signup")[0].reason == "incident 7"


def test_turning_on_a_flag_of_100000_users_transfers_under_50_kb(browser: Browser) -> None:
    with dashboard() as board:
        board.flags.activate_users("large", [str(n) for n in range(100_000)])
        page = board.open(browser)
        expect(page.locator('tr[data-flag="large"]')).to_contain_text("100,000 users")
        finished: list[Request] = []
        # A lambda, not finished.append: Playwright cannot wrap a builtin method as a handler.
        page.on("requestfinished", lambda request: finished.append(request))  # noqa: PLW0108
        states(page, "large").get_by_role("button", name="On", exact=True).click()
        dialog = page.get_by_role("dialog")
        expect(dialog).to_contain_text("Today it is on for 100,000 users.")
        with page.expect_response(lambda response: "/active" in response.url):
            dialog.get_by_role("button", name="Turn on for everybody").click()
        expect(page.locator('tr[data-flag="large"] .badge')).to_have_text("on")
        assert board.flags.get("large").percentage == 100
        # Counted after the change shows: the write's answer and whatever the live update
        # fetched again; neither may carry the member list (about 700 KB).
        expect(page.locator('tr[data-flag="large"]')).to_contain_text("everybody")
        sizes = [r.sizes() for r in finished]
        transferred = sum(s["responseBodySize"] + s["responseHeadersSize"] for s in sizes)
        by_url = [(r.url, s["responseBodySize"]) for r, s in zip(finished, sizes, strict=True)]
        assert any("/active" in url for url, _ in by_url), by_url
        assert transferred < 50_000, by_url
