"""A private ``redis-server`` for the Redis tests: started on a free port, stopped, restarted.

Persistence is off (``--save '' --appendonly no``), so a restart comes back empty: exactly the
case the transport must survive by re-seeding Redis from its replicas.
"""

from __future__ import annotations

import os
import shutil
import signal
import subprocess
import time
from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path
from typing import NoReturn

import pytest
import redis

from rollout.testing.cluster import free_port

__all__ = ["RedisServer", "need_redis", "ping", "redis_binary", "with_namespace"]

_START_TIMEOUT = 10.0


def redis_binary() -> str | None:
    return shutil.which("redis-server") or (
        "/usr/bin/redis-server" if Path("/usr/bin/redis-server").exists() else None
    )


def need_redis(reason: str) -> NoReturn:
    """No Redis can be had: skip locally, fail under CI (``CI=true``)."""
    if os.environ.get("CI") == "true":
        pytest.fail(f"{reason} (CI=true: the Redis tests must run)", pytrace=False)
    pytest.skip(reason)


def ping(url: str, timeout: float = 1.0) -> bool:
    client = redis.Redis.from_url(url, socket_timeout=timeout, socket_connect_timeout=timeout)
    try:
        return bool(client.ping())
    except (redis.RedisError, OSError, ValueError):
        return False
    finally:
        client.close()


def with_namespace(url: str, namespace: str) -> str:
    """``url`` with ``namespace=...`` added to its query."""
    return f"{url}{'&' if '?' in url else '?'}namespace={namespace}"


class RedisServer:
    """One ``redis-server`` process on a fixed loopback port (kept across restarts)."""

    def __init__(self, binary: str, directory: Path) -> None:
        self.binary = binary
        self.directory = directory
        self.port = free_port()
        self.url = f"redis://127.0.0.1:{self.port}/0"
        self.process: subprocess.Popen[bytes] | None = None
        self.log_path = directory / f"redis-{self.port}.log"

    def start(self) -> RedisServer:
        arguments = [
            self.binary, "--port", str(self.port), "--bind", "127.0.0.1",
            "--save", "", "--appendonly", "no", "--dir", str(self.directory),
            "--logfile", str(self.log_path),
        ]  # fmt: skip
        self.process = subprocess.Popen(
            arguments,
            stdin=subprocess.DEVNULL,
            stdout=subprocess.DEVNULL,
            stderr=subprocess.DEVNULL,
        )
        deadline = time.monotonic() + _START_TIMEOUT
        while not ping(self.url, 0.5):
            if self.process.poll() is not None or time.monotonic() > deadline:
                self.stop()
                raise RuntimeError(f"redis-server on port {self.port} did not start")
            time.sleep(0.02)
        return self

    def stop(self) -> None:
        process, self.process = self.process, None
        if process is None:
            return
        if process.poll() is None:
            process.terminate()
            try:
                process.wait(timeout=10)
            except subprocess.TimeoutExpired:
                process.kill()
                process.wait(timeout=10)

    def restart(self) -> None:
        self.stop()
        self.start()

    def client(self) -> redis.Redis:
        return redis.Redis.from_url(self.url)

    @contextmanager
    def hung(self) -> Iterator[None]:
        """The server stopped (SIGSTOP) on entry and continued (SIGCONT) on leaving: it then runs
        what it received meanwhile. Never continued sooner: a fixed pause raced the client's own
        time-out, and a client slow to send (a loaded machine) had its answer in time."""
        assert self.process is not None
        pid = self.process.pid
        os.kill(pid, signal.SIGSTOP)
        try:
            yield
        finally:
            os.kill(pid, signal.SIGCONT)
