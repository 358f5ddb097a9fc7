"""The NATS backend: live updates through a JetStream stream, for fleets of hundreds of processes.

Needs nats-py (``pip install 'rollout[nats]'``); nothing here is imported by ``import rollout``,
and nats-py itself loads when a transport connects. See docs/nats.md.
"""

from __future__ import annotations

from ._transport import NatsTransport

__all__ = ["NatsTransport"]
