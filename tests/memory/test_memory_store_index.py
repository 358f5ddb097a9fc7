"""The memory store keeps each flag's history keys listed, so a save costs what it brings, not
what the flag holds (a flag of a million users). What it holds must stay exactly what the plain
rule gives: the register that wins per key, nothing a watermark hides, the newest
``history_limit`` events; checked here against that rule written the simple way (every key read
on every save), over random saves and discards."""

from __future__ import annotations

from hypothesis import given, settings
from hypothesis import strategies as st

from rollout import MemoryStore
from rollout._core.clock import Timestamp
from rollout._core.keys import DATA_RESET, RESET, history_key, is_history
from rollout._core.state import Register, is_hidden, wins

HISTORY_LIMIT = 3
MIN = Timestamp(0, 0, 0)


def reference_merge(registers: dict[str, Register], incoming: dict[str, Register]) -> None:
    """The merge rule read straight from docs/stores.md, reading every key each time."""
    for key, register in incoming.items():
        if wins(register, registers.get(key)):
            registers[key] = register
    events = sorted(k for k in registers if is_history(k))
    for key in events[: max(0, len(events) - HISTORY_LIMIT)]:
        del registers[key]
    reset, data_reset = (registers[w].ts if w in registers else MIN for w in (RESET, DATA_RESET))
    for key in [k for k, r in registers.items() if is_hidden(k, r.ts, reset, data_reset)]:
        del registers[key]


timestamps = st.builds(Timestamp, st.integers(1, 12), st.integers(0, 1), st.integers(1, 2))
plain_registers = st.tuples(
    st.sampled_from(["user:1", "user:2", "exclude:1", "data:x", "percentage", RESET, DATA_RESET]),
    timestamps,
    st.booleans(),
)
history_registers = st.builds(lambda ts: (history_key(ts), ts, True), timestamps)
deltas = st.lists(st.one_of(plain_registers, history_registers), min_size=1, max_size=5)
# Each step saves a delta, or (False) discards registers of one saved before.
steps = st.lists(st.tuples(st.booleans(), deltas, st.integers(0, 20)), min_size=1, max_size=12)


def _delta(entries: list[tuple[str, Timestamp, bool]]) -> dict[str, Register]:
    return {
        key: Register(ts, None if key in (RESET, DATA_RESET) else value)
        for key, ts, value in entries
    }


@settings(max_examples=300, deadline=None)
@given(steps)
def test_saves_and_discards_keep_what_the_plain_rule_keeps(
    script: list[tuple[bool, list[tuple[str, Timestamp, bool]], int]],
) -> None:
    store = MemoryStore()
    store.history_limit = HISTORY_LIMIT
    expected: dict[str, Register] = {}
    saved: list[dict[str, Register]] = []
    for save, entries, pick in script:
        if save or not saved:
            delta = _delta(entries)
            saved.append(delta)
            store.save({"flag": delta})
            reference_merge(expected, delta)
        else:
            gone = saved[pick % len(saved)]
            store.discard({"flag": gone})
            for key, register in gone.items():
                if key in expected and expected[key].ts == register.ts:
                    del expected[key]
        assert store.load().get("flag", {}) == expected
