"""The peer protocol's wire format: framing, MACs, and strict payload schemas."""

from __future__ import annotations

import contextlib
import hashlib
import hmac
import json
from typing import Any

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from rollout._core.clock import Timestamp
from rollout._core.codec import encode_flags
from rollout._core.state import Delta, Register
from rollout.peer._frames import (
    DEFAULT_MAX_FRAME,
    PROTOCOL_VERSION,
    FrameError,
    FrameReader,
    FrameWriter,
    Kind,
    Message,
    encode_body,
)

SECRET = b"cluster secret"
KEYS = [None, SECRET]
NODE = "0123456789abcdef"


def make_delta() -> Delta:
    ts = Timestamp(1_700_000_000_000, 3, 12345)
    return {
        "chat": {
            "exists": Register(ts, True),
            "reset": Register(Timestamp(1_600_000_000_000, 0, 7), None),
            "percentage": Register(ts, 25.0),
            "user:42": Register(ts, True),
            "group:admins": Register(ts, False),
            "data:owner": Register(ts, {"team": "growth", "tags": ["a", "é"]}),
        },
        "naïve flag": {"exists": Register(Timestamp(5, 0, 1), False)},
    }


DELTA = make_delta()

VALID: dict[Kind, tuple[dict[str, Any], Delta | None]] = {
    Kind.HELLO: (
        {
            "node": NODE,
            "addr": "10.0.0.1:7946",
            "protocol": 1,
            "members": ["[::1]:7946", "node-2.example.com:7946", "10.0.0.3:0"],
            "clock": 1_700_000_000_000,
        },
        None,
    ),
    Kind.DELTA: ({"seq": 7}, DELTA),
    Kind.DIGEST: (
        {"seq": 0, "clock": 5, "digests": {"chat": "ab" * 16, "naïve flag": "0" * 32}},
        None,
    ),
    Kind.PULL: ({"seq": 3, "names": ["chat", "naïve flag"]}, None),
    Kind.STATE: ({"seq": None}, DELTA),
    Kind.ACK: ({"seq": 2**63 - 1}, None),
    Kind.BYE: ({}, None),
    Kind.REFUSED: ({"seq": 4, "refused": 2}, None),
    Kind.MEMBERS: ({"members": ["[::1]:7946", "node-2.example.com:7946", "10.0.0.3:0"]}, None),
}


def stream(writer: FrameWriter) -> tuple[bytes, list[Message]]:
    """One frame of every kind, and the messages they should decode to."""
    frames = [writer.frame(kind, body, delta=delta) for kind, (body, delta) in VALID.items()]
    expected = [Message(kind, body, delta) for kind, (body, delta) in VALID.items()]
    return b"".join(frames), expected


def raw_frame(
    kind: int,
    payload: object,
    key: bytes | None = None,
    *,
    counter: int = 0,
    version: int = PROTOCOL_VERSION,
) -> bytes:
    """A frame built from the spec, independently of FrameWriter (and bypassing its checks)."""
    if isinstance(payload, bytes):
        data = payload
    elif isinstance(payload, str):
        data = payload.encode()
    else:
        data = json.dumps(payload).encode()
    body = bytes([version, kind]) + data
    mac = b""
    if key is not None:
        mac = hmac.new(key, counter.to_bytes(8, "big") + body, hashlib.sha256).digest()
    return (len(body) + len(mac)).to_bytes(4, "big") + body + mac


# --- round trips ---------------------------------------------------------------------------------


@pytest.mark.parametrize("key", KEYS)
@pytest.mark.parametrize("kind", list(Kind))
def test_every_kind_round_trips(kind: Kind, key: bytes | None) -> None:
    body, delta = VALID[kind]
    frame = FrameWriter(key).frame(kind, body, delta=delta)
    reader = FrameReader(key)
    assert reader.feed(frame) == [Message(kind, body, delta)]
    assert reader.buffered == 0


