"""The Redis store's save connection: one connection of the store's pool, kept for writes, and
the write sent on it as one command already in Redis's wire format.

Through the pool, redis-py takes a connection for each command, checks that it has no unread
data (a poll and two time-out changes, all system calls) and gives it back: about a third of the
client's time in a write. A client of one connection skips that and keeps redis-py's reconnection
(Sentinel's included) and errors. A forked child makes its own: the parent's socket is not the
child's to use.

A write is one EVALSHA of about twenty arguments. redis-py's ``execute_command`` packs them one
by one (type checks and an encode each) and wraps the round trip in layers a write does not use
(its command hooks, its metrics): together more than half of the client's CPU per write, three
times the round trip itself. So :func:`encode_command` writes the whole command in one pass (a
save of one flag from the parts it shares with the flag's other saves, kept written out:
:class:`OneFlagCommands`) and
:meth:`SaveConnection.run` sends it on the kept connection and reads the reply through the
connection's own methods: its connecting (a Sentinel's master look-up), its parser, its errors
and its retry policy are redis-py's, as before.
"""

from __future__ import annotations

import os
import select
import threading
from collections.abc import Iterator, Sequence
from contextlib import contextmanager
from typing import TYPE_CHECKING, Any

if TYPE_CHECKING:
    import redis

__all__ = ["OneFlagCommands", "SaveConnection", "encode_command", "encode_parts"]

#: Bumped in a forked child: a connection made before the fork is the parent's. (Asking
#: os.getpid() on every save is a system call per write.)
_generation = [0]


def _forked() -> None:
    _generation[0] += 1


os.register_at_fork(after_in_child=_forked)


def encode_command(parts: Sequence[str | int]) -> bytes:
    """``parts`` as one Redis command (an array of bulk strings), the bytes redis-py would send.

    Text is UTF-8, as redis-py's default encoder writes it and as the store reads it back; an
    int is its decimal digits. Each length is counted in bytes: a text of ASCII only (nearly
    every part) has as many bytes as characters, which Python knows without encoding it.
    """
    return f"*{len(parts)}\r\n".encode() + encode_parts(parts)


def encode_parts(parts: Sequence[str | int]) -> bytes:
    """``parts`` as the bulk strings of a command, without the array's header."""
    out = []
    for part in parts:
        text = part if type(part) is str else str(int(part))
        size = len(text) if text.isascii() else len(text.encode())
        out.append(f"${size}\r\n{text}\r\n")
    return "".join(out).encode()


#: Flags whose command head a store keeps written out (OneFlagCommands): a service writes far
#: fewer flags than this; one that writes more only formats the rest on each save.
HEADS_KEPT = 1024


class OneFlagCommands:
    """The EVALSHA of a save of one flag (nearly every local write), as :func:`encode_command`
    writes it from the save's arguments (``EVALSHA sha 4 KEYS ARGV``).

    Its first parts (the script, the keys, the channel) are the same for every save of that
    flag: kept here written out, so a write formats only what is its own (a bulk string a part
    was about an eighth of the client's instructions per write)."""

    def __init__(self) -> None:
        #: flag name -> the start of its saves' command, written out.
        self._heads: dict[str, str] = {}

    def command(self, sha: str, keys: list[str], args: list[Any], bulks: list[str]) -> bytes | None:
        """The command of ``keys`` and ``args`` (a save's: channel, origin, change, limit, then
        the flag's name and register count), ``bulks`` being its key/packed pairs as bulk
        strings (rollout.redis._packed.pack_flag); None when its text is not all ASCII (sizes
        are then counted in bytes, by :func:`encode_command`)."""
        name = args[4]
        head = self._heads.get(name)
        if head is None:
            head = encode_parts(["EVALSHA", sha, len(keys), *keys, args[0]]).decode()
            if len(self._heads) < HEADS_KEPT:
                self._heads[name] = head
        origin, change, limit, count = args[1], args[2], str(args[3]), str(args[5])
        text = (
            f"*{len(keys) + len(args) + 3}\r\n{head}${len(origin)}\r\n{origin}\r\n"
            f"${len(change)}\r\n{change}\r\n${len(limit)}\r\n{limit}\r\n"
            f"${len(name)}\r\n{name}\r\n${len(count)}\r\n{count}\r\n{''.join(bulks)}"
        )
        return text.encode() if text.isascii() else None


