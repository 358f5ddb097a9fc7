"""What a token may do: its scope (``admin`` or ``evaluate``) and, for ``evaluate``, its flags.

A key for a browser ships to every visitor, so it must not be able to list or change flags:
an ``evaluate`` token reaches only the evaluation endpoints (OFREP and the API's check), and
may be limited to named flags (a bulk evaluation then answers only those; any other flag is
not found for it). Every rule is here, and the app's gate asks :meth:`Grant.refusal` of
every request, so no route has to remember to check.
"""

from __future__ import annotations

import re
from collections.abc import Iterable, Mapping
from dataclasses import dataclass
from typing import Final

from starlette.types import Scope

from ._routing import decode_segment, raw_route_path

__all__ = [
    "ADMIN",
    "EVALUATE",
    "FULL",
    "SCOPES",
    "Grant",
    "grants_of",
    "is_ofrep_path",
    "raw_app_path",
]

ADMIN: Final = "admin"
EVALUATE: Final = "evaluate"
SCOPES: Final = (ADMIN, EVALUATE)

OFREP_PREFIX: Final = "/ofrep/v1/"
_CHECK = re.compile(r"/api/v1/flags/(?P<name>.+)/check", re.DOTALL)
#: On the decoded path: a flag name may hold "/" (sent as %2F), so any rest of the path. Only
#: the OFREP routes lie under this prefix (the single one takes one raw segment; else 404).
_OFREP_EVALUATE = re.compile(r"/ofrep/v1/evaluate/flags(/.*)?", re.DOTALL)


def is_ofrep_path(path: str) -> bool:
    """An OFREP path. Its POSTs change nothing (the body only carries the context), so the
    app's gate does not refuse them as cross-site changes; which other origins may read
    the answers is CORS's decision (``_cors.py``)."""
    return path.startswith(OFREP_PREFIX)


@dataclass(frozen=True)
class Grant:
    """One token's rights. ``flags`` None: every flag."""

    scope: str
    flags: frozenset[str] | None = None

    def allows_flag(self, name: str) -> bool:
        return self.flags is None or name in self.flags

    def refusal(self, method: str, path: str, raw_path: str | None = None) -> str | None:
        """Why this grant may not make the request (None: it may). ``path`` is the decoded
        path under the app; ``raw_path`` the same still percent-encoded, when known."""
        if self.scope == ADMIN:
            return None
        if _OFREP_EVALUATE.fullmatch(path) and method in ("POST", "OPTIONS"):
            return None  # the flag limit is applied by the evaluation itself (not found)
        match = _CHECK.fullmatch(raw_path if raw_path is not None else path)
        if match and method in ("GET", "HEAD"):
            name = match["name"]
            if raw_path is not None:
                name = "/".join(decode_segment(part) for part in name.split("/"))
            if self.allows_flag(name):
                return None
            return f"this token may not evaluate the flag {name!r}"
        return (
            f"this token's scope is {self.scope!r}: it may only evaluate flags (POST "
            f"{OFREP_PREFIX}evaluate/flags..., GET /api/v1/flags/NAME/check), not {method} {path}"
        )


FULL: Final = Grant(ADMIN)


def check_flag_limits(
    limits: object, scopes: dict[str, str], names: Iterable[str]
) -> dict[str, frozenset[str]]:
    """``token_flags`` checked: each a known token of scope ``evaluate``, each a list of names."""
    if limits is None:
        return {}
    if not isinstance(limits, dict):
        raise TypeError(f"token_flags must map token names to flag names, got {limits!r}")
    known = set(names)
    checked: dict[str, frozenset[str]] = {}
    for name, flags in limits.items():
        if name not in known:
            raise ValueError(f"token_flags: {name!r} is not a token name ({sorted(known)})")
        if scopes.get(name) != EVALUATE:
            raise ValueError(
                f"token_flags: token {name!r} has scope {scopes.get(name, ADMIN)!r}; only an "
                f"{EVALUATE!r} token can be limited to flags"
            )
        if isinstance(flags, str) or not isinstance(flags, Iterable):
            raise TypeError(f"token_flags[{name!r}] must be a list of flag names, got {flags!r}")
        listed = frozenset(flags)
        if not listed or not all(isinstance(f, str) and f for f in listed):
            raise ValueError(
                f"token_flags[{name!r}] must be a non-empty list of flag names, got {flags!r}"
            )
        checked[name] = listed
    return checked


def grants_of(
    tokens: Iterable[str],
    scopes: Mapping[str, str] | None,
    token_flags: Mapping[str, Iterable[str]] | None,
) -> dict[str, Grant]:
    """Each token's grant: ``scopes`` names the scope of some tokens (the rest are admin)."""
    tokens = list(tokens)
    given = dict(scopes) if scopes is not None else {}
    for name, scope in given.items():
        if name not in tokens:
            raise ValueError(f"scopes: {name!r} is not a token name (they are {sorted(tokens)})")
        if scope not in SCOPES:
            raise ValueError(f"scopes[{name!r}] must be one of {list(SCOPES)}, got {scope!r}")
    limits = check_flag_limits(
        dict(token_flags) if isinstance(token_flags, Mapping) else token_flags, given, tokens
    )
    return {name: Grant(given.get(name, ADMIN), limits.get(name)) for name in tokens}


def raw_app_path(scope: Scope) -> str | None:
    """The request's path as sent (still percent-encoded) under the app's mount point: the path
    the router matches (rollout.admin._routing), so a scope is judged on the route that answers.
    (Judged on the decoded path when mounted, ``/admin/api/v1/flags/x%2Fcheck`` looked like a
    check of ``x`` to an ``evaluate`` token and reached the detail route of ``x/check``.)"""
    return raw_route_path(scope)
