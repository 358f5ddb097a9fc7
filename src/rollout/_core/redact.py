"""Secrets out of URLs before a URL is shown: in errors, logs, the CLI's messages and ``stats()``.

A store URL may carry a password (``redis://:hunter2@host/0``,
``redis+sentinel://user:hunter2@host:26379/mymaster``, ``redis://host/0?password=hunter2``) and so
may an HTTP URL given to the CLI (``http://ops:hunter2@host:8080``). Every place that prints or
logs a URL passes it through :func:`redact_url` first; text written by a third party that may
quote the URL (redis-py's and urllib's messages) goes through :func:`scrub` with the URL it was
about.

The rules, on purpose simple enough to read at a glance:

* the password of the userinfo becomes ``***`` (``user:***@``); a userinfo with no ``:`` is
  redacted whole (``***@``), since services such as GitHub (and NATS) take a token there,
  except in the URLs of PostgreSQL and Redis, where it is only a user name: masked, it hid the
  cause of "role ... does not exist", and masking ``postgres`` in text turned every
  ``postgresql://`` into ``***ql://``;
* the value of a query parameter whose name mentions a secret (``password``, ``passwd``, ``pwd``,
  ``secret``, ``token``, ``auth``, ``credential``; any case) becomes ``***``;
* the URL is not parsed strictly: one that does not parse (a bad port, a stray ``%``) is redacted
  all the same, since those are exactly the URLs error messages quote.
"""

from __future__ import annotations

import re

__all__ = ["MASK", "redact_url", "scrub", "secrets_of"]

MASK = "***"

#: ``scheme://`` then the authority, up to the path, query or fragment.
_AUTHORITY = re.compile(r"^(?P<scheme>[A-Za-z][A-Za-z0-9+.-]*://)(?P<authority>[^/?#]*)")
#: A query parameter whose name says it holds a secret, and its value.
_SECRET_PARAMETER = re.compile(
    r"(?P<name>(?:^|[?&;])[^=&;#]*(?:password|passwd|pwd|secret|token|auth|credential)[^=&;#]*=)"
    r"(?P<value>[^&;#]*)",
    re.IGNORECASE,
)
_ESCAPE = re.compile(rb"%([0-9A-Fa-f]{2})")
#: Schemes whose userinfo without a ``:`` is a user name, never a token.
_USER_NAME_SCHEMES = frozenset({"postgres://", "postgresql://", "redis://", "rediss://"})
_USER_NAME_SCHEMES |= {"redis+sentinel://", "unix://"}
_SHORTEST_SECRET = 3  # "***" itself, or a one-letter user name, is not worth masking in text


def redact_url(url: object) -> str:
    """``url`` with its password and secret query parameters replaced by ``***``."""
    text = str(url)
    match = _AUTHORITY.match(text)
    if match is not None and "@" in match["authority"]:
        userinfo, host = match["authority"].rsplit("@", 1)
        user, colon, _password = userinfo.partition(":")
        shown = f"{user}:{MASK}" if colon else _bare(match["scheme"], user)
        text = f"{match['scheme']}{shown}@{host}{text[match.end() :]}"
    head, mark, query = text.partition("?")
    if mark:
        query = _SECRET_PARAMETER.sub(lambda m: f"{m['name']}{MASK}", query)
    return f"{head}{mark}{query}"


def secrets_of(url: object) -> list[str]:
    """The secrets :func:`redact_url` hides in ``url``, as written and percent-decoded."""
    text = str(url)
    found: list[str] = []
    match = _AUTHORITY.match(text)
    if match is not None and "@" in match["authority"]:
        userinfo = match["authority"].rsplit("@", 1)[0]
        user, colon, password = userinfo.partition(":")
        if colon or _bare(match["scheme"], user) == MASK:
            found.append(password if colon else user)
    _head, mark, query = text.partition("?")
    if mark:
        found.extend(m["value"] for m in _SECRET_PARAMETER.finditer(query))
    secrets = {variant for secret in found for variant in (secret, _unquote(secret))}
    # Longest first: a secret that contains another is replaced whole.
    return sorted((s for s in secrets if len(s) >= _SHORTEST_SECRET), key=len, reverse=True)


def _bare(scheme: str, user: str) -> str:
    """How a userinfo with no password is shown: a user name as it is, a token masked."""
    return user if scheme.lower() in _USER_NAME_SCHEMES else MASK


def _unquote(text: str) -> str:
    # urllib.parse.unquote, which the core may not import (urllib does I/O; tests/test_layers.py).
    raw = _ESCAPE.sub(lambda m: bytes([int(m[1], 16)]), text.encode("utf-8", "surrogatepass"))
    return raw.decode("utf-8", "replace")


def scrub(text: object, *urls: object) -> str:
    """``text`` (a message, perhaps another library's) with the secrets of ``urls`` masked."""
    result = str(text)
    for url in urls:
        if url is None:
            continue
        result = result.replace(str(url), redact_url(url))
        for secret in secrets_of(url):
            result = result.replace(secret, MASK)
    return result