def test_decoded_deltas_equal_the_encoded_ones() -> None:
    [delta_message, state_message] = FrameReader().feed(
        FrameWriter().frame(Kind.DELTA, {"seq": 1}, delta=DELTA)
        + FrameWriter().frame(Kind.STATE, {"seq": 2}, delta=DELTA)
    )
    assert delta_message.delta == DELTA
    assert state_message.delta == DELTA
    assert delta_message.body == {"seq": 1}
    assert state_message.body == {"seq": 2}


@pytest.mark.parametrize("key", KEYS)
def test_the_wire_layout_is_the_documented_one(key: bytes | None) -> None:
    writer = FrameWriter(key)
    writer.frame(Kind.BYE)
    frame = writer.frame(Kind.ACK, {"seq": 5})
    assert frame == raw_frame(Kind.ACK, b'{"seq":5}', key, counter=1)
    assert frame[4:6] == bytes([PROTOCOL_VERSION, Kind.ACK])


def test_body_defaults_to_empty() -> None:
    assert FrameReader().feed(FrameWriter().frame(Kind.BYE)) == [Message(Kind.BYE, {})]


@pytest.mark.parametrize("key", KEYS)
def test_many_frames_in_one_feed(key: bytes | None) -> None:
    data, expected = stream(FrameWriter(key))
    assert FrameReader(key).feed(data + data[:10]) == expected


@pytest.mark.parametrize("key", KEYS)
def test_one_byte_at_a_time(key: bytes | None) -> None:
    writer = FrameWriter(key)
    frames = [writer.frame(kind, body, delta=delta) for kind, (body, delta) in VALID.items()]
    reader = FrameReader(key)
    for frame, (kind, (body, delta)) in zip(frames, VALID.items(), strict=True):
        # A truncated frame gives nothing (and no error) until its last byte arrives.
        for i in range(len(frame) - 1):
            assert reader.feed(frame[i : i + 1]) == []
            assert reader.buffered == i + 1
        assert reader.feed(frame[-1:]) == [Message(kind, body, delta)]
        assert reader.buffered == 0


@pytest.mark.parametrize("key", KEYS)
def test_split_at_every_boundary(key: bytes | None) -> None:
    writer = FrameWriter(key)
    data = writer.frame(Kind.ACK, {"seq": 1}) + writer.frame(Kind.DELTA, {"seq": 2}, delta=DELTA)
    expected = [Message(Kind.ACK, {"seq": 1}), Message(Kind.DELTA, {"seq": 2}, DELTA)]
    for split in range(len(data) + 1):
        reader = FrameReader(key)
        assert reader.feed(data[:split]) + reader.feed(data[split:]) == expected


def test_an_encoded_body_is_framed_per_connection() -> None:
    body = encode_body(Kind.DELTA, {"seq": 9}, DELTA)
    first, second = FrameWriter(b"key one"), FrameWriter(b"key two")
    frames = [first.frame_body(body), second.frame_body(body)]
    assert frames[0] != frames[1]
    assert FrameReader(b"key one").feed(frames[0]) == [Message(Kind.DELTA, {"seq": 9}, DELTA)]
    assert FrameReader(b"key two").feed(frames[1]) == [Message(Kind.DELTA, {"seq": 9}, DELTA)]


def test_rekey_switches_keys_and_restarts_the_counter() -> None:
    writer, reader = FrameWriter(), FrameReader()
    assert reader.feed(writer.frame(Kind.ACK, {"seq": 1})) == [Message(Kind.ACK, {"seq": 1})]
    writer.rekey(b"new key")
    reader.rekey(b"new key")
    frame = writer.frame(Kind.ACK, {"seq": 2})
    assert frame == raw_frame(Kind.ACK, b'{"seq":2}', b"new key", counter=0)
    assert reader.feed(frame) == [Message(Kind.ACK, {"seq": 2})]


# --- framing errors ------------------------------------------------------------------------------


