"""Errors raised by rollout.

Every error the library raises on purpose derives from :class:`RolloutError`::

    RolloutError
    ├── FormatError (also ValueError)      a replication blob is corrupt or from a future version
    ├── ClockSkewError                     this node's clock is not confirmed by a majority of peers
    ├── ClosedError                        the Rollout (or store) was closed
    ├── MissingExtraError (also ImportError) an optional dependency is not installed; the
    │                                      message names the extra (pip install 'rollout[redis]')
    ├── UnknownFlagError (also LookupError) a removal (deactivate, delete, deactivate_user ...)
    │                                      from a flag that does not exist; nothing was written
    └── StoreError                         the store failed; the original error is the __cause__
        ├── StoreUnavailableError          the store cannot be reached right now; nothing was
        │                                  written; retry later
        ├── StoreOutcomeUnknownError       a write timed out: it may or may not have been stored
        └── PartlyStoredError              a write saved in parts (too big for one atomic save)
                                           failed midway: the parts before are stored

Bad arguments raise the built-in ``TypeError`` or ``ValueError`` with a message that names the
argument and the value; nothing is written when one is raised.
"""

from __future__ import annotations

TYPE_CHECKING = False
if TYPE_CHECKING:
    from collections.abc import Sequence

    from ._core.state import Delta

__all__ = [
    "ClockSkewError",
    "ClosedError",
    "FormatError",
    "MissingExtraError",
    "PartlyStoredError",
    "RolloutError",
    "StoreError",
    "StoreOutcomeUnknownError",
    "StoreUnavailableError",
    "UnknownFlagError",
]


class RolloutError(Exception):
    """The root of every error rollout raises on purpose."""


class FormatError(RolloutError, ValueError):
    """A replication blob (``export()`` output or a delta) could not be decoded.

    Raised by ``merge()`` for corrupt bytes, a wrong shape, or a format version this library
    does not know. The replica is left unchanged.
    """


class ClockSkewError(RolloutError):
    """Local writes are refused because this node's clock is not confirmed by its peers.

    The message says which case: the clock is more than ``max_offset`` ahead of or behind the
    majority of the connected peers (its writes would be refused by them, or lose to older
    ones); there is no majority (two nodes that disagree: both refuse); or no peer has confirmed
    it yet (a node configured with peers, none connected since it started). Checks keep
    answering. See "Clocks" in docs/operations.md.
    """


class ClosedError(RolloutError):
    """The object was used after ``close()``."""


class StoreError(RolloutError):
    """The store failed to load or save. The driver's own exception is ``__cause__``."""


class StoreUnavailableError(StoreError):
    """The store cannot be reached now (connection refused, database locked too long).

    Nothing was written; the same call may succeed later.
    """


class StoreOutcomeUnknownError(StoreError):
    """A write was sent but no answer came (a time-out, or the connection lost while waiting).

    The store may have carried the write out, or may yet do so (a Redis that hangs runs the
    script it received when it resumes): it is neither confirmed nor refused. This replica has
    not applied it; if it lands, the store's change notification brings it here like any other
    change. To know, read the flag back once the store answers: every write carries its own
    timestamp, so (with history kept) its event in ``history()`` is there if and only if it
    landed (of a write Redis saves in parts, if its first part landed: see PartlyStoredError).
    Retrying the same change is harmless: it sets the same values again.
    """


class PartlyStoredError(StoreError):
    """A change too big for one atomic save failed midway: the parts before the failing one are
    stored, the rest is not.

    Redis saves a change of more than 25,000 registers (``activate_users`` of many ids, a
    merge) in parts, each one atomic script, so that it never holds the server for seconds.
    When a part fails, the parts before it stay stored: ``stored`` holds their registers (of
    ``total``), and a local write has applied them to this replica too, which so shows what the
    store holds. The failing part's own outcome is its ``__cause__``'s (unknown after a
    time-out); nothing after it was sent. The same write again stores the whole change (what is
    stored already is set again, harmlessly). ``versions``: the store's numbers for the stored
    parts.
    """

    def __init__(
        self,
        message: str,
        stored: Delta | None = None,
        total: int = 0,
        versions: Sequence[int] = (),
    ) -> None:
        super().__init__(message)
        self.stored: Delta = stored or {}
        self.total = total
        self.versions = list(versions)


class MissingExtraError(RolloutError, ImportError):
    """An optional dependency is not installed; the message says which extra installs it.

    An ImportError too, so code that already guards an optional import keeps working.
    """


class UnknownFlagError(RolloutError, LookupError):
    """A removal from a flag that does not exist: nothing was created, written or recorded.

    Raised by ``deactivate``, ``delete``, ``deactivate_user(s)``, ``include_user(s)``,
    ``deactivate_group``, ``deactivate_percentage(_of_time)`` and ``clear_feature_data``, so
    that a mistyped name never brings a flag into being. Adds (``activate`` ...) create the
    flag; ``set(name, False)`` creates it off. ``flag`` is the name; the CLI exits 2 with the
    message, the HTTP API answers 404 with it.
    """

    def __init__(self, flag: str) -> None:
        super().__init__(f"no flag named {flag!r} (nothing was changed)")
        self.flag = flag

    def __reduce__(self) -> tuple[type[UnknownFlagError], tuple[str]]:
        return (type(self), (self.flag,))


def require_extra(module: str, extra: str, purpose: str) -> None:
    """Raise :class:`MissingExtraError` unless ``module`` imports."""
    try:
        __import__(module)
    except ImportError as exc:
        raise MissingExtraError(
            f"{purpose} needs the {module!r} package, which is not installed: "
            f"pip install 'rollout[{extra}]' ({exc})"
        ) from exc
