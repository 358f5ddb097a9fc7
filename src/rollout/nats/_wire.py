"""What the NATS transport puts on the wire: names, subjects, and messages of bounded size.

Pure (no nats-py): the transport and its tests share it.

* A namespace ``app`` owns the subjects ``rollout.app.f.<flag>`` and the JetStream stream
  ``ROLLOUT_app`` that captures them; two applications on one NATS use two namespaces.
* A flag's subject token is its name in URL-safe base64 without padding: any flag name (``/``,
  ``.``, spaces, any Unicode) becomes a valid token, and two names never share a subject, which
  matters because a rollup (compaction) purges the earlier messages of one subject.
* A message body is the replication format of ``export()`` (rollout._core.codec) holding one
  flag, so decoding checks everything before anything is merged. A change is split into several
  such messages when it is larger than the limit: registers merge one by one, so every part is
  a change of its own and the parts may arrive in any order.
"""

from __future__ import annotations

import base64
import binascii
import json
import re
from collections.abc import Iterator, Mapping

from .._core.codec import FORMAT, VERSION, decode, encode_flags
from .._core.state import Delta, Register
from ..errors import FormatError

__all__ = [
    "ORIGIN",
    "ROLLUP",
    "check_namespace",
    "decode_message",
    "flag_of_subject",
    "flag_subject",
    "split_flag",
    "stream_name",
    "subject_prefix",
]

#: Header: the node id (hex) of the process that published the message.
ORIGIN = "Rollout-Origin"
#: Header: this message is a flag's whole state and replaced the subject's earlier messages.
ROLLUP = "Rollout-Rollup"

_NAMESPACE = re.compile(r"[A-Za-z0-9_-]{1,64}")
#: The bytes of a message body around its registers: {"flags":{"<name>":{...}},...}.
_ENVELOPE = 64


def check_namespace(namespace: object) -> str:
    if not isinstance(namespace, str):
        raise TypeError(f"namespace must be a str, got {namespace!r}")
    if _NAMESPACE.fullmatch(namespace) is None:
        raise ValueError(
            f"namespace must be 1 to 64 letters, digits, '-' or '_' (it names a NATS subject "
            f"and a stream), got {namespace!r}"
        )
    return namespace


def subject_prefix(namespace: str) -> str:
    return f"rollout.{namespace}.f"


def stream_name(namespace: str) -> str:
    return f"ROLLOUT_{namespace}"


def flag_subject(prefix: str, name: str) -> str:
    token = base64.urlsafe_b64encode(name.encode()).rstrip(b"=").decode("ascii")
    return f"{prefix}.{token}"


def flag_of_subject(prefix: str, subject: str) -> str | None:
    """The flag a subject of ``prefix`` is for; None for a subject that is not one of ours."""
    head, dot, token = subject.rpartition(".")
    if head != prefix or not dot or not token:
        return None
    try:
        raw = base64.urlsafe_b64decode(token + "=" * (-len(token) % 4))
        return raw.decode()
    except (binascii.Error, ValueError):
        return None


def decode_message(prefix: str, subject: str, data: bytes) -> Delta:
    """The change a message carries: :class:`FormatError` unless it is a well-formed change of
    exactly the flag its subject names (anything else on our subjects is not ours)."""
    name = flag_of_subject(prefix, subject)
    if name is None:
        raise FormatError(f"the subject {subject!r} is not one of {prefix}.<flag>")
    delta = decode(data)
    if set(delta) - {name}:
        raise FormatError(f"a message on the subject of flag {name!r} carries other flags")
    return delta


def split_flag(
    name: str, registers: Mapping[str, Register], limit: int
) -> tuple[list[bytes], list[str]]:
    """The bodies carrying ``registers`` of flag ``name``, each at most ``limit`` bytes, and the
    keys of registers too large for any message on their own (the caller reports them)."""
    bodies: list[bytes] = []
    too_large: list[str] = []
    flag_json = json.dumps(name, separators=(",", ":"))
    room = limit - _ENVELOPE - len(flag_json.encode())
    part: dict[str, Register] = {}
    size = 0
    for key, register in _sorted(registers):
        # The size of `"key":[...],` in the body: json.dumps as encode() writes it.
        entry = len(
            json.dumps({key: next(iter(encode_flags({name: {key: register}})[name].values()))})
        )
        if entry > room:
            too_large.append(key)
            continue
        if part and size + entry > room:
            bodies.append(_body(name, part))
            part, size = {}, 0
        part[key] = register
        size += entry
    if part:
        bodies.append(_body(name, part))
    return bodies, too_large


def _sorted(registers: Mapping[str, Register]) -> Iterator[tuple[str, Register]]:
    # Watermarks and `exists` first: a receiver that has merged only the first part of a large
    # change sees the flag's reset before the users that follow it, never the other way round.
    return iter(sorted(registers.items(), key=lambda item: (":" in item[0], item[0])))


def _body(name: str, registers: dict[str, Register]) -> bytes:
    document = {"format": FORMAT, "version": VERSION, "flags": encode_flags({name: registers})}
    return json.dumps(document, sort_keys=True, separators=(",", ":")).encode()
