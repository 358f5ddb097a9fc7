"""The wire format of the peer-to-peer protocol: length-prefixed, optionally MAC'd frames.

::

    frame := length:u32 big-endian | body | mac
    body  := version:u8 | kind:u8 | payload (compact UTF-8 JSON object)
    mac   := HMAC-SHA256(key, counter:u64 big-endian || body)   (only when there is a key)

The MAC covers a per-direction frame counter, so a frame replayed on the same connection fails
(the counter has moved); the handshake (:mod:`rollout.peer._handshake`) gives each connection and
each direction its own key, so a frame replayed on another connection or reflected back to its
sender fails too.

Pure (no I/O): a transport feeds received bytes to a :class:`FrameReader` and sends what a
:class:`FrameWriter` returns. Payloads are checked strictly on the way in (they come from the
network) and on the way out (a frame the peer rejects closes the connection, again and again).
"""

from __future__ import annotations

import hashlib
import hmac
import json
import re
import sys
from collections.abc import Mapping
from typing import Any, Final

from .._core.codec import decode_flags, encode_flags
from .._core.state import Delta
from .._core.validate import json_problem
from ..errors import FormatError, RolloutError
from ._messages import SCHEMAS, Kind, Message, SchemaError, check_keys

__all__ = [
    "DEFAULT_MAX_FRAME",
    "PROTOCOL_VERSION",
    "FrameAuthError",
    "FrameError",
    "FrameReader",
    "FrameWriter",
    "Kind",
    "Message",
    "OwnOpeningError",
    "encode_body",
]

PROTOCOL_VERSION: Final = 2
DEFAULT_MAX_FRAME: Final = 64 * 1024 * 1024

_MAC_SIZE: Final = hashlib.sha256().digest_size
_HEADER: Final = 2  # version and kind
_MAX_LENGTH: Final = 2**32 - 1


class FrameError(RolloutError):
    """Bad bytes from the network: the connection they came on should be closed.

    Raised for a frame that is too long, has an unknown version or kind, fails its MAC, or
    carries a payload that is not valid JSON or does not match its kind's schema.
    """


class FrameAuthError(FrameError):
    """The peer failed to prove the shared secret: a wrong MAC or proof, or no secret at all."""


class OwnOpeningError(FrameAuthError):
    """The peer's opening carries a nonce of this node's own: the node reached itself (its own
    address among its peers) or a relay in the path sent its dial back to it."""


#: A JSON escape that may decode to a surrogate (or a backslash before "ud8.." text: a walk
#: that finds nothing). JSON escapes are a backslash and a lowercase "u"; hex digits any case.
_SURROGATE_ESCAPE: Final = re.compile(r"\\u[dD][89a-fA-F]")


#: ``json.dumps(payload, separators=(",", ":"), allow_nan=False)`` with its encoder made once:
#: dumps makes one per call, an eighth of encoding a delta.
_encode_json: Final = json.JSONEncoder(separators=(",", ":"), allow_nan=False).encode


def _reject_constant(constant: str) -> Any:
    raise ValueError(f"{constant} is not valid JSON")


#: ``json.loads(text, parse_constant=_reject_constant)`` with its decoder made once: loads
#: makes one (and its scanner) per call when given an option, a tenth of decoding a delta. (A
#: decoder keeps no state between calls.)
_decode_json: Final = json.JSONDecoder(parse_constant=_reject_constant).decode


