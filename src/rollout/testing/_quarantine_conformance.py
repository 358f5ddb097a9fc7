"""The part of :class:`rollout.testing.StoreConformance` about the quarantine a store keeps.

``Store.quarantine`` holds registers refused as stamped too far ahead, ``Store.quarantined``
hands back what is held and judged, ``Store.release`` judges held registers. Kept by the store,
the quarantine survives a restart and is shared by the processes on one store: a register
judged once stays refused after a restart, however late it is offered again.
"""

from __future__ import annotations

from .._core.clock import Timestamp
from .._core.keys import EXISTS, RESET, USER, history_key
from .._core.quarantined import QuarantinedRegister, QuarantineState
from ..stores import Store

__all__ = ["QuarantineConformance"]

_FUTURE = 4_000_000_000_000  # 2096: a register from a clock far ahead
_NOW = 1_700_000_000_000


def _ts(wall: int, node: int = 7) -> Timestamp:
    return Timestamp(wall, 0, node)


def _held(
    key: str, wall: int = _FUTURE, value: object = True, flag: str = "f", origin: str = "peer"
) -> QuarantinedRegister:
    return QuarantinedRegister(flag, key, value, _ts(wall), origin, _NOW)


def _kept_by(store: Store) -> bool:
    """Whether the store keeps the quarantine itself. One that inherits :class:`Store`'s
    quarantine methods keeps it in each handle's memory (documented, and warned about once):
    surviving a restart, being shared by the handles on one store and closing with it are then
    not its promise, so those tests check that documented fallback instead."""
    return type(store).quarantine is not Store.quarantine


