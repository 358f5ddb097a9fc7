"""An asyncio event loop on one daemon thread, so the application does not have to be async."""

from __future__ import annotations

import asyncio
import concurrent.futures
import contextlib
import os
import threading
from collections.abc import Callable, Coroutine
from typing import Any, TypeVar

__all__ = ["LoopThread", "abandon", "release_inherited_socket"]

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
            self._finish()
            self.loop.close()

    def _finish(self) -> None:
        """What asyncio.run does at its end: cancel what is left and let it unwind.

        A connection accepted in the last turns before the stop still has a task on its way to
        its handler; cancelled and run, it closes its transport (and socket) instead of leaving
        it for the garbage collector to find open.
        """
        loop = self.loop
        for _ in range(3):
            pending = [task for task in asyncio.all_tasks(loop) if not task.done()]
            if not pending:
                break
            for task in pending:
                task.cancel()
            loop.run_until_complete(asyncio.gather(*pending, return_exceptions=True))
        # Transports close their sockets one loop turn after close(): give them the turns.
        for _ in range(3):
            loop.run_until_complete(asyncio.sleep(0))
        loop.run_until_complete(loop.shutdown_asyncgens())

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


#: The parent's loops in a forked child: never run, never closed, kept so no finaliser warns.
_ABANDONED: list[LoopThread] = []


def abandon(loop: LoopThread) -> None:
    _ABANDONED.append(loop)


def release_inherited_socket(sock: Any) -> None:
    """Release this process's copy of a socket inherited through fork.

    The parent still uses the socket. Putting /dev/null on its fd number drops our copy (so a
    close by the parent really ends the connection) while the number stays valid for the socket
    object that will close it again later.
    """
    with contextlib.suppress(OSError, AttributeError, ValueError):
        devnull = os.open(os.devnull, os.O_RDWR)
        try:
            os.dup2(devnull, sock.fileno())
        finally:
            os.close(devnull)
