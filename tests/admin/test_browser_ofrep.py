"""A web application's page on another origin, in Chromium, reading flags from ``rollout serve``
through the real browser OFREP provider and the OpenFeature web SDK: the flag flips on the page,
without a reload, after a change through the API.

The page is served by its own HTTP server (another port: another origin), so the requests are
true cross-origin ones: preflighted, allowed by ``--cors-origin``, with the ETag readable.
"""

from __future__ import annotations

import functools
import secrets
import threading
from collections.abc import Iterator
from http.server import SimpleHTTPRequestHandler, ThreadingHTTPServer
from pathlib import Path

import pytest
from playwright.sync_api import Browser, Page, expect

from rollout import Rollout
from rollout.testing.cluster import free_port

from .browser_helpers import launch_chromium
from .ofrep_web import ofrep_web_bundle
from .serve_process import Served, serve

BULK = "/ofrep/v1/evaluate/flags"
EVENTS = "/ofrep/v1/events?ticket="
ADMIN = secrets.token_urlsafe(32)
WEB = secrets.token_urlsafe(32)

PAGE = """<!doctype html>
<meta charset="utf-8">
<title>shop</title>
<p>chat: <span id="chat">loading</span>; color: <span id="color">loading</span></p>
<script src="/ofrep-bundle.js"></script>
<script>
  const provider = new OFREPWebProvider({
    baseUrl: "%(serve)s",
    pollInterval: 200,
    changeDetection: "%(detection)s",
    headers: [["Authorization", "Bearer %(token)s"]],
  });
  const client = OpenFeature.getClient();
  const render = () => {
    document.getElementById("chat").textContent = String(client.getBooleanValue("chat", false));
    document.getElementById("color").textContent = client.getStringValue("color", "red");
  };
  client.addHandler("PROVIDER_CONFIGURATION_CHANGED", render);
  OpenFeature.setContext({ targetingKey: "alice", plan: "pro" })
    .then(() => OpenFeature.setProviderAndWait(provider))
    .then(render);
</script>
"""


@pytest.fixture(scope="module")
def browser() -> Iterator[Browser]:
    yield from launch_chromium()


class _QuietHandler(SimpleHTTPRequestHandler):
    def log_message(self, format: str, *args: object) -> None:
        pass


@pytest.fixture
def page_server(tmp_path: Path) -> Iterator[tuple[str, Path]]:
    """A static HTTP server for the application's page: its origin and its folder."""
    folder = tmp_path / "site"
    folder.mkdir()
    (folder / "ofrep-bundle.js").write_bytes(ofrep_web_bundle().read_bytes())
    handler = functools.partial(_QuietHandler, directory=str(folder))
    server = ThreadingHTTPServer(("127.0.0.1", free_port()), handler)
    thread = threading.Thread(target=server.serve_forever, daemon=True)
    thread.start()
    try:
        yield f"http://127.0.0.1:{server.server_address[1]}", folder
    finally:
        server.shutdown()
        server.server_close()


@pytest.fixture
def served(tmp_path: Path, page_server: tuple[str, Path]) -> Iterator[Served]:
    with Rollout(f"sqlite:///{tmp_path / 'rollout.db'}") as seed:
        seed.set("chat", False)
        seed.activate_users("color", ["alice"])
        seed.set_feature_data("color", {"value": "blue", "off_value": "grey"})
    origin, _ = page_server
    args = ["--http", f"127.0.0.1:{free_port()}", "--token", f"ops={ADMIN}"]
    args += ["--eval-token", f"web={WEB}", "--cors-origin", origin]
    with serve(*args, cwd=tmp_path, token=ADMIN) as server:
        yield server


