"""Tokens, sessions and cross-site protection (skeleton: the API engineer replaces this)."""

from __future__ import annotations


class Auth:
    enabled: bool = False
