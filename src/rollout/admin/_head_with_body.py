"""A response's head sent with its body, in one write: the transport ``rollout serve``'s
connections write through (see ``_connections.GuardedH11Protocol``)."""

from __future__ import annotations

import asyncio
from typing import Any

__all__ = ["HELD_HEAD", "HeadWithBody"]


#: The largest response head held back to go out with its body.
HELD_HEAD = 4096


class HeadWithBody:
    """The connection's transport as uvicorn writes to it: the head of a response of known
    length (``Content-Length``) is held until the body's first write, and goes out with it in
    one send.

    uvicorn writes a response's head and its body apart: two system calls and two TCP segments
    for each answer, where one does (the second send cost about 5% of a served check's CPU).
    Only such a head is held: its body follows at once (or the app fails and the connection is
    closed, which sends it first). A stream's head (chunked: no length) goes out at once,
    before its first event; flow control and the guard's write deadline see every byte as
    they did, the head a few microseconds later.
    """

    __slots__ = ("_held", "transport")

    def __init__(self, transport: asyncio.Transport) -> None:
        self.transport = transport
        self._held: bytes | None = None

    def write(self, data: bytes) -> None:
        held = self._held
        if held is not None:
            self._held = None
            data = held + data
        elif (
            data[:5] == b"HTTP/"
            and len(data) <= HELD_HEAD
            and b"\r\ncontent-length:" in data.lower()
        ):
            self._held = bytes(data)
            return
        if data:
            self.transport.write(data)

    def write_whole(self, data: bytes) -> None:
        """A whole response, head and body (``_whole_response``): nothing to hold."""
        held = self._held
        if held is not None:
            self._held = None
            data = held + data
        self.transport.write(data)

    def writelines(self, lines: Any) -> None:
        self.write(b"".join(lines))

    def close(self) -> None:
        held = self._held
        if held is not None:
            self._held = None
            if not self.transport.is_closing():
                self.transport.write(held)
        self.transport.close()

    def abort(self) -> None:
        self._held = None
        self.transport.abort()

    def is_closing(self) -> bool:
        return self.transport.is_closing()

    def pause_reading(self) -> None:
        self.transport.pause_reading()

    def resume_reading(self) -> None:
        self.transport.resume_reading()

    def __getattr__(self, name: str) -> Any:  # the rest, as the transport has it
        return getattr(self.transport, name)
