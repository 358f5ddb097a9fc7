"""Moved to :mod:`rollout.testing.cluster`: this path works until rollout 0.3, with a
DeprecationWarning (``python -m rollout.testing_cluster`` too)."""

import sys

from ._moved import moved

moved(__name__, "rollout.testing.cluster")

from .testing.cluster import Cluster, Node, NodeError, free_port, main, wait_converged  # noqa: E402

__all__ = ["Cluster", "Node", "NodeError", "free_port", "wait_converged"]

if __name__ == "__main__":
    sys.exit(main())
