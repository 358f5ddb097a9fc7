"""The replication format: what ``export()`` writes and ``merge()`` reads.

JSON, versioned, every register with its full timestamp::

    {"format": "rollout", "version": 1,
     "flags": {"chat": {"exists": [wall, counter, node, true],
                        "reset": [wall, counter, node],
                        "user:42": [wall, counter, node, true]}}}

A register without a value (the watermarks) is three numbers long. Decoding checks everything
before anything is applied, so a corrupt blob changes nothing.
"""

from __future__ import annotations

import gc
from itertools import islice

from ..errors import FormatError
from .clock import Timestamp
from .keys import (
    EXISTS,
    PERCENTAGE,
    RULES_ENTITY,
    TARGETING_PREFIXES,
    TIME,
    WATERMARKS,
)
from .lazy import LazyModule
from .state import Delta, Register
from .validate import flag_name, text_problem

TYPE_CHECKING = False
if TYPE_CHECKING:
    import json
    from collections.abc import Mapping
    from typing import Any

    from . import register_checks as _checks
    from .member_runs import Run
else:
    json = LazyModule("json")  # loaded by the first data value checked or encoded (lazy.py)
    _checks = LazyModule("rollout._core.register_checks")  # by the first register checked

__all__ = [
    "FORMAT",
    "VERSION",
    "check_flag",
    "decode",
    "encode",
    "entity_name",
]

FORMAT = "rollout"
VERSION = 1
_MAX_INT64 = 2**63 - 1


def encode(delta: Delta) -> bytes:
    document = {"format": FORMAT, "version": VERSION, "flags": encode_flags(delta)}
    return json.dumps(document, sort_keys=True, separators=(",", ":")).encode()


def encode_flags(delta: Delta) -> dict[str, dict[str, list[Any]]]:
    """The ``flags`` part of the format as plain JSON data (the peer protocol embeds it)."""
    return {name: _encode_registers(regs) for name, regs in delta.items() if regs}


def _encode_registers(registers: Mapping[str, Register]) -> dict[str, list[Any]]:
    # Registers are shared where they are alike (a million users added at once hold one), so
    # their JSON list is built once each: a flag of a million users encodes in half the time.
    encoded: dict[str, list[Any]] = {}
    built: dict[int, list[Any]] = {}
    for key, register in registers.items():
        if key in WATERMARKS:
            encoded[key] = [*register.ts]
            continue
        part = built.get(id(register))  # the registers outlive this call: ids stay unique
        if part is None:
            part = built[id(register)] = [*register.ts, register.value]
        encoded[key] = part
    return encoded


def decode(data: bytes) -> Delta:
    """Parse and check a blob; raise :class:`FormatError` naming the first problem."""
    if not isinstance(data, bytes | bytearray | memoryview):
        raise TypeError(f"data must be bytes from export(), got {type(data).__name__}")
    timestamps: dict[tuple[int, int, int], Timestamp] = {}
    try:
        document, streamed = _parse(bytes(data), timestamps)
    except (UnicodeDecodeError, ValueError) as exc:
        raise FormatError(f"not a rollout export: {exc}") from exc
    except RecursionError:  # valid JSON nested deeper than the parser can take
        raise FormatError("not a rollout export: nested too deeply") from None
    if not isinstance(document, dict) or document.get("format") != FORMAT:
        raise FormatError("not a rollout export: the 'format' field is missing or wrong")
    version = document.get("version")
    if version != VERSION:
        raise FormatError(
            f"rollout export version {version!r} is not supported (this library reads {VERSION})"
        )
    flags = document.get("flags")
    if streamed and isinstance(flags, dict):  # decoded already, flag by flag, as parsed
        delta: Delta = {}
        for decoded in flags.values():
            if isinstance(decoded, FormatError):
                raise decoded  # the first problem in the document's order, as decode_flags
            delta[decoded[0]] = decoded[1]
        return delta
    return decode_flags(flags)


