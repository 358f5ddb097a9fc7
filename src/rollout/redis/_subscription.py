"""Reading the change channel's messages off the subscription's connection.

In the writing process nearly every message is the echo of its own write (Redis publishes each
change to every subscriber, its writer's too), which the transport skips. Reading it the way
redis-py's ``get_message`` does costs the subscriber thread more than skipping it: per message,
two ``select.poll`` objects made and registered (can the socket be read, is it closed), a
reply read through four layers of calls, a push notification's handler that asks for a logger
and logs at debug level. All of it holds the interpreter while the writer waits for it to
send its next write (callgrind: about 73k instructions per echo, the skip itself a fifth).

So once subscribed, the messages are read from the connection's socket directly: one poll
object registered once, one ``recv_into`` for whatever has arrived (several messages at once
when the subscriber fell behind), parsed by a hiredis reader of the transport's own, and the
data of each message handed over. It is redis-py's connection still (its connecting, its
authentication, its health-check PINGs, its closing), read the way its own parser reads it.

Where that cannot be done safely, redis-py's reading is used, less its message dictionary and
retry wrapper: hiredis missing, a TLS socket (decrypted bytes may wait above the socket, where
a poll does not see them), or bytes redis-py has already buffered.
"""

from __future__ import annotations

import select
import time
from typing import TYPE_CHECKING, Any

if TYPE_CHECKING:
    import redis

    from ..sync._versioned import Poll

__all__ = ["reader"]

#: Bytes read from the socket at a time: a write's message is a few hundred; a message of a
#: big change is a notice word (rollout.redis._chunks), so a read nearly always holds whole
#: messages. A longer one is read over several polls.
READ_BYTES = 65536

_MESSAGE = (b"message", "message")


def reader(pubsub: redis.client.PubSub) -> Poll:
    """A poll of ``pubsub``'s channel: waits up to the given seconds for messages and returns
    the data of those that came (empty when none did)."""
    connection = pubsub.connection
    assert connection is not None  # made by subscribe()
    sock = getattr(connection, "_sock", None)
    try:
        import hiredis
    except ImportError:  # the redis extra installs it; a redis-py installed alone may lack it
        return _redis_py_reader(pubsub)
    if sock is None or hasattr(sock, "pending") or _buffered(connection):
        return _redis_py_reader(pubsub)
    return _socket_reader(pubsub, connection, sock, hiredis.Reader())


def _buffered(connection: Any) -> bool:
    """Whether redis-py's parser may hold bytes read from the socket, which reading the socket
    past would lose: its hiredis parser says (none, after a SUBSCRIBE only sent); its
    pure-Python one is not asked."""
    parser = getattr(connection, "_parser", None)
    buffered = getattr(getattr(parser, "_reader", None), "has_data", None)
    return buffered is None or bool(buffered())


def _socket_reader(pubsub: redis.client.PubSub, connection: Any, sock: Any, parse: Any) -> Poll:
    import redis

    check_health = pubsub.check_health
    poller = select.poll()
    # POLLHUP and POLLERR are reported whatever the mask: a closed socket reads as ready, and
    # its recv then says so.
    poller.register(sock, select.POLLIN)
    buffer = bytearray(READ_BYTES)
    interval = connection.health_check_interval
    gets, feed, recv_into = parse.gets, parse.feed, sock.recv_into

    def poll(timeout: float) -> list[Any]:
        check_health()
        if not poller.poll(timeout * 1000):
            return []
        # An error ends the subscription: the transport closes it (and the connection), then
        # subscribes again, re-seeds and reloads, as after every reconnect.
        try:
            size = recv_into(buffer)
        except OSError as exc:
            raise redis.ConnectionError(f"Error while reading the subscription: {exc}") from exc
        if not size:
            raise redis.ConnectionError("Connection closed by server.")
        if interval:  # as redis-py's read_response: a PING is due only after a quiet spell
            connection.next_health_check = time.monotonic() + interval
        feed(buffer, 0, size)
        messages = []
        reply = gets()
        while reply is not False:
            # A message is [b"message", channel, data] (RESP2's array or RESP3's push, a list
            # subclass); anything else is a confirmation, a health check's answer or an error.
            if isinstance(reply, list) and len(reply) == 3 and reply[0] == b"message":
                messages.append(reply[2])
            reply = gets()
        return messages

    return poll


def _redis_py_reader(pubsub: redis.client.PubSub) -> Poll:
    """Read through redis-py's connection: what its ``get_message`` does for a subscriber that
    wants only the data, less its retry wrapper, its metrics and the message dictionary. Any
    error of the connection reaches the transport, which subscribes again, re-seeds and
    reloads, as after every reconnect."""
    connection = pubsub.connection
    assert connection is not None  # made by subscribe()
    check_health = pubsub.check_health

    def poll(timeout: float) -> tuple[Any, ...]:
        check_health()
        if not connection.can_read(timeout=timeout):
            return ()
        reply = connection.read_response(push_request=True)
        # A message is [b"message", channel, data] (RESP2, and RESP3's push: a list subclass
        # with hiredis); anything else is a subscription's confirmation or a health check's
        # answer.
        if isinstance(reply, list) and len(reply) == 3 and reply[0] in _MESSAGE:
            return (reply[2],)
        return ()

    return poll
