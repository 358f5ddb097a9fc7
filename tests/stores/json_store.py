"""A store of one's own, written as the docs say (docs/stores.md), with public names only.

Registers in one JSON file: each save reads the file, merges, and writes a new file over it
(``os.replace``), under an exclusive ``flock`` on a lock file beside it, so any number of
handles and processes can share the file without losing a write. The quarantine is the
inherited one (in this process's memory).
"""

from __future__ import annotations

import fcntl
import os
import threading
from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path

from rollout import ClosedError, FormatError, Store, StoreError
from rollout.stores import Delta, decode_registers, discard_delta, encode_registers, merge_delta


class JSONFileStore(Store):
    def __init__(self, path: Path) -> None:
        self.path = path
        self.url = f"json://{path}"
        self._lock = threading.Lock()  # flock is per open file: threads need their own lock
        self._closed = False

    def load(self) -> Delta:
        with self._locked():
            return self._read()

    def save(self, delta: Delta) -> None:
        with self._locked():
            held = self._read()
            merge_delta(held, delta, self.history_limit)
            self._write(held)

    def discard(self, delta: Delta) -> None:
        with self._locked():
            held = self._read()
            discard_delta(held, delta)
            self._write(held)

    def close(self) -> None:
        self._closed = True

    @contextmanager
    def _locked(self) -> Iterator[None]:
        with self._lock:
            if self._closed:
                raise ClosedError(f"{self.url} is closed")
            with open(f"{self.path}.lock", "a") as lock:
                fcntl.flock(lock, fcntl.LOCK_EX)
                yield

    def _read(self) -> Delta:
        try:
            data = self.path.read_bytes()
        except FileNotFoundError:
            return {}
        try:
            return decode_registers(data)
        except FormatError as exc:
            raise StoreError(f"{self.url} is damaged: {exc}") from exc

    def _write(self, held: Delta) -> None:
        temporary = self.path.with_name(f"{self.path.name}.{os.getpid()}.tmp")
        temporary.write_bytes(encode_registers(held))
        os.replace(temporary, self.path)  # readers see the old file or the new, never half
