"""Semantic versions as flagd's ``sem_ver`` reads them (Go's golang.org/x/mod/semver).

flagd prefixes a "v" (or turns a leading "V" into one), then accepts what that package
accepts: ``v1`` and ``v1.2`` are shorthands for ``v1.0.0`` and ``v1.2.0``, a prerelease and
build metadata only follow a full ``major.minor.patch``, numbers have no leading zeros, and
build metadata never takes part in a comparison.
"""

from __future__ import annotations

import re
from functools import lru_cache
from typing import Any, NamedTuple

__all__ = ["Version", "compare", "parse_version"]

_NUMBER = r"(0|[1-9][0-9]*)"
_VERSION = re.compile(
    rf"v{_NUMBER}(?:\.{_NUMBER}(?:\.{_NUMBER}"
    r"(?:-((?:0|[1-9][0-9]*|[0-9]*[A-Za-z-][0-9A-Za-z-]*)"
    r"(?:\.(?:0|[1-9][0-9]*|[0-9]*[A-Za-z-][0-9A-Za-z-]*))*))?"
    r"(?:\+[0-9A-Za-z-]+(?:\.[0-9A-Za-z-]+)*)?)?)?"
)


class Version(NamedTuple):
    major: int
    minor: int
    patch: int
    prerelease: tuple[str, ...]  # empty: a release, which sorts after its prereleases


def _go_string(value: Any) -> str:
    """Go's fmt "%v" of a JSON value, the way flagd turns a non-string version into text."""
    if isinstance(value, str):
        return value
    if isinstance(value, bool):
        return "true" if value else "false"
    if isinstance(value, float) and value.is_integer() and abs(value) < 1e21:
        return str(int(value))
    if isinstance(value, int | float):
        return repr(value)
    return "<nil>" if value is None else "<not a version>"


def parse_version(value: Any) -> Version | None:
    """The version ``value`` names for flagd, or None if flagd finds it invalid."""
    text = _go_string(value)
    # Only short texts are cached: a context can send a version of a megabyte, and the cache
    # must not keep thousands of those alive (no valid version is that long anyway).
    return _cached_parse(text) if len(text) <= _CACHED_LENGTH else _parse_text(text)


_CACHED_LENGTH = 256


@lru_cache(maxsize=4096)  # the same few versions are compared over and over
def _cached_parse(text: str) -> Version | None:
    return _parse_text(text)


def _parse_text(text: str) -> Version | None:
    if not text.startswith("v"):
        text = "v" + text.removeprefix("V")
    match = _VERSION.fullmatch(text)
    if match is None:
        return None
    major, minor, patch, prerelease = match.groups()
    return Version(
        int(major),
        int(minor or 0),
        int(patch or 0),
        tuple(prerelease.split(".")) if prerelease else (),
    )


def _compare_identifiers(a: str, b: str) -> int:
    a_numeric, b_numeric = a.isdigit(), b.isdigit()
    if a_numeric and b_numeric:
        return (int(a) > int(b)) - (int(a) < int(b))
    if a_numeric != b_numeric:
        return -1 if a_numeric else 1  # numeric identifiers sort before alphanumeric ones
    return (a > b) - (a < b)


def compare(a: Version, b: Version) -> int:
    """-1, 0 or 1, by semver precedence (build metadata ignored)."""
    if a[:3] != b[:3]:
        return -1 if a[:3] < b[:3] else 1
    if a.prerelease == b.prerelease:
        return 0
    if not a.prerelease or not b.prerelease:
        return 1 if not a.prerelease else -1
    for x, y in zip(a.prerelease, b.prerelease, strict=False):
        order = _compare_identifiers(x, y)
        if order:
            return order
    return (len(a.prerelease) > len(b.prerelease)) - (len(a.prerelease) < len(b.prerelease))
