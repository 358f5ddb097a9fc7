"""Regenerate the dashboard screenshots in docs/ (dashboard-list.png, dashboard-flag.png,
dashboard-targeting.png).

    .venv/bin/python docs/screenshots.py [--out DIR]

Serves the real admin app on a loopback port with a few example flags and their history, signs
in through the login page in Debian's headless Chromium (/usr/bin/chromium), and saves both
pages. tests/admin/test_browser_list.py runs it too, into a temporary directory.
"""

from __future__ import annotations

import argparse
import sys
from pathlib import Path

HERE = Path(__file__).resolve().parent
sys.path.insert(0, str(HERE.parent))  # the test suite's uvicorn and browser helpers

from playwright.sync_api import sync_playwright  # noqa: E402
from tests.admin.browser_helpers import CHROMIUM, CHROMIUM_ARGS  # noqa: E402
from tests.admin.dashboard_server import serve  # noqa: E402

from rollout import Rollout  # noqa: E402
from rollout.admin import create_app  # noqa: E402


def example_flags(flags: Rollout) -> None:
    flags.define_group("admins", lambda _user: False)
    flags.define_group("beta_testers", lambda _user: False)
    with flags.with_context(user="alice"):
        flags.activate_percentage("new_checkout", 5)
        flags.activate_users("new_checkout", ["42", "1337", "2048"])
        flags.activate_group("new_checkout", "beta_testers")
        flags.exclude_user("new_checkout", "666")
        flags.set_feature_data(
            "new_checkout", {"description": "The one-page checkout", "owner": "payments"}
        )
        flags.activate("dark_mode")
        flags.set_feature_data("dark_mode", {"description": "Dark colour scheme"})
        flags.activate_percentage_of_time("search_v2", 10)
        flags.activate_group("admin_tools", "admins")
        flags.set_feature_data("legacy_export", {"owner": "data"})
    with flags.with_context(user="ci", reason="rollout step 2"):
        flags.activate_percentage("new_checkout", 25)
    with flags.with_context(user="alice", reason="pro plans get the wide layout"):
        flags.define_rule("pro", {"in": [{"var": "plan"}, ["pro", "enterprise"]]})
        flags.define_flag(
            "checkout_layout",
            {"narrow": {"columns": 1}, "wide": {"columns": 3}},
            default_variant="narrow",
            targeting={"if": [{"$ref": "pro"}, "wide", None]},
            metadata={"owner": "payments"},
        )


def take(out: Path) -> None:
    with Rollout(node_name="web-1") as flags:
        example_flags(flags)
        with serve(create_app(flags, token="s3cret")) as url, sync_playwright() as playwright:
            browser = playwright.chromium.launch(executable_path=str(CHROMIUM), args=CHROMIUM_ARGS)
            page = browser.new_page(viewport={"width": 1200, "height": 720})
            page.goto(url + "/login")
            page.get_by_label("Token").fill("s3cret")
            page.get_by_role("button", name="Sign in").click()
            page.wait_for_selector('#live[data-live="open"]')
            page.screenshot(path=out / "dashboard-list.png")
            page.set_viewport_size({"width": 1200, "height": 1400})
            page.goto(url + "/flags/new_checkout")
            page.wait_for_selector('#live[data-live="open"]')
            page.screenshot(path=out / "dashboard-flag.png")
            page.goto(url + "/flags/checkout_layout")
            page.wait_for_selector('#live[data-live="open"]')
            page.screenshot(path=out / "dashboard-targeting.png")
            browser.close()


if __name__ == "__main__":
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--out", type=Path, default=HERE, help="directory (default: docs/)")
    take(parser.parse_args().out)
