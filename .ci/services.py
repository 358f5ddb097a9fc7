"""Check that Redis, PostgreSQL and NATS answer where the tests look for them ($REDIS_URL,
$POSTGRES_URL, $NATS_URL, else their usual local ports); exit 1 naming each that does not.
Standard library only: it runs before `make test` installs anything."""

from __future__ import annotations

import os
import socket
import sys
from urllib.parse import urlsplit

# PostgreSQL speaks only after a startup message; the answer to an SSL request ("N" or "S")
# shows a PostgreSQL server is there without logging in.
_SSL_REQUEST = (8).to_bytes(4, "big") + (80877103).to_bytes(4, "big")

#: name, environment variable, default URL, what to send, what the answer must start with
SERVICES = (
    ("Redis", "REDIS_URL", "redis://127.0.0.1:6379", b"PING\r\n", (b"+PONG",)),
    ("PostgreSQL", "POSTGRES_URL", "postgresql://127.0.0.1:5432/test", _SSL_REQUEST, (b"N", b"S")),
    ("NATS", "NATS_URL", "nats://127.0.0.1:4222", b"", (b"INFO ",)),  # NATS speaks first
)


def problem(host: str, port: int, send: bytes, expected: tuple[bytes, ...]) -> str | None:
    """None if the server answered as expected, else what went wrong."""
    try:
        with socket.create_connection((host, port), timeout=5) as conn:
            conn.settimeout(5)
            if send:
                conn.sendall(send)
            answer = conn.recv(4096)
    except OSError as exc:
        return str(exc)
    if not answer.startswith(expected):
        return f"it answered {answer[:60]!r}"
    return None


def main() -> int:
    failed = 0
    for name, env, default, send, expected in SERVICES:
        url = urlsplit(os.environ.get(env) or default)
        host, port = url.hostname or "127.0.0.1", url.port or urlsplit(default).port or 0
        why = problem(host, port, send, expected)
        if why is not None:
            failed += 1
            print(
                f".ci/services.py: {name} does not answer at {host}:{port} (${env}): {why}; "
                "its tests fail without it",
                file=sys.stderr,
            )
    return 1 if failed else 0


if __name__ == "__main__":
    sys.exit(main())
