"""What a store of one's own needs to keep registers right: the merge, the compare-and-delete,
and a checked encoding. Public through :mod:`rollout.stores`; docs/stores.md has the contract.

The built-in stores apply the same rules (the memory store with these very functions; SQLite and
Redis inside the database), so a store written with them agrees with every replica.
"""

from __future__ import annotations

from .._core.codec import decode, encode
from .._core.register_merge import merge_registers
from .._core.state import Delta, Register

TYPE_CHECKING = False
if TYPE_CHECKING:
    from collections.abc import Mapping

__all__ = ["decode_registers", "discard_delta", "encode_registers", "merge_delta"]


def merge_delta(
    held: Delta, incoming: Mapping[str, Mapping[str, Register]], history_limit: int
) -> None:
    """Merge ``incoming`` into ``held`` in place, as :meth:`Store.save` must: per flag and key
    the register with the later timestamp wins (the last-writer-wins rule; equal timestamps
    are settled by the value, so the merge is commutative), registers hidden by a newer
    watermark are dropped, and each flag keeps its newest ``history_limit`` history events.
    (:func:`merge_registers` does the same for one flag.)"""
    if isinstance(history_limit, bool) or not isinstance(history_limit, int) or history_limit < 0:
        raise ValueError(f"history_limit must be an int >= 0, got {history_limit!r}")
    for name, registers in incoming.items():
        merge_registers(held.setdefault(name, {}), registers, history_limit)


def discard_delta(held: Delta, gone: Mapping[str, Mapping[str, Register]]) -> None:
    """Remove from ``held``, in place, each register of ``gone`` that is still held with the
    same timestamp, as :meth:`Store.discard` must (a compare-and-delete: a register saved
    since under that key stays)."""
    for name, registers in gone.items():
        flag = held.get(name)
        if flag is None:
            continue
        for key, register in registers.items():
            current = flag.get(key)
            if current is not None and current.ts == register.ts:
                del flag[key]


def encode_registers(delta: Delta) -> bytes:
    """The registers as bytes to keep: the JSON of ``flags.export()`` (docs/architecture.md,
    "The replication format"), every register with its full timestamp."""
    return encode(delta)


def decode_registers(data: bytes) -> Delta:
    """Registers from :func:`encode_registers`'s bytes, checked whole before anything is
    returned: malformed bytes raise :class:`~rollout.errors.FormatError` naming the first
    problem (a store should raise its :class:`~rollout.errors.StoreError` from it)."""
    return decode(data)
