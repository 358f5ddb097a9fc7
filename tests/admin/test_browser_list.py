"""The flag list in a real browser: sign-in, search, the three states, live updates, a phone."""

from __future__ import annotations

import subprocess
import sys
import time
from collections.abc import Iterator
from pathlib import Path

import pytest
from playwright.sync_api import Browser, Locator, Page, expect

from rollout import Rollout
from rollout.testing import FakeClock, eventually

from .browser_helpers import (
    PATIENCE,
    TOKENS,
    Dashboard,
    dashboard,
    launch_chromium,
    not_reloaded,
)

REPO = Path(__file__).resolve().parents[2]
DAY_MS = 86_400_000


def states(page: Page, name: str) -> Locator:
    """A row's off / partial / on control."""
    return page.get_by_role("group", name=f"Who gets {name}", exact=True)


def shown_state(page: Page, name: str) -> str:
    """Which of its three states the row's control marks."""
    control = states(page, name)
    for state in ("off", "on"):
        if control.locator(f'[data-set="{state}"]').get_attribute("aria-pressed") == "true":
            return state
    partial = control.locator('[data-field="partial"]').get_attribute("data-current")
    return "partial" if partial == "true" else "none"


@pytest.fixture(scope="module")
def browser() -> Iterator[Browser]:
    yield from launch_chromium()


@pytest.fixture
def board() -> Iterator[Dashboard]:
    with dashboard() as served:
        yield served


def test_signing_in_through_the_login_page(browser: Browser, board: Dashboard) -> None:
    page = browser.new_page()
    page.goto(board.url + "/")
    expect(page.get_by_role("heading", name="Sign in")).to_be_visible()
    page.get_by_label("Token").fill("wrong")
    page.get_by_role("button", name="Sign in").click()
    expect(page.get_by_role("alert")).to_have_text("That token is not valid.")
    page.get_by_label("Token").fill(TOKENS["alice"])
    page.get_by_role("button", name="Sign in").click()
    expect(page.get_by_role("heading", name="Flags")).to_be_visible()
    expect(page.locator(".who")).to_have_text("alice")
    page.close()


def test_the_list_shows_each_flag_state_at_a_glance(browser: Browser, board: Dashboard) -> None:
    page = board.open(browser)
    expect(page.locator("tbody tr")).to_have_count(4)
    expect(page.locator("tbody tr th a")).to_have_text(["beta", "chat", "old_search", "signup"])
    chat = page.locator('tr[data-flag="chat"]')
    expect(chat.locator(".badge")).to_have_text("partial 20%")
    expect(chat).to_contain_text("20% of users · 2 users · 1 group")
    expect(chat).to_contain_text("The new chat widget")
    expect(page.locator('tr[data-flag="signup"] .badge')).to_have_text("on")
    on, off = states(page, "signup"), states(page, "beta")
    expect(on.get_by_role("button", name="On", exact=True)).to_have_attribute(
        "aria-pressed", "true"
    )
    expect(off.get_by_role("button", name="Off", exact=True)).to_have_attribute(
        "aria-pressed", "true"
    )
    expect(states(page, "chat").get_by_text("Partial")).to_have_attribute("data-current", "true")


def test_search_filters_as_you_type(browser: Browser, board: Dashboard) -> None:
    page = board.open(browser)
    search = page.get_by_role("searchbox", name="Search flags")
    search.press_sequentially("cha")
    expect(page.locator("tbody tr:visible th a")).to_have_text(["chat"])
    expect(page.locator("#count")).to_have_text("1 of 4")
    search.fill("widget")  # the description counts too
    expect(page.locator("tbody tr:visible th a")).to_have_text(["chat"])
    search.fill("nothing like it")
    expect(page.locator("tbody tr:visible")).to_have_count(0)
    expect(page.get_by_text("No flag matches the search.")).to_be_visible()
    search.fill("")
    expect(page.locator("tbody tr:visible")).to_have_count(4)
    expect(page.locator("#count")).to_have_text("4")