def _decode_payload(kind: Kind, text: str) -> Message:
    try:
        payload = _decode_json(text)
    except (ValueError, RecursionError) as exc:
        # RecursionError: deeply nested arrays are valid JSON that the parser cannot take.
        raise SchemaError(f"payload is not JSON: {exc}") from None
    if not isinstance(payload, dict):
        raise SchemaError(f"payload must be a JSON object, got {type(payload).__name__}")
    # JSON's "\\ud800" escapes decode to lone surrogates, which nothing downstream can store,
    # encode or show: a frame holding one anywhere is bad bytes (the connection is closed).
    # The text itself, strict UTF-8, holds none, so only a payload with an escape in the
    # surrogates' range (D800-DFFF) can: the others skip the walk over every value, which was
    # a sixth of receiving a delta. Depth is not bounded here (the parser bounds it); data
    # values are, by decode_flags.
    if _SURROGATE_ESCAPE.search(text) is not None:
        problem = json_problem(payload, max_depth=sys.maxsize)
        if problem is not None:
            raise SchemaError(f"payload is not Unicode text: {problem}")
    keys, has_flags, check = SCHEMAS[kind]
    check_keys(payload, _WITH_FLAGS[kind] if has_flags else keys)
    check(payload)
    if not has_flags:
        return Message(kind, payload)
    try:
        delta = decode_flags(payload.pop("flags"))
    except FormatError as exc:
        raise SchemaError(str(exc)) from None
    return Message(kind, payload, delta)


#: The keys of a payload that carries flags, by kind: its schema's and "flags".
_WITH_FLAGS: Final = {kind: keys | {"flags"} for kind, (keys, _, _) in SCHEMAS.items()}


def encode_body(kind: Kind, body: Mapping[str, Any], delta: Delta | None = None) -> bytes:
    """The body of a frame (version, kind, payload), checked against the kind's schema.

    For DELTA and STATE, ``body`` has no ``flags``: pass the delta. Encoding a body once and
    framing it per peer with :meth:`FrameWriter.frame_body` saves re-encoding a fan-out delta.
    Raises ``ValueError`` for a body the peer would reject.
    """
    kind = Kind(kind)
    keys, has_flags, check = SCHEMAS[kind]
    if has_flags != (delta is not None):
        need = "needs a delta" if has_flags else "takes no delta"
        raise ValueError(f"a {kind.name} frame {need}, got delta={delta!r:.80}")
    if not isinstance(body, Mapping):
        raise TypeError(f"body must be a mapping, got {body!r}")
    payload = dict(body)
    try:
        check_keys(payload, keys)
        check(payload)
        if delta is not None:
            # Not checked again on the way out: registers come from our own replica, valid by
            # construction, and this runs on every write. Receivers check everything.
            payload["flags"] = encode_flags(delta)
        text = _encode_json(payload)
    except (SchemaError, FormatError) as exc:
        raise ValueError(f"{kind.name} frame: {exc}") from None
    except (TypeError, ValueError) as exc:  # json.dumps: an object, a NaN, a circular list
        raise ValueError(f"{kind.name} frame: payload is not JSON-serialisable: {exc}") from exc
    return bytes((PROTOCOL_VERSION, kind)) + text.encode()


class _Direction:
    """One direction of one connection: its MAC key and the frames it has carried under it."""

    def __init__(self, key: bytes | None = None) -> None:
        self.rekey(key)

    def rekey(self, key: bytes | None) -> None:
        """Use ``key`` from the next frame on, counting frames from 0 again."""
        if key is not None and not isinstance(key, bytes):
            raise TypeError(f"key must be bytes or None, got {type(key).__name__}")
        if key == b"":
            raise ValueError("key must not be empty (pass None for unauthenticated frames)")
        self._key = key
        # Keyed once: each frame's MAC starts from a copy, which skips hashing the key's
        # pads again (a quarter of a MAC on a delta-sized frame).
        self._keyed = None if key is None else hmac.new(key, digestmod=hashlib.sha256)
        self._counter = 0

    def _mac(self, counter: int, body: bytes | memoryview) -> bytes:
        """HMAC-SHA256(key, counter:u64 big-endian || body); only called with a key."""
        assert self._keyed is not None
        mac = self._keyed.copy()
        mac.update(counter.to_bytes(8, "big"))
        mac.update(body)
        return mac.digest()