def decode_flags(flags: object) -> Delta:
    """Check and convert the ``flags`` part of the format; :class:`FormatError` if malformed."""
    if not isinstance(flags, dict):
        raise FormatError("rollout export: 'flags' must be an object")
    delta: Delta = {}
    timestamps: dict[tuple[int, int, int], Timestamp] = {}
    for raw_name, registers in flags.items():
        name, decoded = _decode_flag(raw_name, registers, timestamps)
        delta[name] = decoded
    return delta


def _decode_flag(
    raw_name: object, registers: object, timestamps: dict[tuple[int, int, int], Timestamp]
) -> tuple[str, dict[str, Register]]:
    try:
        name = entity_name(raw_name, "flag name")
    except (TypeError, ValueError) as exc:
        raise FormatError(f"rollout export: {exc}") from exc
    if not isinstance(registers, dict):
        raise FormatError(f"rollout export: flag {name!r} must map keys to registers")
    return name, _decode_registers(name, registers, timestamps)


def _decode_registers(
    name: str, registers: dict[Any, Any], timestamps: dict[tuple[int, int, int], Timestamp]
) -> dict[str, Register]:
    """One flag's registers. The common register by far (a listed user, an exclusion, a group:
    ``[wall, counter, node, true]``) is checked by :func:`_member_register`, as
    :func:`_decode_register` would, or inline when it equals the one before: a flag of a
    million users decodes in a third of the time (an export's are mostly decoded in bulk
    instead, :func:`_decode_runs`). Timestamps are shared through
    ``timestamps``: one write stamps all its registers alike (a million users added at once),
    and a Timestamp and a Register per register would be most of the decoded registers' memory."""
    decoded: dict[str, Register] = {}
    # The Register of a listed user, shared the same way: (ts, True) alike for all of them.
    members: dict[tuple[int, int, int, bool], Register] = {}
    rules = name == RULES_ENTITY  # holds rules and history only: never the fast path
    prefixes, bare = TARGETING_PREFIXES, _BARE_PREFIXES
    # The last member register checked in full, and its Register: a bulk write's next user
    # holds an equal one, found equal (same numbers; the types checked apart, as 1 == True).
    last: list[Any] | None = None
    last_shared: Register | None = None
    for key, raw in registers.items():
        if (
            not rules
            and type(raw) is list
            and type(key) is str
            and key.startswith(prefixes)
            and key not in bare  # a member key names its member
            and key.isascii()  # text_problem: only non-ASCII text can hold a lone surrogate
        ):
            # The key is a copy, not the parser's string: kept apart from the parse's garbage
            # (rollout._core.export_parse), whose arenas it would keep from the system. ASCII,
            # checked above: the round trip is exact.
            if (
                raw == last
                and raw[3] is last[3]  # raw == last: last is a list
                and type(raw[0]) is int
                and type(raw[1]) is int
                and type(raw[2]) is int
            ):
                decoded[key.encode().decode()] = last_shared  # type: ignore[assignment]
                continue
            shared = _member_register(raw, members, timestamps)
            if shared is not None:
                last, last_shared = raw, shared
                decoded[key.encode().decode()] = shared
                continue
        elif key == EXISTS and not rules and type(raw) is list:
            # Every write that creates or deletes a flag holds it, and it holds true or false
            # as a member register does: the same check, and the constant key. (The rules
            # entity holds no such register: the full check names the problem.)
            shared = _member_register(raw, members, timestamps)
            if shared is not None:
                decoded[EXISTS] = shared
                continue
        decoded[key] = _decode_register(name, key, raw, timestamps)
    return decoded


