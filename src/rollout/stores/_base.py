"""The store interface: where a replica's registers are kept between runs.

A store does three things: hand back every register it holds (:meth:`Store.load`), merge a
delta into what it holds, keeping per key the register that wins the last-writer-wins rule
(:meth:`Store.save`), and remove given registers if still there (:meth:`Store.discard`: how a
register stamped in the future leaves the store; docs/operations.md, "Quarantine"). Because save
merges rather than overwrites, any number of processes can save into one store concurrently
without losing an edit.

It also keeps the quarantine, so that it survives restarts and is shared by the processes on
one store: :meth:`Store.quarantine` holds refused registers, :meth:`Store.quarantined` hands
back what is held and judged, :meth:`Store.release` judges held registers (resolved, or
superseded). A store written before these existed inherits defaults that keep the quarantine in
this process's memory only (with a warning logged once).

Every implementation passes :class:`rollout.testing.StoreConformance`.

Errors: :class:`~rollout.errors.StoreUnavailableError` when the backend cannot be reached or is
busy for too long (nothing was written), :class:`~rollout.errors.StoreOutcomeUnknownError` when a
write was sent but its answer never came (it may or may not have been stored: a time-out is not a
refusal), :class:`~rollout.errors.StoreError` for anything else the backend reports (its message
saying the cause first when it can be told: a full disk, a read-only file system, a corrupt
file), :class:`~rollout.errors.ClosedError` after :meth:`close`.
"""

from __future__ import annotations

import abc
import threading

from .._core.history import DEFAULT_HISTORY_LIMIT
from .._core.quarantine_book import QUARANTINE_LIMIT, VERDICTS_KEPT, QuarantineBook
from .._core.state import Delta

TYPE_CHECKING = False
if TYPE_CHECKING:
    from collections.abc import Iterable, Sequence

    from .._core.quarantined import Judged, QuarantinedRegister, QuarantineState
    from ..sync import Transport

__all__ = ["Store"]

_WARNED: set[type] = set()
_WARNED_LOCK = threading.Lock()