class FrameWriter(_Direction):
    """Frames bodies for one direction of one connection."""

    def frame(
        self, kind: Kind, body: Mapping[str, Any] | None = None, *, delta: Delta | None = None
    ) -> bytes:
        return self.frame_body(encode_body(kind, {} if body is None else body, delta))

    def frame_body(self, body: bytes) -> bytes:
        """Frame a body from :func:`encode_body`; each call advances the MAC counter."""
        if not isinstance(body, bytes):
            raise TypeError(f"body must be bytes from encode_body(), got {type(body).__name__}")
        if len(body) <= _HEADER or body[0] != PROTOCOL_VERSION:
            raise ValueError(f"body must come from encode_body(), got {body[:16]!r}")
        mac = b"" if self._key is None else self._mac(self._counter, body)
        length = len(body) + len(mac)
        if length > _MAX_LENGTH:
            raise ValueError(f"a frame must be under 4 GiB, this body is {len(body)} bytes")
        self._counter += 1
        return b"".join((length.to_bytes(4, "big"), body, mac))


class FrameReader(_Direction):
    """Decodes the frames of one direction of one connection from bytes as they arrive.

    After a :class:`FrameError` the stream position is lost, so the reader refuses all further
    input; close the connection.
    """

    def __init__(self, key: bytes | None = None, *, max_frame: int = DEFAULT_MAX_FRAME) -> None:
        if isinstance(max_frame, bool) or not isinstance(max_frame, int) or max_frame <= 0:
            raise ValueError(f"max_frame must be a positive int, got {max_frame!r}")
        super().__init__(key)
        self._max_frame = max_frame
        self._buffer = bytearray()
        self._failure: str | None = None

    @property
    def buffered(self) -> int:
        """Bytes received but not yet decoded (part of a frame still arriving)."""
        return len(self._buffer)

    def feed(self, data: bytes) -> list[Message]:
        """Every frame completed by ``data``, in order; an incomplete tail stays buffered.

        Raises :class:`FrameError` as soon as the bytes are known to be bad (an oversized length
        once its four bytes are in), dropping frames decoded earlier in the call with it.
        """
        if self._failure is not None:
            raise FrameError(f"the stream is broken (earlier: {self._failure}); close it")
        self._buffer += data
        messages: list[Message] = []
        try:
            consumed = self._decode_frames(messages)
        except FrameError as exc:
            self._failure = str(exc)
            # Rebind rather than clear: a view into the old buffer may live on in the traceback.
            self._buffer = bytearray()
            raise
        del self._buffer[:consumed]
        return messages

    def _decode_frames(self, messages: list[Message]) -> int:
        position, size = 0, len(self._buffer)
        with memoryview(self._buffer) as view:
            while size - position >= 4:
                length = int.from_bytes(view[position : position + 4], "big")
                mac_size = 0 if self._key is None else _MAC_SIZE
                if length > self._max_frame:
                    raise FrameError(f"frame of {length} bytes is over the limit {self._max_frame}")
                if length <= _HEADER + mac_size:
                    raise FrameError(f"frame of {length} bytes is too short")
                end = position + 4 + length
                if end > size:
                    break
                mac = view[end - mac_size : end].tobytes()
                with view[position + 4 : end - mac_size] as body:
                    messages.append(self._decode_frame(body, mac))
                position = end
        return position

    def _decode_frame(self, body: memoryview, mac: bytes) -> Message:
        counter = self._counter
        self._counter += 1
        if self._key is not None and not hmac.compare_digest(self._mac(counter, body), mac):
            raise FrameAuthError(f"frame {counter} fails its MAC (wrong key, tampered or replayed)")
        version, raw_kind = body[0], body[1]
        if version != PROTOCOL_VERSION:
            raise FrameError(f"protocol version {version} is not supported ({PROTOCOL_VERSION})")
        try:
            kind = Kind(raw_kind)
        except ValueError:
            raise FrameError(f"unknown frame kind {raw_kind}") from None
        try:
            text = str(body[_HEADER:], "utf-8")
        except UnicodeDecodeError as exc:
            raise FrameError(f"{kind.name} frame: payload is not UTF-8: {exc}") from None
        try:
            return _decode_payload(kind, text)
        except SchemaError as exc:
            raise FrameError(f"{kind.name} frame: {exc}") from None