def _member_register(
    raw: list[Any],
    members: dict[tuple[int, int, int, bool], Register],
    timestamps: dict[tuple[int, int, int], Timestamp],
) -> Register | None:
    """The Register of a member's ``[wall, counter, node, true|false]``, shared through
    ``members`` and ``timestamps``; None when ``raw`` is not one (the full check names why)."""
    if len(raw) != 4 or type(raw[3]) is not bool:
        return None
    wall, counter, node, value = raw
    if not _is_stamp(wall, counter, node):
        return None
    parts = (wall, counter, node, value)
    shared = members.get(parts)
    if shared is None:
        ts = timestamps.setdefault(parts[:3], Timestamp(wall, counter, node))
        shared = members[parts] = Register(ts, value)
    return shared


def _is_stamp(wall: object, counter: object, node: object) -> bool:
    """Whether these are a timestamp's parts: ints from 0 to 2**63-1. type(), not isinstance():
    a bool is not one (and JSON gives plain ints only)."""
    return (
        type(wall) is int
        and type(counter) is int
        and type(node) is int
        and 0 <= wall <= _MAX_INT64
        and 0 <= counter <= _MAX_INT64
        and 0 <= node <= _MAX_INT64
    )


def _decode_runs(
    name: str,
    others: dict[str, Any],
    runs: list[tuple[int, Run]],
    timestamps: dict[tuple[int, int, int], Timestamp],
) -> dict[str, Register] | None:
    """A flag's registers from its runs of member registers (rollout._core.member_runs), each
    after as many of its ``others`` (parsed by json) as it says, as :func:`_decode_registers`
    would decode the flag; None when it has a problem, or a key of a run is given twice: then
    json's parse of the whole flag decides (which value counts, which problem is named).

    Each distinct register text of a run is parsed and checked once, which checks the run's
    keys too (rollout._core.member_runs). The keys are the split's strings, not copies as
    :func:`_decode_registers` makes, although they pin some pools of the register texts they
    were interleaved with: after a merge of a million users, 290 MB of RSS into memory (296
    MB with json's parse and copied keys) and into Redis (235 MB). Copied (a join and a split,
    made one after another), 267 and 279 MB, for 9% more instructions and a 40-60 MB higher
    peak: every process stays under 400 MB either way."""
    if name == RULES_ENTITY:
        return None  # it holds no member register: a run is a problem to name
    try:
        entity_name(name, "flag name")  # as _decode_flag checks it
    except (TypeError, ValueError):
        return None  # json's parse then names the problem, as for any other flag
    try:
        rest = iter(_decode_registers(name, others, timestamps).items())
    except FormatError:
        return None
    decoded: dict[str, Register] = {}
    members: dict[tuple[int, int, int, bool], Register] = {}
    given, done = len(others), 0
    for position, run in runs:
        decoded.update(islice(rest, position - done))
        done = position
        shared: dict[str, Register] = {}
        for text in set(run.registers):
            register = _run_register(text, members, timestamps)
            if register is None:
                return None
            shared[text] = register
        decoded.update(zip(run.keys, map(shared.__getitem__, run.registers), strict=True))
        given += len(run.keys)
    decoded.update(rest)
    return decoded if len(decoded) == given else None


def _run_register(
    text: str,
    members: dict[tuple[int, int, int, bool], Register],
    timestamps: dict[tuple[int, int, int], Timestamp],
) -> Register | None:
    """The Register of a run's register text, ``:[wall,counter,node,true],``; None when the
    text is not one."""
    if not (text.startswith(":[") and text.endswith("],")):
        return None
    try:
        raw = json.loads(text[1:-1])
    except ValueError:
        return None
    return _member_register(raw, members, timestamps) if type(raw) is list else None


def entity_name(name: object, argument: str) -> str:
    """A replicated entity's name: a flag name, or the rules entity (keys.RULES_ENTITY), which
    the naming rule refuses for a flag."""
    return RULES_ENTITY if name == RULES_ENTITY else flag_name(name, argument)