def test_an_oversized_length_raises_as_soon_as_it_is_read() -> None:
    reader = FrameReader(max_frame=100)
    header = (101).to_bytes(4, "big")
    for byte in header[:3]:
        assert reader.feed(bytes([byte])) == []
    with pytest.raises(FrameError, match="101 bytes"):
        reader.feed(header[3:])


def test_the_default_limit_is_64_mib() -> None:
    assert FrameReader().feed((DEFAULT_MAX_FRAME).to_bytes(4, "big")) == []
    with pytest.raises(FrameError):
        FrameReader().feed((DEFAULT_MAX_FRAME + 1).to_bytes(4, "big"))


@pytest.mark.parametrize("key", KEYS)
def test_a_length_too_short_for_a_body_raises(key: bytes | None) -> None:
    with pytest.raises(FrameError, match="too short"):
        FrameReader(key).feed((2 if key is None else 34).to_bytes(4, "big"))


def test_unknown_version_and_kind_raise() -> None:
    for version in (1, 3):  # 1: earlier rollout 0.1 builds
        with pytest.raises(FrameError, match=f"version {version}"):
            FrameReader().feed(raw_frame(Kind.BYE, {}, version=version))
    with pytest.raises(FrameError, match="kind 10"):
        FrameReader().feed(raw_frame(10, {}))
    with pytest.raises(FrameError, match="kind 0"):
        FrameReader().feed(raw_frame(0, {}))


@pytest.mark.parametrize(
    "payload",
    [
        b'{"seq":1',
        b"\xff\xfe{}",
        b" ",
        b'{"seq":NaN}',
        b'{"seq":Infinity}',
        b"[" * 100_000,
        b"{}{}",
    ],
)
def test_payloads_that_are_not_utf8_json_raise(payload: bytes) -> None:
    with pytest.raises(FrameError, match="ACK"):
        FrameReader().feed(raw_frame(Kind.ACK, payload))


def test_a_failed_reader_stays_failed() -> None:
    reader = FrameReader()
    with pytest.raises(FrameError):
        reader.feed(raw_frame(Kind.ACK, b"nope"))
    with pytest.raises(FrameError, match="broken"):
        reader.feed(FrameWriter().frame(Kind.BYE))
    assert reader.buffered == 0


def test_an_error_after_good_frames_in_the_same_feed_still_raises() -> None:
    writer, reader = FrameWriter(SECRET), FrameReader(SECRET)
    with pytest.raises(FrameError):
        reader.feed(writer.frame(Kind.BYE) + raw_frame(Kind.BYE, {}, SECRET, counter=0))


# --- authentication ------------------------------------------------------------------------------


def test_every_flipped_bit_of_a_macd_frame_is_caught() -> None:
    frame = FrameWriter(SECRET).frame(Kind.PULL, {"seq": 1, "names": ["chat"]})
    for index in range(len(frame)):
        for bit in range(8):
            tampered = bytearray(frame)
            tampered[index] ^= 1 << bit
            # The padding completes a frame whose length field grew, so its MAC gets checked.
            with pytest.raises(FrameError):
                FrameReader(SECRET, max_frame=1024).feed(bytes(tampered) + bytes(1024))


@pytest.mark.parametrize(
    ("sender", "receiver"),
    [(b"right secret", b"wrong secret"), (SECRET, None), (None, SECRET)],
)
def test_a_different_key_fails(sender: bytes | None, receiver: bytes | None) -> None:
    with pytest.raises(FrameError):
        FrameReader(receiver).feed(FrameWriter(sender).frame(Kind.ACK, {"seq": 1}) + bytes(64))


def test_a_replayed_frame_fails_because_the_counter_moved() -> None:
    reader = FrameReader(SECRET)
    frame = FrameWriter(SECRET).frame(Kind.ACK, {"seq": 1})
    assert reader.feed(frame) == [Message(Kind.ACK, {"seq": 1})]
    with pytest.raises(FrameError, match="MAC"):
        reader.feed(frame)