class SaveConnection:
    """The kept connection, made on first use (and again in a forked child)."""

    def __init__(self, client: redis.Redis) -> None:
        self._pool_client = client
        self._lock = threading.Lock()
        self._client: redis.Redis | None = None
        #: Held by the thread using the connection. Made with the client, so that a forked
        #: child never finds it held by a thread of its parent.
        self._use = threading.RLock()
        self._generation = -1  # the fork generation that made _client
        #: A poll of the connection's socket, and that socket (made again for a new one).
        self._poll: Any = None
        self._polled: Any = None

    @contextmanager
    def client(self) -> Iterator[redis.Redis]:
        """The save client, held by this thread until the block ends.

        A lock (re-entrant: the block may run a command that takes it again) is held across the
        check of the connection and the commands of the block: two threads saving through one
        store must not close or read the socket under each other's reply. It is the store's
        own, not the client's ``single_connection_lock``, which redis-py 5.0 does not have.
        """
        saver = self._client
        if saver is None or self._generation != _generation[0]:
            saver = self._make()
        with self._use:
            self._drop_if_stale(saver)
            yield saver

    def run(self, command: bytes) -> Any:
        """Send ``command`` (made by :func:`encode_command`) and return Redis's reply.

        What redis-py's ``execute_command`` does with a command, less the packing and its
        hooks: the connection connects when it must, an error reply is raised (``NoScriptError``
        ...), a connection that failed is closed, and the client's retry policy applies (none
        for a store made from a URL; redis-py's default for a client given to the store).
        """
        # What client() does, written out: a generator-made context manager is a tenth of the
        # round trip's instructions, on every write.
        saver = self._client
        if saver is None or self._generation != _generation[0]:
            saver = self._make()
        with self._use:
            self._drop_if_stale(saver)
            connection = saver.connection
            if connection is None:  # closed: only after the store's close(), which refuses saves
                raise RuntimeError("the save connection is closed")

            def attempt() -> Any:
                connection.send_packed_command([command])  # type: ignore[no-untyped-call]
                return connection.read_response()

            def failed(_error: Exception) -> None:
                connection.disconnect()  # type: ignore[no-untyped-call]

            return connection.retry.call_with_retry(attempt, failed)

    def _drop_if_stale(self, saver: redis.Redis) -> None:
        """What the pool checks before lending a connection: one the server has closed (Redis
        restarted, an idle time-out) is dropped here, before the command is sent, so that
        reconnecting fails as "not sent" rather than the write reading as sent.

        Between a reply and the next command the socket has nothing to read: anything there
        (an end of file, an error, bytes) makes it stale. Asked of a poll kept for the socket
        rather than through redis-py's ``can_read``, which makes and registers two poll
        objects each time (nearly a third of the round trip's instructions). A TLS socket may hold
        decrypted bytes a poll does not see: redis-py is asked then, as it is for a connection
        to make."""
        import redis

        connection = saver.connection
        if connection is None:  # closed
            return
        sock = getattr(connection, "_sock", None)
        try:
            if sock is None or hasattr(sock, "pending"):
                # Not connected: redis-py's check connects the connection's own way (a
                # Sentinel's master look-up), where its send would reconnect to the address
                # it had (the old master's, after a failover).
                stale = connection.can_read()
            else:
                if sock is not self._polled:
                    self._poll = select.poll()
                    self._poll.register(sock, select.POLLIN)
                    self._polled = sock
                stale = bool(self._poll.poll(0))
        except (OSError, ValueError, redis.ConnectionError):
            stale = True
        if stale:
            connection.disconnect()  # type: ignore[no-untyped-call]

    def _make(self) -> redis.Redis:
        import redis

        with self._lock:
            if self._client is None or self._generation != _generation[0]:
                # Connects now: an error here is one of connecting (nothing was sent).
                self._client = redis.Redis(
                    connection_pool=self._pool_client.connection_pool,
                    single_connection_client=True,
                )
                self._use = threading.RLock()
                self._generation = _generation[0]
            return self._client

    def close(self) -> None:
        """Give the connection back to the pool (this process's only: a child's is its own)."""
        if self._client is not None and self._generation == _generation[0]:
            self._client.close()
