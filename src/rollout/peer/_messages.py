"""The messages of the peer-to-peer protocol and their schemas, checked strictly both ways.

A payload comes from the network, so every field is checked (exact keys, types, ranges; a
bool is not an int) before anything reads it; a payload we send is checked too, since a frame
the peer rejects would close the connection again and again. Framing and MACs are
:mod:`rollout.peer._frames`.
"""

from __future__ import annotations

import enum
import ipaddress
import re
from collections.abc import Callable, Mapping
from dataclasses import dataclass
from typing import Any, Final

from .._core.codec import entity_name
from .._core.state import Delta
from .._core.validate import MAX_NAME_LENGTH

__all__ = ["MAX_MEMBERS", "SCHEMAS", "Kind", "Message", "SchemaError", "check_keys"]

MAX_MEMBERS: Final = 1000
# Counters and clocks go to peers written in any language: keep them in a signed 64-bit integer.
_MAX_INT: Final = 2**63 - 1
_NODE = re.compile(r"[0-9a-f]{16}")
_HEX32 = re.compile(r"[0-9a-f]{32}")  # digests
_PORT = re.compile(r"[0-9]{1,5}")


class Kind(enum.IntEnum):
    HELLO = 1
    DELTA = 2
    DIGEST = 3
    PULL = 4
    STATE = 5
    ACK = 6
    BYE = 7
    #: Sent just before the ACK of an exchange in which the receiver refused registers (stamped
    #: too far ahead of its clock: held in its quarantine), so wait_synced does not count them
    #: as delivered. A kind of its own, so an ACK stays what it was.
    REFUSED = 8
    #: The addresses of the members the sender is connected to, sent after the handshake
    #: (see :mod:`rollout.peer._mesh`): membership learned from one seed reaches every node.
    MEMBERS = 9


@dataclass(frozen=True)
class Message:
    """One decoded frame. For DELTA and STATE, ``flags`` is not in ``body``: it is ``delta``."""

    kind: Kind
    body: dict[str, Any]
    delta: Delta | None = None


class SchemaError(Exception):
    """A schema violation; becomes FrameError on the way in and ValueError on the way out."""


def _integer(body: Mapping[str, Any], key: str, minimum: int = 0, *, null: bool = False) -> None:
    value = body[key]
    if value is None and null:
        return
    if isinstance(value, bool) or not isinstance(value, int) or not minimum <= value <= _MAX_INT:
        raise SchemaError(f"{key!r} must be an int from {minimum} to 2**63-1, got {value!r}")


_CONTROL = re.compile("[\x00-\x1f\x7f-\x9f]")


def _hex(value: object, pattern: re.Pattern[str], what: str) -> None:
    if not isinstance(value, str) or not pattern.fullmatch(value):
        raise SchemaError(f"{what} must be {pattern.pattern} (lowercase hex), got {value!r}")


def _bad_host(host: str) -> bool:
    # An unbracketed ':' would make the port ambiguous (is "::1:80" port 80 or 1?).
    bad = (":", "[", "]", "/")
    return (
        not host
        or len(host) > 255
        or any(c.isspace() or ord(c) < 32 or 127 <= ord(c) < 160 or c in bad for c in host)
    )


def _address(value: object, what: str) -> None:
    """``host:port``: a name or IPv4 address, or an IPv6 literal in brackets, and a port."""
    if not isinstance(value, str):
        raise SchemaError(f"{what} must be a 'host:port' string, got {value!r}")
    host, colon, port = value.rpartition(":")
    if not colon or not _PORT.fullmatch(port) or int(port) > 65535:
        raise SchemaError(f"{what} must end in ':port' with a port from 0 to 65535, got {value!r}")
    if host.startswith("[") and host.endswith("]"):
        try:
            ipaddress.IPv6Address(host[1:-1])
        except ValueError:
            raise SchemaError(f"{what} has a bad IPv6 literal, got {value!r}") from None
    elif _bad_host(host):
        raise SchemaError(f"{what} has a bad host, got {value!r}")