def check_flag(name: str, registers: Mapping[str, Register]) -> None:
    """The checks :func:`decode_flags` makes, for registers a store decoded itself (a store
    another process or program can write): :class:`FormatError` naming the first problem."""
    try:
        entity_name(name, "flag name")
    except ValueError as exc:
        raise FormatError(f"stored flag: {exc}") from None
    for key, register in registers.items():
        where = f"stored register {key!r} of flag {name!r}"
        if not _checks.known_key(key) or not _checks.belongs(name, key):
            raise FormatError(f"{where}: unknown register key")
        problem = text_problem(key)
        if problem is not None:
            raise FormatError(f"{where}: the key {problem}")
        _checks.check_value(where, key, register.value)


def _parse(data: bytes, timestamps: dict[tuple[int, int, int], Timestamp]) -> tuple[Any, bool]:
    """The JSON document, and whether its flags are decoded already.

    An export is parsed a flag at a time, each decoded as soon as it is parsed
    (rollout._core.export_parse: what a merge keeps is then not scattered among the parse's
    garbage); anything else is parsed whole, for json's own answer or error. A big document (an
    export of a million users is 56 MB) is parsed with the cyclic garbage collector paused:
    parsing makes millions of lists, and the collections they trigger walk every one of them
    again and again (2.5x the parse's time), while JSON can hold no reference cycle for a
    collection to find. The collector's state is restored after."""
    pause = len(data) >= _PAUSE_GC_FROM and gc.isenabled()
    if pause:
        gc.disable()
    try:
        encoding = json.detect_encoding(data)
        decoder = json.JSONDecoder(parse_constant=_reject_constant)

        def on_flag(
            name: str, registers: Any, runs: list[tuple[int, Run]]
        ) -> tuple[str, dict[str, Register]] | FormatError | None:
            if runs:  # None: a problem to name, or a key given twice: json's parse decides
                decoded = _decode_runs(name, registers, runs, timestamps)
                return None if decoded is None else (name, decoded)
            try:
                return _decode_flag(name, registers, timestamps)
            except FormatError as exc:  # raised after the format and version are checked
                return exc

        # The text is the parser's alone (export_parse: it lets it go past a big flag). Imported
        # here: a Rollout that never reads an export does not load it.
        from .export_parse import parse_by_flag

        document = parse_by_flag(data.decode(encoding, "surrogatepass"), decoder, on_flag)
        if document is not None:
            return document, True
        return decoder.decode(data.decode(encoding, "surrogatepass")), False  # as json.loads
    finally:
        if pause:
            gc.enable()


_PAUSE_GC_FROM = 1 << 20  # bytes: below, a parse allocates too little for it to matter


def _reject_constant(constant: str) -> Any:
    raise ValueError(f"{constant} is not valid JSON")


def _decode_register(
    name: str, key: object, raw: object, timestamps: dict[tuple[int, int, int], Timestamp]
) -> Register:
    """One register, its Timestamp shared through ``timestamps`` (see _decode_registers)."""
    where = f"rollout export: register {key!r} of flag {name!r}"
    if not isinstance(key, str) or not _checks.known_key(key) or not _checks.belongs(name, key):
        raise FormatError(f"{where}: unknown register key")
    if not key.isascii() and (problem := text_problem(key)) is not None:
        raise FormatError(f"{where}: the key {problem}")
    watermark = key in WATERMARKS
    if not isinstance(raw, list) or len(raw) != (3 if watermark else 4):
        raise FormatError(
            f"{where}: expected [wall, counter, node{'' if watermark else ', value'}]"
        )
    stamp = wall, counter, node = raw[0], raw[1], raw[2]
    if not _is_stamp(wall, counter, node):
        raise FormatError(f"{where}: timestamp parts must be non-negative integers")
    value = None if watermark else raw[3]
    _checks.check_value(where, key, value)
    if key in _NUMBERS:
        value = float(value)  # type: ignore[arg-type]  # checked just above
    ts = timestamps.get(stamp)
    if ts is None:
        ts = timestamps[stamp] = Timestamp(wall, counter, node)
    return Register(ts, value)


_NUMBERS = frozenset((PERCENTAGE, TIME))


_BARE_PREFIXES = frozenset(TARGETING_PREFIXES)
