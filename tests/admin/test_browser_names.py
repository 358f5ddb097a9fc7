"""Names holding "/" in a real browser: the page of flag ``victim/`` is that flag's, and deleting
it there deletes ``victim/``, never ``victim``; unticking group ``admins/`` removes that group,
never ``admins``. (The API once redirected ``victim%2F`` to ``victim``, and fetch followed.)"""

from __future__ import annotations

from collections.abc import Iterator

import pytest
from playwright.sync_api import Browser, expect

from rollout.testing import eventually

from .browser_helpers import PATIENCE, Dashboard, dashboard, launch_chromium


@pytest.fixture(scope="module")
def browser() -> Iterator[Browser]:
    yield from launch_chromium()


@pytest.fixture
def board() -> Iterator[Dashboard]:
    with dashboard() as served:
        flags = served.flags
        flags.define_group("admins/", lambda user: False)
        for name in ("victim", "victim/", "a/../b", "b"):
            flags.activate(name)
        flags.activate_group("victim/", "admins")
        flags.activate_group("victim/", "admins/")
        yield served


def test_the_page_of_victim_slash_shows_and_deletes_victim_slash(
    browser: Browser, board: Dashboard
) -> None:
    flags = board.flags
    page = board.open(browser, "/")
    page.get_by_role("link", name="victim/", exact=True).click()
    expect(page).to_have_url(board.url + "/flags/victim%2F")
    expect(page.locator("#flag-name")).to_have_text("victim/")
    expect(page.locator("#missing")).to_be_hidden()
    # Its script running (live), so the button below has its handler: a click that came first,
    # while flag.js was still loading, did nothing on a busy machine.
    expect(page.locator("#live")).to_have_attribute("data-live", "open")

    page.get_by_role("button", name="Delete flag…").click()
    page.get_by_role("dialog").get_by_role("button", name="Delete", exact=True).click()
    eventually(lambda: not flags.exists("victim/"), PATIENCE, "victim/ deleted")
    expect(page).to_have_url(board.url + "/")
    assert flags.exists("victim")
    assert [e.action for e in flags.history("victim")] == ["activate"]


def test_unticking_group_admins_slash_removes_that_group_only(
    browser: Browser, board: Dashboard
) -> None:
    flags = board.flags
    page = board.open(browser, "/")
    page.get_by_role("link", name="victim/", exact=True).click()
    expect(page.locator("#flag-name")).to_have_text("victim/")
    expect(page.locator("#live")).to_have_attribute("data-live", "open")  # flag.js runs
    box = page.get_by_role("checkbox", name="admins/", exact=True)
    expect(box).to_be_checked()
    box.uncheck()
    eventually(lambda: flags.get("victim/").groups == {"admins"}, PATIENCE, "admins/ removed")
    expect(page.get_by_role("checkbox", name="admins", exact=True)).to_be_checked()
    expect(box).not_to_be_checked()


def test_a_name_with_dot_segments_is_not_collapsed_into_another_flag(
    browser: Browser, board: Dashboard
) -> None:
    page = board.open(browser, "/")
    page.get_by_role("link", name="a/../b", exact=True).click()
    expect(page.locator("#flag-name")).to_have_text("a/../b")
    expect(page.locator("#missing")).to_be_hidden()