def test_frames_cannot_be_reordered() -> None:
    writer = FrameWriter(SECRET)
    first, second = writer.frame(Kind.ACK, {"seq": 1}), writer.frame(Kind.ACK, {"seq": 2})
    with pytest.raises(FrameError, match="MAC"):
        FrameReader(SECRET).feed(second + first)


def test_keys_are_checked() -> None:
    with pytest.raises(TypeError, match="key"):
        FrameWriter("secret")  # type: ignore[arg-type]
    with pytest.raises(ValueError, match="empty"):
        FrameReader(b"")
    with pytest.raises(ValueError, match="max_frame"):
        FrameReader(max_frame=0)


# --- schemas -------------------------------------------------------------------------------------


def payload(kind: Kind, **changes: Any) -> dict[str, Any]:
    """The valid payload of ``kind`` as it goes on the wire, with some keys changed."""
    body, delta = VALID[kind]
    wire = dict(body)
    if delta is not None:
        wire["flags"] = encode_flags(delta)
    wire.update(changes)
    return wire


def without(kind: Kind, key: str) -> dict[str, Any]:
    wire = payload(kind)
    del wire[key]
    return wire


GOOD_FLAGS = encode_flags(DELTA)
BAD_REGISTER = {"chat": {"percentage": [1, 0, 1, 200]}}

