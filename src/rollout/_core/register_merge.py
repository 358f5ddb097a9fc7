"""The merge rule for a plain map of one flag's registers, as a store keeps them (no visible
view: :class:`~rollout._core.state.FlagState` keeps that for a replica). The memory store merges
with it, and a store of one's own can too (``rollout.stores.merge_registers``,
docs/stores.md).
"""

from __future__ import annotations

import bisect

from .clock import MIN_TIMESTAMP
from .history import DEFAULT_HISTORY_LIMIT
from .keys import DATA_RESET, DEFINITION_RESET, HISTORY, RESET, is_history
from .register import Register, is_hidden, wins

TYPE_CHECKING = False
if TYPE_CHECKING:
    from collections.abc import Mapping

__all__ = ["merge_indexed", "merge_registers"]


def merge_registers(
    registers: dict[str, Register],
    incoming: Mapping[str, Register],
    history_limit: int = DEFAULT_HISTORY_LIMIT,
) -> None:
    """Merge registers into a plain register map (no visible view), dropping hidden ones and
    history beyond the newest ``history_limit`` events.

    It finds the map's history events by reading every key; a holder that keeps them listed
    calls :func:`merge_indexed`, whose cost does not grow with the map.
    """
    history = sorted(k for k in registers if is_history(k))
    merge_indexed(registers, registers, history, incoming, history_limit)


def merge_indexed(
    registers: dict[str, Register],
    events: dict[str, Register],
    history: list[str],
    incoming: Mapping[str, Register],
    history_limit: int = DEFAULT_HISTORY_LIMIT,
) -> None:
    """:func:`merge_registers` for a flag whose history events are held in ``events`` (the
    same dict as ``registers``, or one of their own) and their keys listed, sorted, in
    ``history`` (kept up to date here): the cost is that of ``incoming``, not of the map, so
    adding one user to a stored flag of a million costs what it does on an empty flag. Only a
    watermark that moves (``deactivate``, ``delete``, ...) reads the whole map, to drop what it
    hides. ``registers`` must hold nothing hidden already (what this function leaves).

    Events in a dict of their own keep a write's event out of the big map: adding, finding and
    dropping the oldest one are then lookups in a dict of ``history_limit`` entries, where in a
    map of a million users each is a cache miss."""
    accepted: list[tuple[str, Register]] = []
    watermark_moved = False
    if not registers and not events:
        # A new flag (an export merged, a bulk write): every register wins against nothing.
        registers.update(incoming)
        history[:] = sorted([k for k in incoming if k.startswith(HISTORY)])
        if events is not registers:
            for key in history:
                events[key] = registers.pop(key)
        incoming = {}
        watermark_moved = any(w in registers for w in _WATERMARKS)  # drop what they hide
    for key, register in incoming.items():
        if is_history(key):
            held = events.get(key)
            if held is None:
                bisect.insort(history, key)
            elif not wins(register, held):
                continue
            events[key] = register
            continue
        if not wins(register, registers.get(key)):
            continue
        registers[key] = register
        if key in _WATERMARKS:
            watermark_moved = True  # it won, so it is later than the one it replaced
        else:
            accepted.append((key, register))
    while len(history) > history_limit:
        del events[history.pop(0)]
    reset, data_reset, definition_reset = (
        registers[w].ts if w in registers else MIN_TIMESTAMP
        for w in (RESET, DATA_RESET, DEFINITION_RESET)
    )
    # Without a moved watermark, what was held stays visible: only the new registers can be
    # hidden (a user added elsewhere before a deactivate this map already holds).
    candidates = registers.items() if watermark_moved else accepted
    for key in [
        k for k, r in candidates if is_hidden(k, r.ts, reset, data_reset, definition_reset)
    ]:
        del registers[key]


_WATERMARKS = frozenset((RESET, DATA_RESET, DEFINITION_RESET))
