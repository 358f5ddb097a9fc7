"""Public test helpers: a pytest plugin, a controllable clock, the conformance suites, real
cluster nodes and a fault-injecting proxy.

Installed with rollout, :mod:`rollout.testing.plugin` is a pytest plugin (entry point
``rollout``, active by itself; ``-p no:rollout`` turns it off). Its ``flags`` fixture is a fresh
in-memory Rollout per test, closed after it. Code under test that uses a module-level Rollout is
steered with that instance's ``override(name, True/False)``, a context manager and a decorator.

- :class:`FakeClock`: a wall clock that moves only when told (``Rollout(clock=...)``).
- :class:`StoreConformance`, :class:`TransportConformance`: the suites every store and transport
  passes; subclass one to test your own (see :mod:`rollout.testing.conformance`).
  :class:`PartitionConformance` adds a partition that heals, for transports whose links a test
  can cut.
- :func:`eventually`: poll a condition until it holds, for what replicates in the background.
- :mod:`rollout.testing.cluster`: real node processes to start, pause, kill and restart.
- :mod:`rollout.testing.proxy`: a TCP proxy that delays, drops and cuts links.

Nothing here imports pytest except the plugin module.
"""

from __future__ import annotations

from typing import Any

from .clock import FakeClock
from .conformance import PartitionConformance, StoreConformance, TransportConformance
from .eventually import eventually


def __getattr__(name: str) -> Any:
    # `from rollout.testing import flags` worked in 0.1, when this module was the plugin; the
    # fixture now lives in rollout.testing.plugin, imported only when asked for (it needs pytest).
    if name == "flags":
        from .plugin import flags

        return flags
    raise AttributeError(f"module {__name__!r} has no attribute {name!r}")


__all__ = [
    "FakeClock",
    "PartitionConformance",
    "StoreConformance",
    "TransportConformance",
    "eventually",
]