class QuarantineConformance:
    """Mixed into StoreConformance; ``make_store`` and ``reopen`` come from there."""

    def make_store(self) -> Store:
        raise NotImplementedError

    def reopen(self, store: Store) -> Store:
        raise NotImplementedError

    def _restarted(self, store: Store) -> Store:
        """The same data through a new handle, ``store`` closed (a store that is not durable
        reopens as itself, and stays open)."""
        other = self.reopen(store)
        if other is not store:
            store.close()
        return other

    def test_a_new_store_holds_nothing_in_quarantine(self) -> None:
        store = self.make_store()
        try:
            assert store.quarantined() == QuarantineState([], [])
        finally:
            store.close()

    def test_held_registers_load_back_exactly(self) -> None:
        event = {"action": "activate", "actor": "alice", "values": {"percentage": 5}}
        entries = [
            _held(USER + "a", value={"nested": [1, "two"]}),
            _held(EXISTS, origin="own clock"),
            _held(RESET, value=None),
            _held(history_key(_ts(_FUTURE)), value=event),
            _held(USER + "b", flag="other flag", origin="store"),
        ]
        store = self.make_store()
        try:
            store.quarantine(entries)
            state = store.quarantined()
            assert sorted(state.held, key=_slot) == sorted(entries, key=_slot)
            assert state.judged == []
        finally:
            store.close()

    def test_the_later_register_under_a_key_is_held_and_the_earlier_judged(self) -> None:
        store = self.make_store()
        try:
            store.quarantine([_held(USER + "a", _FUTURE)])
            store.quarantine([_held(USER + "a", _FUTURE + 5, value=False)])
            store.quarantine([_held(USER + "a", _FUTURE + 2)])  # earlier than the one held
            state = store.quarantined()
            assert state.held == [_held(USER + "a", _FUTURE + 5, value=False)]
            assert state.judged == [
                ("f", USER + "a", _ts(_FUTURE)),
                ("f", USER + "a", _ts(_FUTURE + 2)),
            ]
        finally:
            store.close()

    def test_a_judged_register_is_never_held_again(self) -> None:
        store = self.make_store()
        try:
            store.quarantine([_held(USER + "a")])
            store.release([("f", USER + "a", _ts(_FUTURE))])
            store.quarantine([_held(USER + "a")])
            assert store.quarantined() == QuarantineState([], [("f", USER + "a", _ts(_FUTURE))])
        finally:
            store.close()

    def test_release_removes_only_the_register_with_that_timestamp(self) -> None:
        store = self.make_store()
        try:
            store.quarantine([_held(USER + "a", _FUTURE + 1), _held(USER + "b")])
            # Not the one held under user:a (another timestamp): judged, user:a still held.
            store.release([("f", USER + "a", _ts(_FUTURE)), ("f", USER + "b", _ts(_FUTURE))])
            state = store.quarantined()
            assert state.held == [_held(USER + "a", _FUTURE + 1)]
            assert set(state.judged) == {
                ("f", USER + "a", _ts(_FUTURE)),
                ("f", USER + "b", _ts(_FUTURE)),
            }
        finally:
            store.close()

    def test_the_quarantine_holds_at_most_its_limit(self) -> None:
        store = self.make_store()
        store.quarantine_limit = 3
        try:
            store.quarantine([_held(f"{USER}{i}") for i in range(5)])
            store.quarantine([_held(f"{USER}{i}") for i in range(5, 8)])
            held = store.quarantined().held
            assert len(held) == 3
            # A later register under a held key still replaces it at the limit.
            store.quarantine([_held(held[0].key, _FUTURE + 1)])
            assert _held(held[0].key, _FUTURE + 1) in store.quarantined().held
        finally:
            store.close()

    def test_only_the_newest_verdicts_are_remembered(self) -> None:
        store = self.make_store()
        store.verdicts_kept = 3
        try:
            for i in range(6):
                store.release([("f", USER + "a", _ts(_FUTURE + i))])
            store.release([("f", USER + "a", _ts(_FUTURE + 3))])  # judged again: newest now
            assert store.quarantined().judged == [
                ("f", USER + "a", _ts(_FUTURE + 4)),
                ("f", USER + "a", _ts(_FUTURE + 5)),
                ("f", USER + "a", _ts(_FUTURE + 3)),
            ]
        finally:
            store.close()

    def test_the_quarantine_survives_reopening_the_store(self) -> None:
        store = self.make_store()
        kept = _kept_by(store)
        store.quarantine([_held(USER + "a"), _held(USER + "b", origin="own clock")])
        store.release([("f", USER + "b", _ts(_FUTURE))])
        reopened = self._restarted(store)
        try:
            if kept or reopened is store:
                assert reopened.quarantined() == QuarantineState(
                    [_held(USER + "a")], [("f", USER + "b", _ts(_FUTURE))]
                )
            else:  # the in-memory fallback is forgotten at restart, as documented
                assert reopened.quarantined() == QuarantineState([], [])
        finally:
            reopened.close()

    def test_two_handles_on_one_store_share_the_quarantine(self) -> None:
        store = self.make_store()
        other = self.reopen(store)
        try:
            store.quarantine([_held(USER + "a")])
            other.quarantine([_held(USER + "a", _FUTURE + 1)])
            other.release([("f", USER + "a", _ts(_FUTURE + 1))])
            if not _kept_by(store) and other is not store:
                # The in-memory fallback: each handle holds only what it was given.
                assert store.quarantined() == QuarantineState([_held(USER + "a")], [])
                assert other.quarantined() == QuarantineState(
                    [], [("f", USER + "a", _ts(_FUTURE + 1))]
                )
                return
            for handle in (store, other):
                state = handle.quarantined()
                assert state.held == []
                assert set(state.judged) == {
                    ("f", USER + "a", _ts(_FUTURE)),
                    ("f", USER + "a", _ts(_FUTURE + 1)),
                }
        finally:
            store.close()
            if other is not store:
                other.close()

    def test_the_quarantine_is_closed_with_the_store(self) -> None:
        from ..errors import ClosedError

        store = self.make_store()
        if not _kept_by(store):
            # The in-memory fallback belongs to the handle, not the store: it is not closed with
            # it, and the store's owner was warned, naming the class, that it is memory only.
            import logging

            from ..stores._base import _WARNED

            _WARNED.discard(type(store))
            records: list[logging.LogRecord] = []

            class Collect(logging.Handler):
                def emit(self, record: logging.LogRecord) -> None:
                    records.append(record)

            handler = Collect()
            logging.getLogger("rollout").addHandler(handler)
            try:
                store.quarantined()
            finally:
                logging.getLogger("rollout").removeHandler(handler)
                store.close()
            assert any(type(store).__name__ in r.getMessage() for r in records), records
            return
        store.close()
        for use in (
            store.quarantined,
            lambda: store.quarantine([_held(USER + "a")]),
            lambda: store.release([("f", USER + "a", _ts(_FUTURE))]),
        ):
            try:
                use()
            except ClosedError:
                continue
            raise AssertionError(f"{type(store).__name__}'s quarantine was usable after close()")


def _slot(entry: QuarantinedRegister) -> tuple[str, str]:
    return entry.flag, entry.key
