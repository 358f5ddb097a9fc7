"""A merge's chunk is sent as one EVALSHA in Redis's wire format (rollout.redis._chunks), put
together in bulk: it must be exactly the command of its arguments, whatever its registers
share, in whatever order its fields come, watermarks and keys beyond ASCII among them."""

from __future__ import annotations

from rollout._core.clock import Timestamp
from rollout._core.state import Delta, Register
from rollout.redis._chunks import chunk_command
from rollout.redis._packed import pack
from rollout.redis._saver import encode_parts

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
    return f"*{len(arguments)}\r\n".encode() + encode_parts(arguments)


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
