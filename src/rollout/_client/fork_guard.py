"""Fork safety of write pipelines: no lock held across ``os.fork()``, replication restarted in
the child.

A child process inherits every lock in the state it had at the fork, and one held by a thread
the child does not have would stay locked for ever. So the locks of every guarded pipeline (its
write lock, then its replica's) are taken before a fork and released on both sides after it, and
the child restarts the pipeline's transport, whose threads did not survive.
"""

from __future__ import annotations

import os
import weakref

TYPE_CHECKING = False
if TYPE_CHECKING:
    from contextlib import AbstractContextManager
    from typing import Protocol

    from ..sync._base import Transport

__all__ = ["Forkable", "guard"]


if TYPE_CHECKING:  # a type only: typing is not loaded at run time

    class Forkable(Protocol):
        """What the guard needs of a pipeline."""

        transport: Transport | None

        def fork_locks(self) -> tuple[AbstractContextManager[object], ...]:
            """The locks to hold across a fork, in the order they are taken."""
            ...


_GUARDED: weakref.WeakSet[Forkable] = weakref.WeakSet()


def guard(pipeline: Forkable) -> None:
    """Make ``os.fork()`` safe for ``pipeline`` (kept by a weak reference)."""
    _GUARDED.add(pipeline)


def _before() -> None:
    for pipeline in list(_GUARDED):
        for lock in pipeline.fork_locks():
            lock.__enter__()


def _release(pipeline: Forkable) -> None:
    for lock in reversed(pipeline.fork_locks()):
        lock.__exit__(None, None, None)


def _parent() -> None:
    for pipeline in list(_GUARDED):
        _release(pipeline)


def _child() -> None:
    for pipeline in list(_GUARDED):
        _release(pipeline)
        if pipeline.transport is not None:
            pipeline.transport.after_fork_in_child()


os.register_at_fork(before=_before, after_in_parent=_parent, after_in_child=_child)
