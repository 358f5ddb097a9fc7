"""The ``rollout`` command: flags, history, the cluster, Ruby records and ``serve`` from a shell."""

from __future__ import annotations

from ._main import DEFAULT_STORE, STORE_ENV, build_parser, main

__all__ = ["DEFAULT_STORE", "STORE_ENV", "build_parser", "main"]