def _name(value: object, what: str) -> str:
    try:
        return entity_name(value, what)  # a flag, or the rules entity: both are replicated
    except (TypeError, ValueError) as exc:
        raise SchemaError(str(exc)) from None


def _check_hello(body: Mapping[str, Any]) -> None:
    _hex(body["node"], _NODE, "'node'")
    if body["addr"] is not None:
        _address(body["addr"], "'addr'")
    _integer(body, "protocol", minimum=1)
    _check_members(body)
    _integer(body, "clock")


def _check_members(body: Mapping[str, Any]) -> None:
    """``members``, as a HELLO and a MEMBERS frame carry it."""
    members = body["members"]
    if not isinstance(members, list):
        raise SchemaError(f"'members' must be a list of 'host:port' strings, got {members!r}")
    if len(members) > MAX_MEMBERS:
        raise SchemaError(f"'members' must list at most {MAX_MEMBERS}, got {len(members)}")
    for member in members:
        _address(member, "a member")


def _check_digest(body: Mapping[str, Any]) -> None:
    _integer(body, "seq")
    _integer(body, "clock")
    digests = body["digests"]
    if not isinstance(digests, dict):
        raise SchemaError(f"'digests' must map flag names to hashes, got {type(digests).__name__}")
    # Runs for every digest of every anti-entropy round (1,000 flags: 1,000 entries), so the
    # common, valid case is checked in bulk; the detailed message is built only on failure.
    fullmatch, control = _HEX32.fullmatch, _CONTROL.search
    for name, digest in digests.items():
        if (
            type(digest) is not str
            or not fullmatch(digest)
            or type(name) is not str
            or not 0 < len(name) <= MAX_NAME_LENGTH
            or control(name)
        ):
            _hex(digest, _HEX32, f"the digest of {_name(name, 'a flag name in digests')!r}")
            _name(name, "a flag name in digests")


def _check_pull(body: Mapping[str, Any]) -> None:
    _integer(body, "seq")
    names = body["names"]
    if not isinstance(names, list):
        raise SchemaError(f"'names' must be a list of flag names, got {type(names).__name__}")
    for name in names:
        _name(name, "a name in 'names'")


def _check_refused(body: Mapping[str, Any]) -> None:
    _integer(body, "seq")
    _integer(body, "refused", minimum=1)


_HELLO_KEYS = frozenset({"node", "addr", "protocol", "members", "clock"})
# kind -> (keys besides "flags", has flags, check). DELTA and STATE carry flags as a Delta.
SCHEMAS: Final[dict[Kind, tuple[frozenset[str], bool, Callable[[Mapping[str, Any]], None]]]] = {
    Kind.HELLO: (_HELLO_KEYS, False, _check_hello),
    Kind.DELTA: (frozenset({"seq"}), True, lambda body: _integer(body, "seq")),
    Kind.DIGEST: (frozenset({"seq", "clock", "digests"}), False, _check_digest),
    Kind.PULL: (frozenset({"seq", "names"}), False, _check_pull),
    Kind.STATE: (frozenset({"seq"}), True, lambda body: _integer(body, "seq", null=True)),
    Kind.ACK: (frozenset({"seq"}), False, lambda body: _integer(body, "seq")),
    Kind.BYE: (frozenset(), False, lambda _body: None),
    Kind.REFUSED: (frozenset({"seq", "refused"}), False, _check_refused),
    Kind.MEMBERS: (frozenset({"members"}), False, _check_members),
}


def check_keys(body: Mapping[str, Any], expected: frozenset[str]) -> None:
    keys = set(body)
    if keys != expected:
        missing, extra = sorted(expected - keys), sorted(keys - expected, key=repr)
        raise SchemaError(f"keys must be {sorted(expected)}: missing {missing}, extra {extra}")
