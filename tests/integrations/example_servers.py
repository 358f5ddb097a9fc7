"""Run an example app from examples/ as a real server process, and drive it over HTTP.

Each example keeps its flags in an SQLite file and listens for flag changes from other
processes on a peer port (``ROLLOUT_LISTEN``), the way a deployment would. Two processes that
share an SQLite file without a transport would see each other's writes only after
``refresh()`` or a restart; the tests change flags the way an operator would instead: from a
second ``Rollout`` on the same file that reaches the server as a peer.
"""

from __future__ import annotations

import os
import signal
import subprocess
import sys
import time
from collections.abc import Iterator, Sequence
from contextlib import contextmanager
from dataclasses import dataclass
from pathlib import Path

import httpx

from rollout import Rollout
from rollout.testing.cluster import free_port

EXAMPLES = Path(__file__).resolve().parents[2] / "examples"
STARTUP = 60.0  # a server starting on a busy machine; never approached when healthy
SYNC = 30.0  # for a change to reach the server; wait_synced returns as soon as it has


@dataclass
class Server:
    url: str
    peer: str  #: the server's Rollout listens here for changes from other processes
    store: str  #: the server's SQLite store, a URL

    def get(self, path: str, user: str | None = None) -> httpx.Response:
        headers = {"X-User": user} if user is not None else {}
        return httpx.get(self.url + path, headers=headers, timeout=30.0)

    def page(self, user: str | None = None) -> str:
        response = self.get("/", user)
        assert response.status_code == 200, (response.status_code, response.text)
        return response.text

    def admin(self) -> Rollout:
        """A Rollout on the server's store that sends its changes to the server.

        Returned once the server has confirmed its clock (a node with peers writes only then).
        """
        # A server without a peer address (a PostgreSQL store) hears changes from the store.
        admin = Rollout(self.store, peers=[self.peer]) if self.peer else Rollout(self.store)
        if not admin.wait_synced(STARTUP):
            members = admin.members()
            admin.close()  # not left dialling (and drawing random numbers) for later tests
            raise AssertionError(f"the server never answered: {members}")
        return admin


def example_env(tmp_path: Path) -> tuple[dict[str, str], str, str]:
    """The environment an example reads: its store (in tmp_path) and its peer address."""
    store = f"sqlite:///{tmp_path / 'flags.db'}"
    peer = f"127.0.0.1:{free_port()}"
    env = {**os.environ, "ROLLOUT_STORE": store, "ROLLOUT_LISTEN": peer}
    return env, store, peer


@contextmanager
def serve(
    command: Sequence[str],
    *,
    port: int,
    env: dict[str, str],
    cwd: Path,
    log_path: Path,
    store: str,
    peer: str,
) -> Iterator[Server]:
    """Start ``command`` (which serves HTTP on ``port``), wait until it answers, stop it after."""
    with log_path.open("w") as log:
        process = subprocess.Popen(
            command, cwd=cwd, env=env, stdin=subprocess.DEVNULL, stdout=log, stderr=log
        )
    server = Server(f"http://127.0.0.1:{port}", peer, store)
    try:
        deadline = time.monotonic() + STARTUP
        while True:
            if process.poll() is not None:
                raise AssertionError(f"{command[:4]} exited:\n{log_path.read_text()[-3000:]}")
            try:
                server.get("/")
                break
            except httpx.TransportError:
                if time.monotonic() > deadline:
                    raise AssertionError(
                        f"no answer within {STARTUP} s:\n{log_path.read_text()[-3000:]}"
                    ) from None
                time.sleep(0.1)
        yield server
    finally:
        # SIGINT, as Ctrl-C: each server shuts down its way and the process exits normally.
        process.send_signal(signal.SIGINT)
        try:
            process.wait(timeout=30)
        except subprocess.TimeoutExpired:
            process.kill()
            process.wait(timeout=10)
            raise AssertionError(f"ignored SIGINT:\n{log_path.read_text()[-3000:]}") from None


def python(*arguments: str) -> list[str]:
    return [sys.executable, *arguments]


NEW = '<p id="checkout">new checkout</p>'
OLD = '<p id="checkout">old checkout</p>'
BANNER = '<p id="banner">holiday sale</p>'


def seed(store: str) -> None:
    """Before the server starts: new_checkout for alice, in the file the server will open."""
    with Rollout(store) as flags:
        flags.activate_user("new_checkout", "alice")


def check_the_example(server: Server) -> None:
    """What every example shows: pages that follow flags, per user, as they are changed."""
    # What the file held when the server started.
    assert NEW in server.page("alice")
    assert OLD in server.page("bob")
    assert OLD in server.page()  # anonymous: only flags on for everybody
    assert BANNER not in server.page("alice")
    assert server.get("/beta", "alice").status_code == 404

    with server.admin() as admin:
        admin.activate("holiday-banner")
        admin.activate_user("beta", "alice")
        admin.activate_percentage("new_checkout", 100)
        assert admin.wait_synced(SYNC), admin.members()
        for user in ("alice", "bob", None):
            assert NEW in server.page(user)
            assert BANNER in server.page(user)
        beta = server.get("/beta", "alice")
        assert beta.status_code == 200
        assert beta.text == "beta for alice"
        assert server.get("/beta", "bob").status_code == 404
        assert server.get("/beta").status_code == 404

        admin.deactivate("new_checkout")
        assert admin.wait_synced(SYNC), admin.members()
        assert OLD in server.page("alice")
        assert BANNER in server.page("alice")
