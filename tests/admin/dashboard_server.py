"""Serve an ASGI app with uvicorn on a real loopback socket, in a thread of the test process.

Used by the dashboard's HTTP and browser tests: the app is the real ``create_app`` and the
client (httpx, Chromium) talks to it over TCP, as in production.
"""

from __future__ import annotations

import contextlib
import socket
import threading
import time
from collections.abc import Iterator
from typing import Any

import uvicorn

STARTUP = 30.0  # seconds for uvicorn to start on a busy machine; never approached when healthy


@contextlib.contextmanager
def serve(app: Any, **options: Any) -> Iterator[str]:
    """Run ``app`` until the block ends; yields its base URL (``http://127.0.0.1:<port>``).

    ``options`` go on to ``uvicorn.Config`` (``http=`` the protocol ``rollout serve`` uses)."""
    sock = socket.socket(socket.AF_INET, socket.SOCK_STREAM)
    sock.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
    sock.bind(("127.0.0.1", 0))  # the kernel's free port, held from now on: no race
    port = sock.getsockname()[1]
    settings: dict[str, Any] = {
        "log_level": "warning",
        "log_config": None,  # uvicorn's records go to the root logger, where pytest shows them
        "lifespan": "off",
        "ws": "none",
        # Event streams never end by themselves: at shutdown, close them after a moment.
        "timeout_graceful_shutdown": 1,
    }
    config = uvicorn.Config(app, **{**settings, **options})
    server = uvicorn.Server(config)
    thread = threading.Thread(target=server.run, kwargs={"sockets": [sock]}, daemon=True)
    thread.start()
    try:
        deadline = time.monotonic() + STARTUP
        while not server.started:
            if not thread.is_alive() or time.monotonic() > deadline:
                raise RuntimeError("uvicorn did not start")
            time.sleep(0.01)
        yield f"http://127.0.0.1:{port}"
    finally:
        server.should_exit = True
        thread.join(timeout=STARTUP)
        sock.close()
