"""The JSON shapes of targeting as data, one definition for the CLI's ``--json`` and the API:

* :func:`definition_shape` — a flag's definition in flagd's words (``variants``,
  ``defaultVariant``, ``targeting``, ``state``, ``metadata``) under its name (``flag``): an
  entry of a flagd file, so it can be copied into one; ``rollout variants --json`` and
  ``GET /api/v1/flags/{name}/definition`` (and the definition's writes) answer it;
* :func:`rule_shape` — a named rule: ``rollout rules --json`` and ``/api/v1/rules/{rule}``;
* :func:`evaluation_shape` — an evaluation's answer (value, variant, reason, error):
  ``rollout evaluate --json`` and ``POST /api/v1/flags/{name}/evaluate``.
"""

from __future__ import annotations

from collections.abc import Iterable, Mapping
from typing import TYPE_CHECKING, Any

from . import targeting as _engine  # loaded with the first definition parsed
from .feature import Feature
from .history_event import HistoryEvent
from .keys import RULE
from .targeting import JSON, Resolution, RuleError

if TYPE_CHECKING:
    from .targeting import FlagDefinition

__all__ = [
    "DEFINITION_KEYS",
    "definition_shape",
    "evaluation_shape",
    "flagd_state",
    "parse_definition",
    "rule_events",
    "rule_shape",
]

#: The keys of one flag's entry in a flagd file.
DEFINITION_KEYS = ("variants", "defaultVariant", "targeting", "state", "metadata")
#: The key the entry is checked under: any name would do (the flag's name is checked apart).
_CHECKED = "flag"


def flagd_state(enabled: bool) -> str:
    """flagd's word for a flag's state."""
    return "ENABLED" if enabled else "DISABLED"


def definition_shape(feature: Feature) -> dict[str, Any]:
    """``feature``'s definition; an on/off flag has no variants (``{}``)."""
    return {
        "flag": feature.name,
        "variants": dict(feature.variants),
        "defaultVariant": feature.default_variant,
        "targeting": feature.targeting,
        "state": flagd_state(feature.enabled),
        "metadata": dict(feature.data),
    }


def rule_shape(name: str, logic: JSON) -> dict[str, Any]:
    return {"rule": name, "logic": logic}


def rule_events(events: Iterable[HistoryEvent], rule: str) -> list[dict[str, Any]]:
    """The events of the named rules' history that changed ``rule``, as JSON: a flag's history
    events, with ``rule`` (its name) where those have ``flag``."""
    key = RULE + rule
    shown = []
    for event in events:
        if key in event.before or key in event.after:
            data = event.to_dict()
            del data["flag"]  # the rules' reserved entity: no flag's
            shown.append({"rule": rule, **data})
    return shown


def evaluation_shape(name: str, resolution: Resolution) -> dict[str, Any]:
    return {
        "flag": name,
        "value": resolution.value,
        "variant": resolution.variant,
        "reason": resolution.reason,
        "error_code": resolution.error_code,
        "error_message": resolution.error_message,
    }


def parse_definition(entry: Mapping[str, Any]) -> FlagDefinition:
    """One flag's entry of a flagd file (``state`` may be left out: ENABLED), checked whole as
    flagd's schema checks it. RuleError with the JSON path from the entry (``$.targeting``)."""
    checked = {"state": "ENABLED", **entry}
    try:
        return _engine.parse_flagd({"flags": {_CHECKED: checked}}).flags[_CHECKED]
    except RuleError as exc:
        prefix = f"$.flags.{_CHECKED}"
        if exc.path.startswith(prefix):
            raise RuleError("$" + exc.path[len(prefix) :], exc.message) from None
        raise
