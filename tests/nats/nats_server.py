"""A NATS server for the tests: the machine's (``NATS_URL``, else 127.0.0.1:4222) when it answers
with JetStream on, else a private ``nats-server -js`` when the binary exists; without either the
tests skip locally and fail under ``CI=true``."""

from __future__ import annotations

import json
import os
import shutil
import socket
import subprocess
import time
from pathlib import Path
from typing import NoReturn

import pytest

from rollout.testing.cluster import free_port

__all__ = ["NatsServer", "jetstream_at", "nats_binary", "need_nats"]


def nats_binary() -> str | None:
    return shutil.which("nats-server")


def need_nats(reason: str) -> NoReturn:
    """No NATS can be had: skip locally, fail under CI (``CI=true``)."""
    if os.environ.get("CI") == "true":
        pytest.fail(f"{reason} (CI=true: the NATS tests must run)", pytrace=False)
    pytest.skip(reason)


def jetstream_at(address: str, timeout: float = 1.0) -> bool:
    """Whether a NATS server with JetStream answers at ``host:port`` (its INFO line says so)."""
    host, _, port = address.rpartition(":")
    try:
        with socket.create_connection((host, int(port)), timeout=timeout) as sock:
            sock.settimeout(timeout)
            line = sock.makefile("rb").readline()
    except (OSError, ValueError):
        return False
    if not line.startswith(b"INFO "):
        return False
    try:
        return bool(json.loads(line[5:]).get("jetstream"))
    except ValueError:
        return False


class NatsServer:
    """A ``nats-server -js`` of the test's own, on a free port, which it may stop and restart
    (its JetStream storage stays in ``directory`` across restarts)."""

    def __init__(self, binary: str, directory: Path, *options: str) -> None:
        self.binary = binary
        self.directory = directory
        self.options = list(options)  # e.g. --user/--pass, --tls --tlscert --tlskey
        self.port = free_port()
        self.process: subprocess.Popen[bytes] | None = None

    @property
    def address(self) -> str:
        return f"127.0.0.1:{self.port}"

    @property
    def url(self) -> str:
        return f"nats://{self.address}"

    def start(self) -> NatsServer:
        log = (self.directory / "nats-server.log").open("ab")
        self.process = subprocess.Popen(
            [self.binary, "-js", "-a", "127.0.0.1", "-p", str(self.port),
             "-sd", str(self.directory / "jetstream"), *self.options],
            stdout=log, stderr=log,
        )  # fmt: skip
        log.close()
        deadline = time.monotonic() + 10
        while not self._listening():
            if self.process.poll() is not None or time.monotonic() > deadline:
                raise RuntimeError(f"nats-server did not start: see {self.directory}")
            time.sleep(0.05)
        return self

    def _listening(self) -> bool:
        if not self.options:
            return jetstream_at(self.address)
        try:  # with TLS or auth the INFO line is the same, but say "listening" only
            socket.create_connection(("127.0.0.1", self.port), timeout=1).close()
        except OSError:
            return False
        return True

    def stop(self) -> None:
        if self.process is not None:
            self.process.terminate()
            try:
                self.process.wait(10)
            except subprocess.TimeoutExpired:
                self.process.kill()
                self.process.wait()
            self.process = None
