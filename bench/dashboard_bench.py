"""The dashboard in Chromium with a big flag in the store, against the same pages without it.

Issue target: the flag list with one 100,000-user flag transfers under 50 KB and renders in
under 200 ms. Each page is opened in Chromium (Playwright) against ``rollout serve`` on an SQLite
file: the list and one flag's page, with 5 and with 50 other flags, once where one flag lists
100,000 users and once where it lists 3 (the baseline, served at the same time, measured
interleaved). Transferred bytes are the document plus everything it fetched
(``transferSize`` of the navigation and resource entries, so after the first load only what the
cache did not answer); time is the navigation's ``loadEventEnd`` plus the wait for the page's
script to have drawn its rows, best of ``ROUNDS``.

``python -m bench.dashboard_bench`` prints the table.
"""

from __future__ import annotations

import contextlib
import os
import subprocess
import sys
import tempfile
from collections.abc import Iterator
from pathlib import Path
from typing import TYPE_CHECKING

from rollout import Rollout

from .report import Table

if TYPE_CHECKING:
    from playwright.sync_api import Page

__all__ = ["tables"]

CHROMIUM = Path("/usr/bin/chromium")
BIG = 100_000
ROUNDS = 7
#: Other flags in the store: a small application's, and a bigger one's (each row of the list
#: costs about a kilobyte of HTML whatever its flag's members).
OTHERS = (5, 50)
TARGET_KB = 50.0
TARGET_MS = 200.0


@contextlib.contextmanager
def _serve(users: int, others: int) -> Iterator[str]:
    """``rollout serve`` (auth off, loopback) on a store with ``others`` flags and ``big``
    listing ``users`` users; yields the dashboard's address."""
    with tempfile.TemporaryDirectory(prefix="rollout-dashboard-bench-") as directory:
        store = f"sqlite:///{Path(directory) / 'rollout.db'}"
        with Rollout(store) as seed:
            for n in range(others):
                seed.activate_percentage(f"flag-{n:02d}", n * 2)
            seed.activate_users("big", range(users))
        env = {k: v for k, v in os.environ.items() if not k.startswith("ROLLOUT_")}
        process = subprocess.Popen(
            [sys.executable, "-m", "rollout", "serve", "--store", store,
             "--http", "127.0.0.1:0", "--no-access-log"],
            cwd=directory, env=env, stdin=subprocess.DEVNULL, stdout=subprocess.PIPE,
            stderr=subprocess.DEVNULL, text=True,
        )  # fmt: skip
        assert process.stdout is not None
        try:
            for line in process.stdout:
                if line.startswith("Dashboard: "):
                    yield line.split(" ", 1)[1].strip().rstrip("/")
                    break
            else:
                raise RuntimeError(f"rollout serve exited ({process.wait()}) before serving")
        finally:
            process.terminate()
            process.wait(timeout=30)
            process.stdout.close()


_MEASURE = """() => {
  const entries = [...performance.getEntriesByType("navigation"),
                   ...performance.getEntriesByType("resource")];
  const nav = performance.getEntriesByType("navigation")[0];
  return [entries.reduce((sum, e) => sum + (e.transferSize || 0), 0), nav.loadEventEnd];
}"""


def _open(page: Page, url: str, ready: str) -> tuple[float, float]:
    """(kilobytes transferred, milliseconds until loaded and drawn) for one fresh visit."""
    page.goto(url, wait_until="load")
    page.wait_for_selector(ready)
    drawn = float(page.evaluate("() => performance.now()"))
    size, loaded = page.evaluate(_MEASURE)
    return float(size) / 1000, max(float(loaded), drawn)


def measure() -> list[list[str]]:
    from playwright.sync_api import sync_playwright

    pages = (("list", "/", 'tr[data-flag="big"]'), ("flag page", "/flags/big", "#flag-name"))
    results: dict[tuple[str, int, int], list[tuple[float, float]]] = {}
    with contextlib.ExitStack() as stack:
        bases = {
            (users, others): stack.enter_context(_serve(users, others))
            for others in OTHERS
            for users in (BIG, 3)
        }
        playwright = stack.enter_context(sync_playwright())
        browser = playwright.chromium.launch(
            executable_path=str(CHROMIUM), args=["--headless=new", "--no-sandbox"]
        )
        try:
            for _ in range(ROUNDS):
                for (users, others), base in bases.items():
                    for name, path, ready in pages:
                        # A new context each time: nothing cached, as a first visit.
                        context = browser.new_context()
                        results.setdefault((name, users, others), []).append(
                            _open(context.new_page(), base + path, ready)
                        )
                        context.close()
        finally:
            browser.close()
    rows = []
    for others in OTHERS:
        for name, _path, _ready in pages:
            _, base_ms = min(results[(name, 3, others)], key=lambda r: r[1])
            for users in (BIG, 3):
                kb, ms = min(results[(name, users, others)], key=lambda r: r[1])
                verdict = "PASS" if kb < TARGET_KB and ms < TARGET_MS else "MISS"
                rows.append([
                    f"{name}, flag of {users:,} users, {others} other flags", f"{kb:.1f}",
                    f"{ms:.0f}", f"{ms / base_ms:.2f}x", verdict if users == BIG else "baseline",
                ])  # fmt: skip
    return rows


def tables() -> list[Table]:
    if not CHROMIUM.exists():
        return [
            Table(
                "Dashboard in Chromium",
                ["page", "note"],
                [["all", f"not measured: no Chromium at {CHROMIUM} (make browser installs it)"]],
            )
        ]
    return [
        Table(
            "Dashboard in Chromium: a 100,000-user flag against a 3-user one",
            [
                "page",
                "KB transferred",
                "ms to drawn",
                "vs baseline",
                f"< {TARGET_KB:.0f} KB, < {TARGET_MS:.0f} ms",
            ],
            measure(),
            (
                f"First visit (fresh browser context), best of {ROUNDS}; "
                f"{' or '.join(map(str, OTHERS))} other flags in the store. Time is until the load "
                "event and the page's rows are drawn.",
            ),
        )
    ]


if __name__ == "__main__":
    for table in tables():
        print(table.text())