def test_on_and_off_from_the_list_ask_first(browser: Browser, board: Dashboard) -> None:
    page = board.open(browser)
    flags = board.flags
    dialog = page.get_by_role("dialog")
    states(page, "beta").get_by_role("button", name="On", exact=True).click()
    expect(dialog).to_contain_text("Turn beta on for everybody?")
    expect(dialog).to_contain_text("Today it is off.")
    dialog.get_by_role("button", name="Turn on for everybody").click()
    expect(page.locator('tr[data-flag="beta"] .badge')).to_have_text("on")
    assert shown_state(page, "beta") == "on"
    assert flags.get("beta").percentage == 100
    assert flags.history("beta")[0].actor == "alice"

    # On for everybody, nothing else: off asks too (never one careless click).
    states(page, "signup").get_by_role("button", name="Off", exact=True).click()
    expect(dialog).to_contain_text("Turn signup off for everybody?")
    dialog.get_by_role("button", name="Turn off").click()
    expect(page.locator('tr[data-flag="signup"] .badge')).to_have_text("off")
    assert not flags.active("signup", "anyone")

    # Partial: the dialog says what it clears; cancel leaves it as it was.
    states(page, "chat").get_by_role("button", name="Off", exact=True).click()
    expect(dialog).to_contain_text("Turn chat off for everybody?")
    expect(dialog).to_contain_text("Today it is on for 20%, 2 users and 1 group.")
    dialog.get_by_role("button", name="Cancel").click()
    expect(dialog).to_be_hidden()
    expect(page.locator('tr[data-flag="chat"] .badge')).to_have_text("partial 20%")
    assert shown_state(page, "chat") == "partial"
    assert flags.get("chat").users == {"42", "7"}
    states(page, "chat").get_by_role("button", name="Off", exact=True).click()
    dialog.get_by_role("button", name="Turn off").click()
    expect(page.locator('tr[data-flag="chat"] .badge')).to_have_text("off")
    assert flags.get("chat").users == set()
    assert not_reloaded(page)


def test_changes_made_elsewhere_show_up_live(browser: Browser, board: Dashboard) -> None:
    page = board.open(browser)
    # Through the API, as a script would (another token, so another actor).
    assert board.api.put("/flags/beta/percentage", json={"percentage": 30}).status_code == 200
    expect(page.locator('tr[data-flag="beta"] .badge')).to_have_text("partial 30%")
    # Directly on the Rollout, as the CLI or another node's merge would.
    board.flags.deactivate("signup")
    expect(states(page, "signup").get_by_role("button", name="Off", exact=True)).to_have_attribute(
        "aria-pressed", "true"
    )
    # A new flag appears in name order; a deleted one goes.
    board.flags.activate_users("bb_new", ["1"])
    expect(page.locator("tbody tr th a")).to_have_text(
        ["bb_new", "beta", "chat", "old_search", "signup"]
    )
    assert board.api.delete("/flags/old_search").status_code == 200
    expect(page.locator('tr[data-flag="old_search"]')).to_have_count(0)
    # New rows obey the search being typed.
    page.get_by_role("searchbox", name="Search flags").fill("chat")
    board.flags.activate("chat_v2")
    board.flags.activate("zeta")
    expect(page.locator("tbody tr:visible th a")).to_have_text(["chat", "chat_v2"])
    assert not_reloaded(page)


def test_a_new_flag_is_made_from_its_name(browser: Browser, board: Dashboard) -> None:
    page = board.open(browser)
    page.get_by_label("New flag").fill("dark mode")
    page.get_by_role("button", name="Create flag").click()
    expect(page).to_have_url(board.url + "/flags/dark%20mode")
    expect(page.get_by_text("There is no flag with this name")).to_be_visible()
    expect(page.locator("#live")).to_have_attribute("data-live", "open")  # flag.js runs
    page.get_by_role("button", name="On for everybody").click()
    page.get_by_role("dialog").get_by_role("button", name="Turn on for everybody").click()
    expect(page.get_by_text("There is no flag with this name")).to_be_hidden()
    eventually(lambda: board.flags.active("dark mode"), PATIENCE, "dark mode turned on")


def test_signing_out(browser: Browser, board: Dashboard) -> None:
    page = board.open(browser)
    page.get_by_role("button", name="Sign out").click()
    expect(page.get_by_role("heading", name="Sign in")).to_be_visible()
    page.goto(board.url + "/")
    expect(page.get_by_role("heading", name="Sign in")).to_be_visible()


def test_on_a_phone(browser: Browser, board: Dashboard) -> None:
    page = board.open(
        browser, viewport={"width": 390, "height": 844}, is_mobile=True, has_touch=True
    )
    overflow = "document.documentElement.scrollWidth > window.innerWidth"
    assert page.evaluate(overflow) is False  # nothing wider than the screen
    expect(page.get_by_role("searchbox", name="Search flags")).to_be_in_viewport()
    states(page, "beta").get_by_role("button", name="On", exact=True).tap()
    page.get_by_role("dialog").get_by_role("button", name="Turn on for everybody").tap()
    expect(page.locator('tr[data-flag="beta"] .badge')).to_have_text("on")
    page.get_by_role("link", name="chat").tap()
    expect(page.get_by_role("heading", name="chat", level=1)).to_be_visible()
    assert page.evaluate(overflow) is False
    slider = page.get_by_role("slider", name="Percentage of users")
    box = slider.bounding_box()
    assert box is not None
    assert box["width"] > 150  # wide enough to use with a thumb
    page.get_by_label("Add users").fill("phone-user")
    page.get_by_role("button", name="Add", exact=True).first.tap()
    eventually(lambda: "phone-user" in board.flags.get("chat").users, PATIENCE, "phone-user added")


