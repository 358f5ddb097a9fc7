"""flagd flag definitions: the data classes, parsing and validation, and the way back to JSON."""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass, field
from typing import Any

from .errors import JSON

__all__ = ["FlagDefinition", "FlagdDocument", "parse_flagd", "to_flagd"]

Scalar = str | int | float | bool


@dataclass(frozen=True)
class FlagDefinition:
    """One flag in flagd's terms."""

    variants: Mapping[str, JSON]
    default_variant: str | None
    targeting: JSON | None = None
    enabled: bool = True
    metadata: Mapping[str, Scalar] = field(default_factory=dict)


@dataclass(frozen=True)
class FlagdDocument:
    """A parsed flagd flag-definition document."""

    flags: dict[str, FlagDefinition]
    evaluators: dict[str, JSON]
    metadata: dict[str, Scalar]


def parse_flagd(document: Mapping[str, Any] | str | bytes) -> FlagdDocument:
    raise NotImplementedError


def to_flagd(
    flags: Mapping[str, FlagDefinition],
    evaluators: Mapping[str, JSON],
    metadata: Mapping[str, Any] | None = None,
) -> dict[str, Any]:
    raise NotImplementedError
