"""The port through which a transport reaches its replica.

A transport (peer TCP, Redis pub/sub, in-memory) is handed a :class:`SyncPort` at ``start()``,
never the ``Rollout``: it can read this node's clock and replicated state and merge what it
receives, and nothing else. Before this port, those seven hooks were public methods of the
facade, so ``flags.set_clock_skew("x")`` could block every write and
``flags.merge_remote(d, store=False)`` could bypass the store.
"""

from __future__ import annotations

from .._core.clock import Timestamp
from .._core.state import Delta
from .pipeline import WritePipeline

TYPE_CHECKING = False
if TYPE_CHECKING:
    from collections.abc import Iterable

__all__ = ["SyncPort"]


class SyncPort:
    """Implements :class:`rollout.sync.SyncHost` over a write pipeline."""

    __slots__ = ("_pipeline",)

    def __init__(self, pipeline: WritePipeline) -> None:
        self._pipeline = pipeline

    @property
    def node_id(self) -> int:
        return self._pipeline.clock.node

    @property
    def max_offset_ms(self) -> int:
        return self._pipeline.clock.max_offset_ms

    def physical_ms(self) -> int:
        return self._pipeline.clock.physical_ms()

    def replicated(self, names: Iterable[str] | None = None) -> Delta:
        return self._pipeline.replica.delta(set(names) if names is not None else None)

    def digests(self) -> dict[str, bytes]:
        return self._pipeline.replica.digests()

    def loaded_version(self, store: object) -> int | None:
        return self._pipeline.take_loaded_version(store)

    def merge_remote(self, delta: Delta, *, store: bool = True) -> set[str]:
        return self._pipeline.merge(delta, save=store, origin="peer" if store else "store")

    def merge_from_peer(self, delta: Delta, *, store_first: bool = True) -> int:
        pipeline = self._pipeline
        return pipeline.merge_counting(delta, save=True, origin="peer", store_first=store_first)[1]

    def applied_own_write(self, ts: Timestamp) -> bool:
        return self._pipeline.own_writes.applied(ts)

    def produced_versions(self, first: int, last: int) -> bool:
        return self._pipeline.own_writes.produced(first, last)

    def forget_produced_versions(self, through: int | None = None) -> None:
        self._pipeline.own_writes.forget_versions(through)

    def check_clock_step(self) -> None:
        self._pipeline.check_clock_step()

    def set_clock_skew(self, problem: str | None) -> None:
        self._pipeline.set_clock_verdict(problem)

    def __repr__(self) -> str:
        return f"<SyncPort node={self.node_id:016x}>"
