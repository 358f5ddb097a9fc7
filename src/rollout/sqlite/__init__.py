"""The SQLite backend: registers in one file that survives restarts and is shared by processes.

Processes sharing a file see each other's writes with ``Rollout.refresh()``; ``rollout serve``
watches the file (``PRAGMA data_version``) and refreshes by itself.
"""

from __future__ import annotations

from ._store import SQLiteStore

__all__ = ["SQLiteStore"]