INVALID: list[tuple[str, Kind, object]] = [
    ("not an object", Kind.BYE, []),
    ("null", Kind.ACK, None),
    ("bye extra key", Kind.BYE, {"seq": 1}),
    ("hello missing node", Kind.HELLO, without(Kind.HELLO, "node")),
    ("hello extra key", Kind.HELLO, payload(Kind.HELLO, extra=1)),
    ("node uppercase", Kind.HELLO, payload(Kind.HELLO, node=NODE.upper())),
    ("node short", Kind.HELLO, payload(Kind.HELLO, node=NODE[:-1])),
    ("node newline", Kind.HELLO, payload(Kind.HELLO, node=NODE + "\n")),
    ("node int", Kind.HELLO, payload(Kind.HELLO, node=12345)),
    ("addr no port", Kind.HELLO, payload(Kind.HELLO, addr="localhost")),
    ("addr port too big", Kind.HELLO, payload(Kind.HELLO, addr="localhost:65536")),
    ("addr negative port", Kind.HELLO, payload(Kind.HELLO, addr="localhost:-1")),
    ("addr unicode digits", Kind.HELLO, payload(Kind.HELLO, addr="localhost:\uff17\uff19")),
    ("addr no host", Kind.HELLO, payload(Kind.HELLO, addr=":7946")),
    ("addr space", Kind.HELLO, payload(Kind.HELLO, addr="local host:7946")),
    ("addr control", Kind.HELLO, payload(Kind.HELLO, addr="local\x00host:7946")),
    ("addr bare ipv6", Kind.HELLO, payload(Kind.HELLO, addr="::1:7946")),
    ("addr bad ipv6", Kind.HELLO, payload(Kind.HELLO, addr="[::g]:7946")),
    ("addr int", Kind.HELLO, payload(Kind.HELLO, addr=7946)),
    ("protocol zero", Kind.HELLO, payload(Kind.HELLO, protocol=0)),
    ("protocol bool", Kind.HELLO, payload(Kind.HELLO, protocol=True)),
    ("protocol float", Kind.HELLO, payload(Kind.HELLO, protocol=1.0)),
    ("protocol str", Kind.HELLO, payload(Kind.HELLO, protocol="1")),
    ("members str", Kind.HELLO, payload(Kind.HELLO, members="a:1")),
    ("members bad", Kind.HELLO, payload(Kind.HELLO, members=["a:1", "b"])),
    ("members null", Kind.HELLO, payload(Kind.HELLO, members=[None])),
    ("members too many", Kind.HELLO, payload(Kind.HELLO, members=["a:1"] * 1001)),
    ("clock negative", Kind.HELLO, payload(Kind.HELLO, clock=-1)),
    ("clock bool", Kind.HELLO, payload(Kind.HELLO, clock=False)),
    ("clock over int64", Kind.HELLO, payload(Kind.HELLO, clock=2**63)),
    ("delta missing seq", Kind.DELTA, without(Kind.DELTA, "seq")),
    ("delta missing flags", Kind.DELTA, without(Kind.DELTA, "flags")),
    ("delta extra key", Kind.DELTA, payload(Kind.DELTA, names=[])),
    ("delta seq negative", Kind.DELTA, payload(Kind.DELTA, seq=-1)),
    ("delta seq bool", Kind.DELTA, payload(Kind.DELTA, seq=True)),
    ("delta seq null", Kind.DELTA, payload(Kind.DELTA, seq=None)),
    ("delta flags list", Kind.DELTA, payload(Kind.DELTA, flags=[])),
    ("delta bad register", Kind.DELTA, payload(Kind.DELTA, flags=BAD_REGISTER)),
    ("delta bad flag name", Kind.DELTA, payload(Kind.DELTA, flags={"": GOOD_FLAGS["chat"]})),
    ("delta unknown key", Kind.DELTA, payload(Kind.DELTA, flags={"a": {"colour": [1, 0, 1, 1]}})),
    ("digest missing clock", Kind.DIGEST, without(Kind.DIGEST, "clock")),
    ("digest clock str", Kind.DIGEST, payload(Kind.DIGEST, clock="5")),
    ("digests list", Kind.DIGEST, payload(Kind.DIGEST, digests=["ab" * 16])),
    ("digest uppercase", Kind.DIGEST, payload(Kind.DIGEST, digests={"a": "AB" * 16})),
    ("digest short", Kind.DIGEST, payload(Kind.DIGEST, digests={"a": "ab" * 15})),
    ("digest int", Kind.DIGEST, payload(Kind.DIGEST, digests={"a": 5})),
    ("digest empty name", Kind.DIGEST, payload(Kind.DIGEST, digests={"": "ab" * 16})),
    ("digest control name", Kind.DIGEST, payload(Kind.DIGEST, digests={"a\x01": "ab" * 16})),
    ("pull names str", Kind.PULL, payload(Kind.PULL, names="chat")),
    ("pull name int", Kind.PULL, payload(Kind.PULL, names=["chat", 5])),
    ("pull name empty", Kind.PULL, payload(Kind.PULL, names=[""])),
    ("pull name too long", Kind.PULL, payload(Kind.PULL, names=["x" * 256])),
    ("pull seq bool", Kind.PULL, payload(Kind.PULL, seq=False)),
    ("state seq str", Kind.STATE, payload(Kind.STATE, seq="1")),
    ("state missing flags", Kind.STATE, without(Kind.STATE, "flags")),
    ("state extra key", Kind.STATE, payload(Kind.STATE, clock=1)),
    ("state bad register", Kind.STATE, payload(Kind.STATE, flags=BAD_REGISTER)),
    ("members missing", Kind.MEMBERS, {}),
    ("members extra key", Kind.MEMBERS, {"members": [], "addr": "a:1"}),
    ("members not a list", Kind.MEMBERS, {"members": "a:1"}),
    ("members bad address", Kind.MEMBERS, {"members": ["a:1", "b"]}),
    ("members null address", Kind.MEMBERS, {"members": [None]}),
    ("members too many", Kind.MEMBERS, {"members": ["a:1"] * 1001}),
    ("ack float", Kind.ACK, {"seq": 1.5}),
    ("ack missing seq", Kind.ACK, {}),
    ("ack extra key", Kind.ACK, {"seq": 1, "flags": {}}),
]


