"""Fixtures for the NATS tests (imported by the test modules, as tests/redis does).

* ``nats_url``: the NATS of the machine, or a private one for the session (nats_server.py).
* ``namespace``: a namespace no other test uses; its stream is deleted afterwards.
* ``private_nats``: a ``nats-server`` of this test's own, which it may stop and restart.
"""

from __future__ import annotations

import asyncio
import contextlib
import os
import uuid
from collections.abc import Iterator
from pathlib import Path

import nats
import pytest

from .nats_server import NatsServer, jetstream_at, nats_binary, need_nats


@pytest.fixture(scope="session")
def nats_url(tmp_path_factory: pytest.TempPathFactory) -> Iterator[str]:
    url = os.environ.get("NATS_URL", "nats://127.0.0.1:4222")
    if jetstream_at(url.split("://", 1)[-1].rsplit("@", 1)[-1]):
        yield url
        return
    binary = nats_binary()
    if binary is None:
        need_nats(f"no NATS with JetStream at {url} and no nats-server binary")
    server = NatsServer(binary, tmp_path_factory.mktemp("nats")).start()
    try:
        yield server.url
    finally:
        server.stop()


@pytest.fixture
def private_nats(tmp_path: Path) -> Iterator[NatsServer]:
    binary = nats_binary()
    if binary is None:
        need_nats("no nats-server binary to start a private NATS (this test restarts it)")
    server = NatsServer(binary, tmp_path).start()
    try:
        yield server
    finally:
        server.stop()


def delete_stream(url: str, stream: str) -> None:
    async def delete() -> None:
        nc = await nats.connect(url, allow_reconnect=False)
        try:
            with contextlib.suppress(nats.js.errors.NotFoundError):
                await nc.jetstream().delete_stream(stream)
        finally:
            await nc.close()

    asyncio.run(delete())


@pytest.fixture
def namespace(nats_url: str) -> Iterator[str]:
    name = f"test-{uuid.uuid4().hex[:12]}"
    yield name
    delete_stream(nats_url, f"ROLLOUT_{name}")