@pytest.mark.parametrize("detection", ["sse", "polling"])
def test_a_flag_flips_on_the_page_after_a_change_through_the_api(
    browser: Browser, page_server: tuple[str, Path], served: Served, detection: str
) -> None:
    """By the change stream (the provider's default when the server offers one), or by
    polling with the ETag."""
    origin, folder = page_server
    values = {"serve": served.url.rstrip("/"), "token": WEB, "detection": detection}
    (folder / "index.html").write_text(PAGE % values)
    context = browser.new_context()
    page: Page = context.new_page()
    statuses: list[int] = []
    page.on("response", lambda r: statuses.append(r.status) if r.url.endswith(BULK) else None)
    try:
        if detection == "sse":
            with page.expect_response(lambda r: EVENTS in r.url) as stream:
                page.goto(f"{origin}/index.html")
            assert stream.value.status == 200
            assert stream.value.headers["content-type"].startswith("text/event-stream")
        else:
            page.goto(f"{origin}/index.html")
        expect(page.locator("#chat")).to_have_text("false")
        expect(page.locator("#color")).to_have_text("blue")
        # Polling while nothing changes: the server answers 304, not the flags again.
        for _ in range(2 if detection == "polling" else 0):
            page.wait_for_event("response", lambda r: r.url.endswith(BULK) and r.status == 304)

        with served.client() as http:
            answer = http.put("/api/v1/flags/chat/active", json={"active": True})
            assert answer.status_code == 200, answer.text
        expect(page.locator("#chat")).to_have_text("true")
        assert statuses[0] == 200
        if detection == "sse":
            assert 304 not in statuses  # told, not polling
    finally:
        context.close()


DEFINED_PAGE = """<!doctype html>
<meta charset="utf-8">
<title>shop</title>
<p>tier: <span id="tier">loading</span>; quiet: <span id="quiet">loading</span></p>
<script src="/ofrep-bundle.js"></script>
<script>
  const provider = new OFREPWebProvider({
    baseUrl: "%(serve)s",
    headers: [["Authorization", "Bearer %(token)s"]],
  });
  const client = OpenFeature.getClient();
  const render = () => {
    const tier = client.getStringDetails("tier", "none");
    document.getElementById("tier").textContent = `${tier.value} ${tier.variant} ${tier.reason}`;
    const quiet = client.getBooleanDetails("quiet", true);
    document.getElementById("quiet").textContent = `${quiet.value} ${quiet.reason}`;
  };
  client.addHandler("PROVIDER_CONFIGURATION_CHANGED", render);
  OpenFeature.setContext({ targetingKey: "alice", plan: "team" })
    .then(() => OpenFeature.setProviderAndWait(provider))
    .then(render);
</script>
"""


def test_a_defined_flag_on_the_page_follows_a_change_to_its_named_rule(
    browser: Browser, page_server: tuple[str, Path], tmp_path: Path
) -> None:
    """Variants and a named rule, loaded into the store, evaluated by the browser's OFREP
    provider; another process changes the rule and the page shows the new variant."""
    store = f"sqlite:///{tmp_path / 'rollout.db'}"
    with Rollout(store) as seed:
        seed.define_rule("paying", {"in": [{"var": "plan"}, ["pro"]]})
        rule = {"if": [{"$ref": "paying"}, "gold"]}
        variants = {"gold": "gold", "basic": "basic"}
        seed.define_flag("tier", variants, default_variant="basic", targeting=rule)
        seed.define_flag("quiet", {"on": True, "off": False}, default_variant="on", enabled=False)
    origin, folder = page_server
    args = ["--http", f"127.0.0.1:{free_port()}", "--token", f"ops={ADMIN}"]
    args += ["--eval-token", f"web={WEB}", "--cors-origin", origin]
    with serve(*args, cwd=tmp_path, token=ADMIN) as server:
        values = {"serve": server.url.rstrip("/"), "token": WEB}
        (folder / "index.html").write_text(DEFINED_PAGE % values)
        context = browser.new_context()
        page: Page = context.new_page()
        try:
            page.goto(f"{origin}/index.html")
            expect(page.locator("#tier")).to_have_text("basic basic DEFAULT")
            # Disabled: no value and no variant name, so the page's own default.
            expect(page.locator("#quiet")).to_have_text("true DISABLED")
            with Rollout(store) as writer:
                writer.define_rule("paying", {"in": [{"var": "plan"}, ["pro", "team"]]})
            expect(page.locator("#tier")).to_have_text("gold gold TARGETING_MATCH")
        finally:
            context.close()