@pytest.mark.parametrize("key", KEYS)
@pytest.mark.parametrize(("case", "kind", "wire"), INVALID, ids=[case for case, _, _ in INVALID])
def test_schema_violations_raise(case: str, kind: Kind, wire: object, key: bytes | None) -> None:
    with pytest.raises(FrameError, match=kind.name):
        FrameReader(key).feed(raw_frame(kind, wire, key))


def encodable(kind: Kind, wire: object) -> bool:
    """Whether a bad wire payload can be offered to encode_body (which takes flags as a Delta)."""
    if not isinstance(wire, dict):
        return False
    if kind in (Kind.DELTA, Kind.STATE):
        return wire.get("flags") == GOOD_FLAGS
    return "flags" not in wire


@pytest.mark.parametrize(
    ("case", "kind", "wire"), [case for case in INVALID if encodable(case[1], case[2])]
)
def test_encoding_refuses_what_decoding_would(case: str, kind: Kind, wire: dict[str, Any]) -> None:
    body = {key: value for key, value in wire.items() if key != "flags"}
    delta = DELTA if kind in (Kind.DELTA, Kind.STATE) else None
    with pytest.raises(ValueError, match=kind.name):
        encode_body(kind, body, delta)


@pytest.mark.parametrize(
    "addr", ["[::1]:7946", "[fe80::1%eth0]:1", "localhost:0", "10.0.0.1:65535", "nœud:7946"]
)
def test_addresses_that_are_accepted(addr: str) -> None:
    body = payload(Kind.HELLO, addr=addr, members=[addr])
    assert FrameReader().feed(raw_frame(Kind.HELLO, body)) == [Message(Kind.HELLO, body)]


def test_encoding_checks_the_delta_and_its_presence() -> None:
    with pytest.raises(ValueError, match="needs a delta"):
        encode_body(Kind.DELTA, {"seq": 1})
    with pytest.raises(ValueError, match="takes no delta"):
        encode_body(Kind.ACK, {"seq": 1}, DELTA)
    with pytest.raises(ValueError, match="flags"):
        encode_body(Kind.DELTA, {"seq": 1, "flags": GOOD_FLAGS}, DELTA)
    # Outgoing registers are not checked again (they come from our own replica); a receiver
    # checks everything, so a bad one cannot reach a peer's state.
    bad: Delta = {"chat": {"percentage": Register(Timestamp(1, 0, 1), 200.0)}}
    with pytest.raises(FrameError, match="0 to 100"):
        FrameReader().feed(FrameWriter().frame_body(encode_body(Kind.DELTA, {"seq": 1}, bad)))
    nan: Delta = {"chat": {"data:x": Register(Timestamp(1, 0, 1), float("nan"))}}
    with pytest.raises(ValueError, match="DELTA"):
        encode_body(Kind.DELTA, {"seq": 1}, nan)
    unserialisable: Delta = {"chat": {"data:x": Register(Timestamp(1, 0, 1), object())}}
    with pytest.raises(ValueError, match="JSON"):
        encode_body(Kind.DELTA, {"seq": 1}, unserialisable)
    with pytest.raises(ValueError, match="encode_body"):
        FrameWriter().frame_body(b"\x09\x07{}")  # not our protocol version


# --- arbitrary input -----------------------------------------------------------------------------

json_values = st.recursive(
    st.none() | st.booleans() | st.integers() | st.floats() | st.text(max_size=20),
    lambda inner: st.lists(inner, max_size=4) | st.dictionaries(st.text(max_size=8), inner),
    max_leaves=12,
)
payloads = st.one_of(
    st.binary(max_size=60),
    st.sampled_from([json.dumps(wire) for _, _, wire in INVALID]),
    st.sampled_from([json.dumps(payload(kind)) for kind in Kind]),
    st.dictionaries(st.sampled_from(["seq", "flags", "names", "node", "x"]), json_values).map(
        json.dumps
    ),
)
frames = st.builds(raw_frame, st.integers(0, 9), payloads, version=st.sampled_from([0, 1, 1, 1, 2]))
valid_frames = st.sampled_from([raw_frame(kind, payload(kind)) for kind in Kind])
chunks = st.lists(st.binary(max_size=40) | frames | valid_frames, max_size=6)


