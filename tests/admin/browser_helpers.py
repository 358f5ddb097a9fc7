"""Driving the dashboard in Debian's Chromium (headless) with Playwright's Python package.

The browser is the system's ``/usr/bin/chromium`` (Playwright's own download is never used).
Without it the browser tests skip, except under ``CI=true``, where a missing browser is a
failure: CI must not go green by testing nothing.
"""

from __future__ import annotations

import contextlib
import os
from collections.abc import Iterator
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import httpx
import pytest
from playwright.sync_api import Browser, BrowserContext, Page, expect, sync_playwright

from rollout import Rollout
from rollout.admin import create_app

from .dashboard_server import serve

CHROMIUM = Path("/usr/bin/chromium")
CHROMIUM_ARGS = [
    "--headless",
    "--no-sandbox",
    "--disable-gpu",
    "--disable-quic",
    "--no-first-run",
    "--disable-background-networking",
    "--disable-component-update",
    "--disable-sync",
]
TOKENS = {"alice": "alice-s3cret", "ci": "ci-s3cret"}
#: Milliseconds a browser step may take on a busy, shared machine; never approached when healthy.
PATIENCE_MS = 30_000
#: The same in seconds: how long ``eventually`` waits for the server to apply what a page sent.
PATIENCE = PATIENCE_MS / 1000

expect.set_options(timeout=PATIENCE_MS)


def launch_chromium() -> Iterator[Browser]:
    """Chromium for a test module (skips, or fails under CI=true, when it is not installed)."""
    if not CHROMIUM.exists():
        reason = f"the browser tests need Chromium at {CHROMIUM} (apt install chromium)"
        if os.environ.get("CI") == "true":
            pytest.fail(reason)
        pytest.skip(reason)
    with sync_playwright() as playwright:
        browser = playwright.chromium.launch(executable_path=str(CHROMIUM), args=CHROMIUM_ARGS)
        try:
            yield browser
        finally:
            browser.close()


def seed(flags: Rollout) -> None:
    """The flags every browser test starts from (written by "bob", so the tests' own stand out)."""
    flags.define_group("admins", lambda user: False)
    flags.define_group("staff", lambda user: False)
    with flags.with_context(user="bob"):
        flags.activate_percentage("chat", 20)
        flags.activate_users("chat", ["42", "7"])
        flags.activate_group("chat", "admins")
        flags.set_feature_data("chat", {"description": "The new chat widget", "owner": "web"})
        flags.activate("signup")
        flags.set_feature_data("old_search", {"owner": "search"})
        flags.set_feature_data("beta", {})


@dataclass
class Dashboard:
    """A served app, its Rollout, and an API client holding the ``ci`` token."""

    url: str
    flags: Rollout
    api: httpx.Client
    errors: list[str] = field(default_factory=list)
    contexts: list[BrowserContext] = field(default_factory=list)

    def open(self, browser: Browser, path: str = "/", **context: Any) -> Page:
        """A new browser context, signed in as alice through the login page, at ``path``."""
        opened = browser.new_context(**context)
        self.contexts.append(opened)
        page = opened.new_page()
        page.set_default_timeout(PATIENCE_MS)
        page.on("pageerror", lambda error: self.errors.append(str(error)))
        page.goto(self.url + path)
        expect(page).to_have_url(self.url + "/login?next=" + path.replace("/", "%2F"))
        page.get_by_label("Token").fill(TOKENS["alice"])
        page.get_by_role("button", name="Sign in").click()
        expect(page).to_have_url(self.url + path)
        # Live from here on: a change made now reaches the page.
        expect(page.locator("#live")).to_have_attribute("data-live", "open")
        # Set on this page's window: still there at the end unless the page reloaded.
        page.evaluate("window.notReloaded = true")
        return page


@contextlib.contextmanager
def dashboard(**app_options: Any) -> Iterator[Dashboard]:
    """The seeded flags served by ``create_app(flags, tokens=TOKENS, **app_options)``."""
    with Rollout(node_name="web-1") as flags:
        seed(flags)
        with (
            serve(create_app(flags, tokens=TOKENS, **app_options)) as url,
            httpx.Client(
                base_url=url + "/api/v1",
                headers={"Authorization": f"Bearer {TOKENS['ci']}"},
                timeout=PATIENCE,
            ) as api,
        ):
            board = Dashboard(url, flags, api)
            yield board
            for opened in board.contexts:  # their event streams end before the server does
                opened.close()
            # An exception in the page's JavaScript fails the test that caused it.
            assert board.errors == []


def not_reloaded(page: Page) -> bool:
    return page.evaluate("window.notReloaded === true") is True
