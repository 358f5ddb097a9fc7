"""The HELLO each side of a connection sends once the handshake's proofs are through: who it is
(node id, address, the members it knows, its clock), in a frame MAC'd with the connection's key.

Its size is bounded before a byte of it is buffered: a peer cannot make a node hold more than
``MAX_HELLO`` for one, and a node trims its own member list (the rest is learned later from
the peers it names) rather than send more.
"""

from __future__ import annotations

import asyncio
from typing import Any

from ._frames import PROTOCOL_VERSION, FrameError, FrameReader, Kind, encode_body

__all__ = ["MAX_HELLO", "hello_body", "read_hello"]

#: A hello lists up to MAX_MEMBERS addresses (typical ones take ~20 bytes): a bound that fits
#: them, checked before the frame is read, so no peer makes a node buffer more for one.
MAX_HELLO = 64 * 1024


def hello_body(node_id: int, address: str | None, members: list[str], clock_ms: int) -> bytes:
    """This node's HELLO body, its member list halved until the frame fits ``MAX_HELLO``."""
    while True:
        hello = {
            "node": f"{node_id:016x}",
            "addr": address,
            "protocol": PROTOCOL_VERSION,
            "members": members,
            "clock": clock_ms,
        }
        body = encode_body(Kind.HELLO, hello)
        # Room for the MAC. Only absurdly long host names overflow: the rest of the list is
        # learned from the peers that are told about.
        if len(body) + 64 <= MAX_HELLO or not members:
            return body
        members = members[: len(members) // 2]


async def read_hello(
    reader: asyncio.StreamReader, frames: FrameReader, max_frame: int
) -> dict[str, Any]:
    """The peer's HELLO: exactly one frame, its size checked first (FrameError otherwise)."""
    header = await reader.readexactly(4)
    length = int.from_bytes(header, "big")
    if length > min(MAX_HELLO, max_frame):
        raise FrameError(f"a hello frame of {length} bytes is over the limit {MAX_HELLO}")
    messages = frames.feed(header + await reader.readexactly(length))
    if len(messages) != 1 or messages[0].kind is not Kind.HELLO:
        raise FrameError("the first frame must be a hello")
    hello = messages[0].body
    if hello["protocol"] != PROTOCOL_VERSION:
        raise FrameError(f"protocol version {hello['protocol']} is not supported")
    return hello
