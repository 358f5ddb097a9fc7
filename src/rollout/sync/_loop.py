"""An asyncio event loop on one daemon thread, so the application does not have to be async."""

from __future__ import annotations

import asyncio
import concurrent.futures
import contextlib
import threading
from collections.abc import Callable, Coroutine
from typing import Any, TypeVar

__all__ = ["LoopThread"]

T = TypeVar("T")


class LoopThread:
    def __init__(self, name: str) -> None:
        self.loop = asyncio.new_event_loop()
        self._ready = threading.Event()
        self._thread = threading.Thread(target=self._run, name=name, daemon=True)
        self._thread.start()
        self._ready.wait()

    def _run(self) -> None:
        asyncio.set_event_loop(self.loop)
        self.loop.call_soon(self._ready.set)
        try:
            self.loop.run_forever()
        finally:
            self.loop.run_until_complete(self.loop.shutdown_asyncgens())
            self.loop.close()

    @property
    def is_current(self) -> bool:
        return threading.current_thread() is self._thread

    def submit(self, coro: Coroutine[Any, Any, T]) -> concurrent.futures.Future[T]:
        return asyncio.run_coroutine_threadsafe(coro, self.loop)

    def call_soon(self, callback: Callable[..., object], *args: object) -> None:
        """Run ``callback`` on the loop; a no-op once the loop is closed."""
        with contextlib.suppress(RuntimeError):  # a closed loop: the transport is shutting down
            self.loop.call_soon_threadsafe(callback, *args)

    def stop(self, timeout: float) -> None:
        if self.is_current:
            raise RuntimeError("the loop thread cannot stop itself")
        self.call_soon(self.loop.stop)
        self._thread.join(timeout)