def test_the_screenshot_script_writes_both_pictures(tmp_path: Path) -> None:
    subprocess.run(
        [sys.executable, str(REPO / "docs" / "screenshots.py"), "--out", str(tmp_path)],
        check=True,
        timeout=180,
    )
    for name in ("dashboard-list.png", "dashboard-flag.png"):
        picture = (tmp_path / name).read_bytes()
        assert picture.startswith(b"\x89PNG\r\n\x1a\n")
        assert len(picture) > 10_000


def test_columns_say_who_changed_each_flag_and_when_it_was_checked(
    browser: Browser, board: Dashboard
) -> None:
    board.flags.activate_users("chat", [f"u{n}" for n in range(1500)])  # no actor
    assert board.api.get("/flags/signup/check").status_code == 200
    page = board.open(browser)
    for name in ("State", "Last changed", "Last checked", "Checks"):
        expect(page.get_by_role("columnheader", name=name)).to_be_visible()
    chat, signup = page.locator('tr[data-flag="chat"]'), page.locator('tr[data-flag="signup"]')
    expect(chat).to_contain_text("1,502 users")  # thousands separated
    expect(chat.locator('[data-field="checked-at"]')).to_have_text("never")
    expect(signup.locator('[data-field="checked-at"]')).not_to_have_text("never")
    expect(page.locator('tr[data-flag="beta"] [data-field="changed-by"]')).to_have_text("by bob")
    # A change through the API names its token's owner, live.
    board.api.put("/flags/beta/percentage", json={"percentage": 5})
    expect(page.locator('tr[data-flag="beta"] [data-field="changed-by"]')).to_have_text("by ci")


def test_filter_and_sort_by_state(browser: Browser, board: Dashboard) -> None:
    page = board.open(browser)
    names = page.locator("tbody tr:visible th a")
    page.get_by_label("Show flags in state").select_option("partial")
    expect(names).to_have_text(["chat"])
    expect(page.locator("#count")).to_have_text("1 of 4")
    assert "state=partial" in page.url
    page.get_by_label("Show flags in state").select_option("")
    # By state: on for everybody first, then partial, then off (by name within a state).
    page.get_by_role("button", name="State").click()
    expect(names).to_have_text(["signup", "chat", "beta", "old_search"])
    expect(page.get_by_role("columnheader", name="State")).to_have_attribute(
        "aria-sort", "ascending"
    )
    page.get_by_role("button", name="State").click()
    expect(names).to_have_text(["beta", "old_search", "chat", "signup"])  # ties by name
    # A flag turned on elsewhere moves to its place in the order shown.
    board.flags.activate("beta")
    expect(names).to_have_text(["old_search", "chat", "beta", "signup"])  # beta is on now
    assert not_reloaded(page)


def test_the_stale_filters(browser: Browser, board: Dashboard) -> None:
    # A flag turned on 40 days ago, on another node (merged here with its history).
    with Rollout(clock=FakeClock(int(time.time() * 1000) - 40 * DAY_MS)) as elsewhere:
        elsewhere.activate("legacy")
        board.flags.merge(elsewhere.export())
    assert board.api.get("/flags/chat/check").status_code == 200
    page = board.open(browser)
    names = page.locator("tbody tr:visible th a")
    stale = page.get_by_label("Show stale flags")
    stale.select_option(label="On for everybody for 30 days")
    expect(names).to_have_text(["legacy"])  # signup is on too, since today
    assert "on_days=30" in page.url
    stale.select_option(label="Not checked in 7 days")
    expect(names).to_have_text(["beta", "legacy", "old_search", "signup"])
    expect(page.locator("#count")).to_have_text("4 of 5")
    page.reload()  # the filter is kept in the address
    expect(page.get_by_label("Show stale flags")).to_have_value("unchecked_days=7")
    expect(names).to_have_text(["beta", "legacy", "old_search", "signup"])


def test_a_percentage_of_time_reads_as_on_every_other_surface(
    browser: Browser, board: Dashboard
) -> None:
    # `rollout percentage-of-time`, `rollout history`, the flag page's badge and explain all say
    # "5% of the time"; the summaries of the list and of the flag page must say it too.
    board.flags.activate_percentage_of_time("beta", 5)
    page = board.open(browser)
    beta = page.locator('tr[data-flag="beta"] [data-field="summary"]')
    expect(beta).to_have_text("5% of the time")  # rendered by the server
    board.api.put("/flags/beta/percentage_of_time", json={"percentage": 7})
    expect(beta).to_have_text("7% of the time")  # redrawn by the page from a live update
    page.goto(board.url + "/flags/beta")
    expect(page.locator('p[data-field="summary"]')).to_have_text("7% of the time")
    expect(page.locator('[data-field="time-badge"]')).to_have_text("7% of the time")
