"""Errors raised by rollout.

Every error the library raises on purpose derives from :class:`RolloutError`::

    RolloutError
    ├── FormatError (also ValueError)      a replication blob is corrupt or from a future version
    ├── ClockSkewError                     this node's clock runs too far ahead of its peers
    ├── ClosedError                        the Rollout (or store) was closed
    └── StoreError                         the store failed; the original error is the __cause__
        └── StoreUnavailableError          the store cannot be reached right now; retry later

Bad arguments raise the built-in ``TypeError`` or ``ValueError`` with a message that names the
argument and the value; nothing is written when one is raised.
"""

from __future__ import annotations

__all__ = [
    "ClockSkewError",
    "ClosedError",
    "FormatError",
    "RolloutError",
    "StoreError",
    "StoreUnavailableError",
]


class RolloutError(Exception):
    """The root of every error rollout raises on purpose."""


class FormatError(RolloutError, ValueError):
    """A replication blob (``export()`` output or a delta) could not be decoded.

    Raised by ``merge()`` for corrupt bytes, a wrong shape, or a format version this library
    does not know. The replica is left unchanged.
    """


class ClockSkewError(RolloutError):
    """This node's wall clock is further ahead of its peers than ``max_offset`` allows.

    Local writes are refused until the clock is back in range, because its timestamps would
    win over every honest write for as long as the skew lasts.
    """


class ClosedError(RolloutError):
    """The object was used after ``close()``."""


class StoreError(RolloutError):
    """The store failed to load or save. The driver's own exception is ``__cause__``."""


class StoreUnavailableError(StoreError):
    """The store cannot be reached now (connection refused, database locked too long).

    Nothing was written; the same call may succeed later.
    """