@settings(max_examples=300, deadline=None)
@given(data=chunks, cuts=st.lists(st.integers(0, 400), max_size=5))
def test_arbitrary_bytes_give_messages_or_frame_error(data: list[bytes], cuts: list[int]) -> None:
    blob = b"".join(data)
    reader = FrameReader(max_frame=1 << 20)
    start = 0
    try:
        for cut in [*sorted(cuts), len(blob)]:
            for message in reader.feed(blob[start:cut]):
                # Whatever decodes is valid: it encodes again, to the same message (flags with
                # no registers aside, which say nothing and are not sent).
                body = encode_body(message.kind, message.body, message.delta)
                [again] = FrameReader().feed(FrameWriter().frame_body(body))
                assert (again.kind, again.body) == (message.kind, message.body)
                if message.delta is not None:
                    assert again.delta == {name: r for name, r in message.delta.items() if r}
            start = max(start, cut)
    except FrameError:
        pass


@settings(max_examples=100, deadline=None)
@given(st.binary(max_size=200), st.sampled_from(KEYS))
def test_arbitrary_bytes_never_crash_a_keyed_reader(data: bytes, key: bytes | None) -> None:
    with contextlib.suppress(FrameError):
        FrameReader(key, max_frame=1000).feed(data)


@pytest.mark.parametrize(
    "payload",
    [
        # Lone surrogates (JSON escapes): in a data value, a user id, a flag name, a field.
        b'{"seq":1,"flags":{"chat":{"data:k":[1,0,1,"x\\ud800"]}}}',
        b'{"seq":1,"flags":{"chat":{"user:\\udfff":[1,0,1,true]}}}',
        b'{"seq":1,"flags":{"x\\ud800":{"exists":[1,0,1,true]}}}',
        b'{"seq":1,"flags":{},"\\ud800":1}',
        # Escapes in upper case are escapes too.
        b'{"seq":1,"flags":{"chat":{"data:k":[1,0,1,"\\uD800"]}}}',
        b'{"seq":1,"flags":{"chat":{"data:k":[1,0,1,"\\uDbFf"]}}}',
        # A data value nested past the limit (but not past the parser).
        b'{"seq":1,"flags":{"chat":{"data:k":[1,0,1,' + b"[" * 40 + b"]" * 40 + b"]}}}",
        # A flag name the naming rule refuses.
        b'{"seq":1,"flags":{"chat ":{"exists":[1,0,1,true]}}}',
    ],
    ids=[
        "data value",
        "user id",
        "flag name",
        "field",
        "upper case",
        "mixed case",
        "data 40 deep",
        "name rule",
    ],
)
def test_a_delta_that_is_not_unicode_text_or_too_deep_raises(payload: bytes) -> None:
    with pytest.raises(FrameError, match="DELTA"):
        FrameReader().feed(raw_frame(Kind.DELTA, payload))


@pytest.mark.parametrize(
    ("escaped", "text"),
    [("\\u00e9", "\u00e9"), ("\\ud83d\\ude00", "\U0001f600"), ("\\\\ud800", "\\ud800")],
    ids=["letter", "surrogate pair", "escaped backslash"],
)
def test_escapes_that_make_unicode_text_decode(escaped: str, text: str) -> None:
    # Checked for lone surrogates only when an escape could make one: these are whole text.
    payload = f'{{"seq":1,"flags":{{"chat":{{"data:k":[1,0,1,"{escaped}"]}}}}}}'
    [message] = FrameReader().feed(raw_frame(Kind.DELTA, payload))
    assert message.delta is not None
    assert message.delta["chat"]["data:k"].value == text
