"""Resolving a flag for a context, as flagd does: reason, variant, value, error code."""

from __future__ import annotations

from collections.abc import Callable, Mapping
from typing import Any, NamedTuple

from .definition import FlagDefinition
from .errors import JSON

__all__ = ["CompiledFlag", "Resolution", "compile_flag", "compile_predicate"]


class Resolution(NamedTuple):
    value: JSON | None
    variant: str | None
    reason: str
    error_code: str | None
    error_message: str | None


class CompiledFlag:
    def resolve(self, flag_key: str, context: Mapping[str, Any]) -> Resolution:
        raise NotImplementedError


def compile_flag(definition: FlagDefinition, evaluators: Mapping[str, JSON]) -> CompiledFlag:
    raise NotImplementedError


def compile_predicate(
    rule: JSON, evaluators: Mapping[str, JSON]
) -> Callable[[Mapping[str, Any]], bool]:
    raise NotImplementedError
