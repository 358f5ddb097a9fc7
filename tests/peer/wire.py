"""The peer protocol written out again from its description, for tests that act on raw sockets.

Independent of ``rollout.peer``'s code on purpose (HKDF from RFC 5869, the handshake and the
frame format as docs/security.md describes them), so a test that talks to a node through these
helpers checks the implementation against the description, not against itself.
"""

from __future__ import annotations

import contextlib
import hashlib
import hmac
import json
import os
import socket
import time
from dataclasses import dataclass
from typing import Any

MAGIC = b"rollout/2"
PROTOCOL = 2
OPENING_SIZE = len(MAGIC) + 1 + 32
SALT = b"rollout peer v2"


def hkdf(secret: bytes, info: bytes, length: int) -> bytes:
    # scrypt (RFC 7914, N=2**14, r=8, p=1) stretches the secret, then HKDF (RFC 5869).
    stretched = hashlib.scrypt(secret, salt=SALT, n=2**14, r=8, p=1, maxmem=2**26, dklen=32)
    prk = hmac.new(SALT, stretched, hashlib.sha256).digest()
    out, block, counter = b"", b"", 1
    while len(out) < length:
        block = hmac.new(prk, block + info + bytes((counter,)), hashlib.sha256).digest()
        out, counter = out + block, counter + 1
    return out[:length]


def opening(nonce: bytes, *, secret: bool = True) -> bytes:
    return MAGIC + bytes((1 if secret else 0,)) + nonce


def frame(key: bytes | None, counter: int, body: bytes) -> bytes:
    mac = (
        b"" if key is None else hmac.new(key, counter.to_bytes(8, "big") + body, "sha256").digest()
    )
    return (len(body) + len(mac)).to_bytes(4, "big") + body + mac


def hello_body(node: str | None = None, addr: str | None = None) -> bytes:
    payload: dict[str, Any] = {
        "node": node or os.urandom(8).hex(),
        "addr": addr,
        "protocol": PROTOCOL,
        "members": [],
        "clock": time.time_ns() // 1_000_000,
    }
    return bytes((PROTOCOL, 1)) + json.dumps(payload, separators=(",", ":")).encode()


def recv_exactly(sock: socket.socket, size: int) -> bytes:
    data = b""
    while len(data) < size:
        chunk = sock.recv(size - len(data))
        if not chunk:
            raise ConnectionError(f"closed after {len(data)} of {size} bytes")
        data += chunk
    return data


def read_all(sock: socket.socket, timeout: float) -> bytes:
    """Everything the other side sends until it closes (or ``timeout`` passes in silence)."""
    sock.settimeout(timeout)
    received = b""
    with contextlib.suppress(ConnectionError, TimeoutError, OSError):
        while chunk := sock.recv(65536):
            received += chunk
    return received


@dataclass
class Session:
    """A dialler's side of an authenticated connection, ready for frames after the hellos."""

    send_key: bytes
    receive_key: bytes
    their_hello: dict[str, Any]
    sent: int = 1  # the hello was frame 0 in each direction
    received: int = 1


def dial(sock: socket.socket, secret: bytes, *, node: str | None = None) -> Session:
    """Authenticate as a dialler that knows ``secret``, and exchange hellos."""
    mine = opening(os.urandom(32))
    sock.sendall(mine)
    theirs = recv_exactly(sock, OPENING_SIZE)
    keys = hkdf(secret, b"rollout/2" + mine[-32:] + theirs[-32:], 128)
    proof_i, proof_r, i_to_r, r_to_i = (keys[i : i + 32] for i in range(0, 128, 32))
    transcript = mine + theirs
    sock.sendall(hmac.new(proof_i, b"initiator" + transcript, "sha256").digest())
    expected = hmac.new(proof_r, b"responder" + transcript, "sha256").digest()
    if not hmac.compare_digest(recv_exactly(sock, 32), expected):
        raise AssertionError("the node's proof is wrong")
    length = int.from_bytes(recv_exactly(sock, 4), "big")
    body_and_mac = recv_exactly(sock, length)
    body, mac = body_and_mac[:-32], body_and_mac[-32:]
    if not hmac.compare_digest(hmac.new(r_to_i, bytes(8) + body, "sha256").digest(), mac):
        raise AssertionError("the node's hello fails its MAC")
    sock.sendall(frame(i_to_r, 0, hello_body(node)))
    return Session(i_to_r, r_to_i, json.loads(body[2:]))
