"""Compatibility with other feature-flag libraries' storage formats (the Ruby rollout gem)."""

from __future__ import annotations
