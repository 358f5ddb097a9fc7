"""What a peer connection costs to open: the handshake against a real node process.

A node (``rollout.testing.cluster.Node``, memory store) listens on loopback; this process dials it
again and again and times each connection from ``connect()`` until the node has admitted it (its
first DIGEST, sent right after the handshake, has arrived), then closes it:

- ``TCP connect, node closes``: the baseline, the same sockets with no protocol at all (the
  dialler sends end-of-input at once, and waits for the node to accept and close);
- ``handshake, no secret``: the openings and the two HELLOs (loopback mode);
- ``handshake, secret``: openings, proofs both ways (HKDF per connection, HMAC-SHA256), HELLOs
  MAC'd under the connection's keys.

The dialler is this process, speaking the protocol with the package's own pieces, so the times
include both sides' work and three round trips on loopback. Run alone: ``python -m
bench.handshake_bench``.
"""

from __future__ import annotations

import os
import socket
import statistics
import sys
import tempfile
import time
from collections.abc import Callable
from pathlib import Path
from typing import TYPE_CHECKING, Any

from rollout.peer._frames import FrameReader, FrameWriter, Kind, Message
from rollout.peer._handshake import (
    NONCE_SIZE,
    OPENING_SIZE,
    PROOF_SIZE,
    check_proof,
    new_nonce,
    opening,
    proof,
    read_opening,
    session_keys,
    transport_key,
)
from rollout.peer._secret import new_secret
from rollout.testing.cluster import Node

if TYPE_CHECKING:
    from .report import Table

__all__ = ["measure_handshakes", "tables"]

WARMUP = 30
ROUNDS = 400
_NODE_ID = os.urandom(8).hex()


def _recv_exactly(sock: socket.socket, size: int) -> bytes:
    data = b""
    while len(data) < size:
        chunk = sock.recv(size - len(data))
        if not chunk:
            raise ConnectionError("the node closed the connection")
        data += chunk
    return data


def _read_frame(sock: socket.socket, reader: FrameReader) -> Message:
    header = _recv_exactly(sock, 4)
    [message] = reader.feed(header + _recv_exactly(sock, int.from_bytes(header, "big")))
    return message


def _connect(address: tuple[str, int]) -> socket.socket:
    sock = socket.create_connection(address, timeout=10)
    sock.setsockopt(socket.IPPROTO_TCP, socket.TCP_NODELAY, 1)
    return sock


def _plain(address: tuple[str, int], _prk: bytes | None) -> None:
    # Until the node has accepted the connection and closed it on the end of input: without
    # waiting, connections pile up in the listen backlog and some wait for a SYN retry (1 s).
    with _connect(address) as sock:
        sock.shutdown(socket.SHUT_WR)
        assert sock.recv(1) == b""


def _handshake(address: tuple[str, int], prk: bytes | None) -> None:
    with _connect(address) as sock:
        mine = opening(new_nonce(), secret=prk is not None)
        sock.sendall(mine)
        theirs = _recv_exactly(sock, OPENING_SIZE)
        nonce, _ = read_opening(theirs)
        writer, reader = FrameWriter(), FrameReader()
        if prk is not None:
            keys = session_keys(prk, mine[-NONCE_SIZE:], nonce)
            transcript = mine + theirs
            sock.sendall(proof(keys.proof_initiator, b"initiator", transcript))
            received = _recv_exactly(sock, PROOF_SIZE)
            check_proof(keys.proof_responder, b"responder", transcript, received)
            writer.rekey(keys.initiator_to_responder)
            reader.rekey(keys.responder_to_initiator)
        assert _read_frame(sock, reader).kind is Kind.HELLO
        hello: dict[str, Any] = {
            "node": _NODE_ID,
            "addr": None,
            "protocol": 2,
            "members": [],
            "clock": 0,
        }
        hello["clock"] = time.time_ns() // 1_000_000
        sock.sendall(writer.frame(Kind.HELLO, hello))
        assert _read_frame(sock, reader).kind is Kind.DIGEST  # admitted


def _time(
    dial: Callable[[tuple[str, int], bytes | None], None], address: str, prk: bytes | None
) -> list[float]:
    host, _, port = address.rpartition(":")
    target = (host, int(port))
    for _ in range(WARMUP):
        dial(target, prk)
    times = []
    for _ in range(ROUNDS):
        started = time.perf_counter_ns()
        dial(target, prk)
        times.append((time.perf_counter_ns() - started) / 1e6)
    return times


def measure_handshakes() -> dict[str, list[float]]:
    """Milliseconds per connection, by case."""
    secret = new_secret()
    results: dict[str, list[float]] = {}
    with tempfile.TemporaryDirectory() as directory:
        for label, node_secret, dial in (
            ("TCP connect, node closes (baseline)", secret, _plain),
            ("handshake, no secret", None, _handshake),
            ("handshake, secret", secret, _handshake),
        ):
            node = Node("hs", Path(directory), secret=node_secret, store="memory://").start()
            try:
                prk = None if node_secret is None else transport_key(node_secret.encode())
                results[label] = _time(dial, node.address, prk)
            finally:
                node.stop()
    return results


def tables() -> list[Table]:
    from .report import Table  # here: the report module needs psutil, this one does not

    results = measure_handshakes()
    rows = []
    for label, times in results.items():
        times.sort()
        p99 = times[int(len(times) * 0.99) - 1]
        rows.append([label, *(f"{t:.3f} ms" for t in (statistics.median(times), p99, times[-1]))])
    return [
        Table(
            "Peer handshake: connect until admitted, one dialler at a time",
            ["case", "p50", "p99", "max"],
            rows,
            (
                f"{ROUNDS} connections per case after {WARMUP} of warm-up, loopback, against a "
                "node process; the dialler is this process (both sides' work is in the time).",
            ),
        )
    ]


if __name__ == "__main__":
    for table in tables():
        print(table.text(), file=sys.stdout)