class Store(abc.ABC):
    """Abstract base class of stores. Methods are synchronous and thread-safe."""

    #: A short description for logs and ``stats()``, e.g. ``"sqlite:///flags.db"``.
    url: str = ""

    #: How many history events to keep per flag (the newest). ``Rollout`` raises it to its own
    #: ``history_limit``; keeping more than a replica does is harmless.
    history_limit: int = DEFAULT_HISTORY_LIMIT

    #: The most registers a local write saves in one atomic :meth:`save`; a bigger one (an
    #: ``activate_users`` of many ids) is saved as a join, by ``merge_numbered`` (else
    #: :meth:`merge`), in parts: Redis must not run one script for seconds. ``None`` (the
    #: default): every write is one save, whatever its size.
    atomic_write_limit: int | None = None

    #: How many registers the quarantine holds at most; past it, new ones are not held.
    quarantine_limit: int = QUARANTINE_LIMIT
    #: How many judged registers are remembered (the newest).
    verdicts_kept: int = VERDICTS_KEPT

    @abc.abstractmethod
    def load(self) -> Delta:
        """Every register held, as one delta. A consistent snapshot, even during writes."""

    def load_numbered(self) -> tuple[Delta, int | None]:
        """:meth:`load`, and the version it was read at, for a store that numbers its changes
        (Redis): its live-update transport then knows, when it connects, whether anything
        changed since, and a replica that just started from the store is not loaded twice.
        ``None``: the store has no such number (the default)."""
        return self.load(), None

    @abc.abstractmethod
    def save(self, delta: Delta) -> None:
        """Merge ``delta`` in, atomically: all of it is durable when this returns, or none.

        A register replaces the stored one for its key only if it wins (newer timestamp).
        Registers hidden by a newer watermark may be dropped.
        """

    def merge(self, delta: Delta) -> None:
        """Merge a join of registers from elsewhere (``Rollout.merge()``, a transport's re-seed):
        :meth:`save`, except that a store may apply a big one in parts, each atomic, so that it
        never holds its backend for long (Redis); readers may then see some parts first. If it
        raises, the parts before may be stored (:class:`~rollout.errors.PartlyStoredError`).
        The default is one :meth:`save`."""
        self.save(delta)

    @abc.abstractmethod
    def discard(self, delta: Delta) -> None:
        """Remove exactly these registers, atomically, where they are still held: a register
        goes only if its flag, key and timestamp all match (a compare-and-delete), so a newer
        register saved since under that key stays. Others' replicas are not told (nothing they
        hold changes: this removes registers stamped too far ahead, which they refused too).
        """

    # The quarantine (docs/operations.md, "Quarantine"). The defaults keep it in this process's
    # memory, so that a store written before these methods existed keeps working.

    def quarantine(self, entries: Sequence[QuarantinedRegister]) -> None:
        """Hold refused registers, atomically, by the rules of
        :class:`~rollout._core.quarantine_book.QuarantineBook`: one per flag and key (the later one;
        the earlier is judged), never one already judged, at most :attr:`quarantine_limit`."""
        with self._fallback_quarantine() as book:
            book.hold(entries)

    def quarantined(self) -> QuarantineState:
        """Every held register and the judged ones (oldest verdict first), read consistently."""
        with self._fallback_quarantine() as book:
            return book.state()

    def release(self, registers: Iterable[Judged]) -> None:
        """Judge ``(flag, key, timestamp)`` registers, atomically: each stops being held if it is
        the one held under its key, and is remembered (the newest :attr:`verdicts_kept`)."""
        with self._fallback_quarantine() as book:
            book.release(registers)

    def _fallback_quarantine(self) -> _BookLock:
        book = self.__dict__.get("_rollout_fallback_quarantine")
        if book is None:
            with _WARNED_LOCK:
                book = self.__dict__.setdefault(
                    "_rollout_fallback_quarantine",
                    _BookLock(QuarantineBook(self.quarantine_limit, self.verdicts_kept)),
                )
                if type(self) not in _WARNED:
                    _WARNED.add(type(self))
                    import logging  # here: this module's one message, for a store of one's own

                    logging.getLogger("rollout").warning(
                        "%s does not implement quarantine/quarantined/release: the quarantine "
                        "is kept in this process's memory only, and forgotten at restart",
                        type(self).__name__,
                    )
        assert isinstance(book, _BookLock)
        return book

    def ping(self) -> None:  # noqa: B027 - optional hook: a store in memory is always there
        """Reach the store now, with one cheap round trip: ``StoreUnavailableError`` (or
        ``StoreError``) when it cannot be reached. For readiness probes (``/readyz``)."""

    def changed_elsewhere(self) -> bool:
        """Whether someone else (another process, another connection) may have written since
        this store object last ran :meth:`load`: ``Rollout.refresh`` skips its reload when not,
        so a process's own writes never make it read everything again. True when the store
        cannot tell (the default)."""
        return True

    def default_transport(self) -> Transport | None:
        """The transport that gives replicas on this store live updates, if it has one.

        ``Rollout`` starts it when no other transport is configured (Redis: its pub/sub).
        """
        return None

    def close(self) -> None:  # noqa: B027 - optional hook, a no-op by default
        """Release connections. Idempotent."""

    def close_within(self, timeout: float) -> None:  # noqa: ARG002 - for stores that wait
        """:meth:`close`, returning within about ``timeout`` seconds where closing waits for
        work of the store's own (a Redis store's collection of hidden registers)."""
        self.close()


class _BookLock:
    """A :class:`QuarantineBook` and its lock: ``with`` it to use the book."""

    def __init__(self, book: QuarantineBook) -> None:
        self.book = book
        self._lock = threading.Lock()

    def __enter__(self) -> QuarantineBook:
        self._lock.acquire()
        return self.book

    def __exit__(self, *exc: object) -> None:
        self._lock.release()
