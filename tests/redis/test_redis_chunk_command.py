"""A merge's chunk, and a save of one flag, are sent as one EVALSHA in Redis's wire format
(rollout.redis._chunks, rollout.redis._saver.OneFlagCommands), put together in bulk or from parts
written out before: each must be exactly the command of its arguments, whatever its registers
share, in whatever order its fields come, watermarks and keys beyond ASCII among them."""

from __future__ import annotations

import json

from rollout._core.clock import Timestamp
from rollout._core.codec import encode_flags
from rollout._core.state import Delta, Register
from rollout.redis import RedisStore
from rollout.redis._chunks import chunk_command
from rollout.redis._packed import pack

SHA = "0" * 40
KEYS = ["index", "version", "flag:f", "history:f", "flag:g", "history:g"]
HEAD: list[str | int] = ["channel", "origin", "partial", 100]


def _one_by_one(delta: Delta) -> bytes:
    """The command as every argument encoded on its own: what Redis must receive."""
    arguments: list[str | int] = ["EVALSHA", SHA, len(KEYS), *KEYS, *HEAD]
    for name, registers in delta.items():
        arguments += [name, len(registers)]
        for key, register in registers.items():
            arguments += [key, pack(key, register)]
    return _command(arguments)


def _command(arguments: list[str | int]) -> bytes:
    """Each argument as a bulk string of its own, its size counted in UTF-8 bytes."""
    bulks = "".join(f"${len(str(part).encode())}\r\n{part}\r\n" for part in arguments)
    return f"*{len(arguments)}\r\n{bulks}".encode()


def test_a_chunk_is_the_command_of_its_arguments() -> None:
    early, late = Timestamp(1_700_000_000_000, 0, 7), Timestamp(1_700_000_000_005, 3, 2**63 - 1)
    shared = Register(early, True)  # a bulk write's users share one Register
    mark = Register(late, None)
    f = {f"user:{i}": shared for i in range(50)}
    f |= {
        "reset": mark,
        "user:ünï ✓": Register(late, False),
        "percentage": Register(late, 25.0),
        "data:note": Register(early, {"text": 'é "quoted"'}),
        "data_reset": mark,  # the same Register as another watermark
        "exclude:x": shared,
        "definition_reset": Register(early, None),
    }
    f |= {f"group:{i}": Register(late, True) for i in range(5)}
    delta: Delta = {"f": f, "g": {"exists": shared, "user:a": shared}}
    assert chunk_command(SHA, KEYS, HEAD, delta) == _one_by_one(delta)


def test_a_save_of_one_flag_is_the_command_of_its_arguments() -> None:
    store = RedisStore.from_url("redis://127.0.0.1:6379/0?namespace=wire")  # never connects
    sent: list[bytes] = []

    def run(command: bytes, script: str) -> int:
        sent.append(command)
        return 1

    store._run_command = run  # type: ignore[method-assign]
    ts = Timestamp(1_700_000_000_000, 3, 2**63 - 5)
    event = {"action": "activate_user", "after": {"user:ü": True}, "note": 'é "q"'}
    for name, registers in [
        ("big", {"user:a": Register(ts, True), "exists": Register(ts, True)}),
        ("big", {"user:ü": Register(ts, True), "history:0001": Register(ts, event)}),  # not ASCII
        ("flåg", {"user:a": Register(ts, False)}),
        ("big", {"reset": Register(ts, None), "percentage": Register(ts, 12.5)}),
        ("big", {"user:b": Register(ts, True)}),  # a flag written before: its head is kept
    ]:
        store.save({name: registers})
        arguments: list[str | int] = [
            "EVALSHA",
            store._merge.sha,
            4,
            "wire:flags",
            "wire:version",
            f"wire:flag:{name}",
            f"wire:history:{name}",
            "wire:changes",
            f"{store.origin}@{ts.wall}.{ts.counter}.{ts.node}",
            json.dumps(encode_flags({name: registers}), separators=(",", ":")),
            store.history_limit,
            name,
            len(registers),
        ]
        for key, register in registers.items():
            arguments += [key, pack(key, register)]
        assert sent.pop() == _command(arguments)
