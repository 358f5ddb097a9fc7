"""Argument checks of flag definitions and named rules, and the registers a definition writes.

Each check names the argument and the value it refuses (ValueError / TypeError, or the engine's
RuleError, a ValueError with the JSON path of the offending node) and returns a plain JSON copy,
so a caller's later change to its own dict does not leak into what was written.
"""

from __future__ import annotations

from collections.abc import Mapping

from . import targeting as _engine  # loaded with the first rule checked
from .keys import DATA, DATA_RESET, DEFAULT_VARIANT, DEFINITION_RESET, DISABLED, TARGETING_RULE
from .keys import VARIANT as VARIANT_PREFIX
from .lazy import LazyModule
from .targeting import JSON, MAX_RULE_DEPTH
from .validate import data_mapping, json_problem, member_name

TYPE_CHECKING = False
if TYPE_CHECKING:
    import json
    from typing import Any

    from .targeting import FlagDefinition
else:
    json = LazyModule("json")  # loaded by the first data value checked or encoded (lazy.py)

__all__ = [
    "check_default_variant",
    "definition_changes",
    "flagd_metadata",
    "rule_argument",
    "variant_kind",
    "variant_value",
    "variants_argument",
]

#: flagd's kinds of variant values; a flag's variants are all of one kind (its type).
_KINDS: tuple[tuple[str, tuple[type, ...]], ...] = (
    ("boolean", (bool,)),
    ("string", (str,)),
    ("number", (int, float)),
    ("object", (dict,)),
)


def variant_kind(value: object) -> str | None:
    """``boolean``, ``string``, ``number`` or ``object``; None for a value flagd has no kind of."""
    for kind, types in _KINDS:
        if isinstance(value, types) and (kind == "boolean" or not isinstance(value, bool)):
            return kind
    return None


def variant_value(value: object, argument: str) -> JSON:
    """A variant's value, checked (one of flagd's kinds, JSON, not too deep) and copied."""
    checked = data_mapping({"value": value}, argument)["value"]
    if variant_kind(checked) is None:
        raise ValueError(
            f"{argument} must be a boolean, string, number or object (flagd's variant kinds), "
            f"got {value!r:.200}"
        )
    return checked


def variants_argument(variants: object, argument: str = "variants") -> dict[str, JSON]:
    """At least one variant, names by the naming rule, values all of one kind."""
    if not isinstance(variants, Mapping):
        raise TypeError(
            f"{argument} must be a mapping of variant names to values, got {variants!r}"
        )
    if not variants:
        raise ValueError(f"{argument} must name at least one variant, got {variants!r}")
    checked: dict[str, JSON] = {}
    for name, value in variants.items():
        member_name(name, f"{argument} key")
        checked[name] = variant_value(value, f"{argument}[{name!r}]")
    kinds = {variant_kind(value) for value in checked.values()}
    if len(kinds) > 1:
        raise ValueError(
            f"{argument} must all be of one kind (flagd's flags are typed), got "
            f"{sorted(k for k in kinds if k)}: {variants!r:.200}"
        )
    return checked


def rule_argument(rule: object, argument: str, path: str = "$") -> JSON:
    """A JsonLogic rule the engine accepts, as plain JSON (tuples become lists)."""
    problem = json_problem(rule, MAX_RULE_DEPTH)
    if problem is not None:
        raise ValueError(f"{argument} {problem}")
    try:
        plain = json.loads(json.dumps(rule, allow_nan=False))
    except (TypeError, ValueError) as exc:
        raise ValueError(f"{argument} must be JSON, got {rule!r:.200} ({exc})") from exc
    _engine.check_rule(plain, path)
    return plain


def flagd_metadata(metadata: object, argument: str = "metadata") -> dict[str, Any]:
    """flagd's metadata: string keys, values that are strings, numbers or booleans."""
    checked = data_mapping(metadata, argument)
    for key, value in checked.items():
        if value is None or not isinstance(value, str | int | float | bool):
            raise ValueError(
                f"{argument}[{key!r}] must be a string, number or boolean, got {value!r:.200}"
            )
    return checked


def definition_changes(definition: FlagDefinition, *, replace_data: bool) -> dict[str, Any]:
    """The registers that make a flag's definition exactly ``definition`` (checked already):
    the ``definition_reset`` watermark hides what it had, and what it gives shares the
    watermark's timestamp (a watermark hides only what is older). Settings at their defaults
    (no default variant, no targeting, enabled) need no register after the watermark.
    ``replace_data``: the metadata becomes the flag's whole data (``data_reset`` too)."""
    changes: dict[str, Any] = {DEFINITION_RESET: None}
    changes.update({VARIANT_PREFIX + n: v for n, v in definition.variants.items()})
    if definition.default_variant is not None:
        changes[DEFAULT_VARIANT] = definition.default_variant
    if definition.targeting is not None:
        changes[TARGETING_RULE] = definition.targeting
    if not definition.enabled:
        changes[DISABLED] = True
    if replace_data:
        changes[DATA_RESET] = None
        changes.update({DATA + k: v for k, v in definition.metadata.items()})
    return changes


def check_default_variant(variant: object, variants: Mapping[str, Any], argument: str) -> None:
    """None, or the name of one of ``variants``."""
    if variant is None:
        return
    if not isinstance(variant, str):
        raise TypeError(f"{argument} must be a variant name (str) or None, got {variant!r}")
    if variant not in variants:
        raise ValueError(
            f"{argument} {variant!r} is not one of the flag's variants {sorted(variants)!r}"
        )
