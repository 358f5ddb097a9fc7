"""Options of the NATS transport: authentication and TLS passed through to a real nats-server,
credentials never in logs, errors or stats, bad arguments refused with a clear error, and the
missing extra named."""

from __future__ import annotations

import logging
import os
import shutil
import ssl
import subprocess
import sys
from collections.abc import Iterator
from pathlib import Path

import pytest

from rollout import Rollout
from rollout.nats import NatsTransport
from rollout.testing import eventually

from .nats_server import NatsServer, nats_binary, need_nats

SECRET = "s3cret-Passw0rd-xyz"


def _server(tmp_path: Path, *options: str) -> Iterator[NatsServer]:
    binary = nats_binary()
    if binary is None:
        need_nats("no nats-server binary to start a NATS with authentication")
    server = NatsServer(binary, tmp_path, *options).start()
    try:
        yield server
    finally:
        server.stop()


@pytest.fixture
def password_nats(tmp_path: Path) -> Iterator[NatsServer]:
    yield from _server(tmp_path, "--user", "ann", "--pass", SECRET)


@pytest.fixture
def token_nats(tmp_path: Path) -> Iterator[NatsServer]:
    yield from _server(tmp_path, "--auth", SECRET)


@pytest.fixture
def tls_nats(tmp_path: Path) -> Iterator[tuple[NatsServer, Path]]:
    openssl = shutil.which("openssl")
    if openssl is None:
        pytest.skip("the openssl command-line tool is not installed")
    cert, key = tmp_path / "cert.pem", tmp_path / "key.pem"
    subprocess.run(
        [openssl, "req", "-x509", "-newkey", "rsa:2048", "-nodes", "-days", "1",
         "-subj", "/CN=127.0.0.1", "-addext", "subjectAltName=IP:127.0.0.1",
         "-keyout", str(key), "-out", str(cert)],
        check=True, capture_output=True, timeout=60,
    )  # fmt: skip
    for server in _server(tmp_path, "--tls", "--tlscert", str(cert), "--tlskey", str(key)):
        yield server, cert


def _replicates(first: Rollout, second: Rollout) -> None:
    assert first.wait_synced(10)
    assert second.wait_synced(10)
    first.activate("chat")
    eventually(lambda: second.active("chat"), what="the write arrives")


def test_user_and_password_reach_nats_and_never_show(
    password_nats: NatsServer, caplog: pytest.LogCaptureFixture
) -> None:
    caplog.set_level(logging.DEBUG, logger="rollout")
    in_url = f"nats://ann:{SECRET}@{password_nats.address}?namespace=a"
    apart = NatsTransport(password_nats.url, user="ann", password=SECRET, namespace="a")
    with Rollout(transport=in_url) as first, Rollout(transport=apart) as second:
        _replicates(first, second)
        shown = f"{first.stats()['sync']} {second.stats()['sync']} {first._transport!r}"
        assert "ann:***@" in shown
        assert SECRET not in shown
    wrong = NatsTransport(f"nats://ann:wrong-{SECRET}@{password_nats.address}")
    with Rollout(transport=wrong) as refused:
        assert not refused.wait_synced(1.0)
        error = eventually(lambda: refused.stats()["sync"]["last_error"], what="an error")
        assert "uthoriz" in error  # nats: 'Authorization Violation'
        assert SECRET not in str(refused.stats())
    assert caplog.records
    assert all(SECRET not in record.getMessage() for record in caplog.records)


def test_a_token_reaches_nats(token_nats: NatsServer) -> None:
    def transport(token: str) -> NatsTransport:
        return NatsTransport(token_nats.url, token=token, namespace="t")

    with (
        Rollout(transport=transport(SECRET)) as first,
        Rollout(transport=transport(SECRET)) as second,
    ):
        _replicates(first, second)
    with Rollout(transport=transport("not-it")) as refused:
        assert not refused.wait_synced(1.0)


def test_tls_with_the_applications_context(tls_nats: tuple[NatsServer, Path]) -> None:
    server, cert = tls_nats
    context = ssl.create_default_context(cafile=str(cert))

    def transport() -> NatsTransport:
        return NatsTransport(f"tls://{server.address}", tls=context, namespace="tls")

    with Rollout(transport=transport()) as first, Rollout(transport=transport()) as second:
        _replicates(first, second)
    untrusting = NatsTransport(f"tls://{server.address}", tls=ssl.create_default_context())
    with Rollout(transport=untrusting) as refused:  # its context does not trust the server
        assert not refused.wait_synced(1.0)
        error = eventually(lambda: refused.stats()["sync"]["last_error"], what="an error")
        assert "CERTIFICATE_VERIFY_FAILED" in error or "certificate" in error.lower()


@pytest.mark.parametrize(
    ("arguments", "error", "message"),
    [
        ({"namespace": "a.b"}, ValueError, "namespace must be 1 to 64 letters"),
        ({"namespace": ""}, ValueError, "namespace"),
        ({"namespace": 7}, TypeError, "namespace must be a str"),
        ({"servers": f"redis://u:{SECRET}@h:1"}, ValueError, "'redis://u:***@h:1' is not a NATS"),
        ({"servers": []}, ValueError, "at least one"),
        ({"check_interval": 0}, ValueError, "check_interval must be positive, got 0"),
        ({"compact_after": 1.5}, TypeError, "compact_after must be a positive int"),
        ({"max_message_bytes": 100}, ValueError, "max_message_bytes must be at least 4096"),
        ({"password": SECRET}, ValueError, "password needs user"),
        ({"user": "ann", "password": 5}, TypeError, "password must be a str, got int"),
        ({"tls": "yes"}, TypeError, "tls must be an ssl.SSLContext"),
        ({"credentials": "/nonexistent/x.creds"}, ValueError, "no such file"),
    ],
)
def test_bad_arguments_are_refused_by_name(
    arguments: dict[str, object], error: type[Exception], message: str
) -> None:
    with pytest.raises(error) as raised:
        NatsTransport(**arguments)  # type: ignore[arg-type]
    assert message in str(raised.value)
    assert SECRET not in str(raised.value)


def test_bad_transport_urls_are_refused_before_anything_is_made() -> None:
    with pytest.raises(ValueError, match="unknown parameter 'stream'"):
        Rollout(transport="nats://127.0.0.1:4222?stream=x")
    with pytest.raises(ValueError, match=r"'http://u:\*\*\*@h' is not a transport URL"):
        Rollout(transport=f"http://u:{SECRET}@h")


def test_without_nats_py_the_missing_extra_is_named(tmp_path: Path) -> None:
    code = (
        "import sys; sys.modules['nats'] = None\n"
        "from rollout.nats import NatsTransport\n"
        "NatsTransport()\n"
    )
    result = subprocess.run(
        [sys.executable, "-c", code], capture_output=True, text=True, timeout=60, check=False,
        env={**os.environ},
    )  # fmt: skip
    assert result.returncode != 0
    assert "MissingExtraError" in result.stderr
    assert "pip install 'rollout[nats]'" in result.stderr
