"""Signing out in a real browser: the back button and a reload show the login page, and the
session cookie copied before signing out opens nothing in another browser."""

from __future__ import annotations

from collections.abc import Iterator

import pytest
from playwright.sync_api import Browser, expect

from .browser_helpers import Dashboard, dashboard, launch_chromium


@pytest.fixture(scope="module")
def browser() -> Iterator[Browser]:
    yield from launch_chromium()


@pytest.fixture
def board() -> Iterator[Dashboard]:
    with dashboard() as served:
        yield served


def test_after_signing_out_back_reload_and_a_copied_cookie_show_the_login_page(
    browser: Browser, board: Dashboard
) -> None:
    page = board.open(browser, "/flags/chat")
    copied = [c for c in page.context.cookies() if c["name"] == "rollout_session"]
    assert len(copied) == 1
    # The copy works while the session is open: a second browser that holds it is signed in.
    thief = browser.new_context()
    board.contexts.append(thief)
    thief.add_cookies(copied)  # type: ignore[arg-type]
    stolen = thief.new_page()
    stolen.goto(board.url + "/")
    expect(stolen.get_by_role("heading", name="Flags")).to_be_visible()

    page.get_by_role("button", name="Sign out").click()
    expect(page.get_by_role("heading", name="Sign in")).to_be_visible()
    page.go_back()
    expect(page.get_by_role("heading", name="Sign in")).to_be_visible()
    expect(page.get_by_role("heading", name="chat")).to_have_count(0)
    page.reload()
    expect(page.get_by_role("heading", name="Sign in")).to_be_visible()

    # The copy no longer opens anything, though that browser never signed out.
    stolen.reload()
    expect(stolen.get_by_role("heading", name="Sign in")).to_be_visible()
    stolen.goto(board.url + "/flags/chat")
    expect(stolen.get_by_role("heading", name="Sign in")).to_be_visible()
