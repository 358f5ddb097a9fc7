"""flagd flag definitions: the data classes, parsing and validation, and the way back to JSON.

Validation follows flagd's JSON schema (flagd-schemas json/flags.json and targeting.json) and
what flagd's loader adds to it (a default variant must name a variant; an evaluator may not be
``{}``). Everything is checked before anything is returned: a RuleError names the JSON path of
the first problem, and nothing is half-parsed. Where flagd's evaluator is more lenient than its
schema (flagd loads a ``sem_ver`` with two arguments and answers null when it runs, and its
testkit checks that), the evaluator's behaviour is kept: see docs/targeting.md.
"""

from __future__ import annotations

import copy
import json
import math
from collections.abc import Mapping
from dataclasses import dataclass, field
from typing import Any

from .check import check_rule
from .errors import JSON, RuleError

__all__ = [
    "FlagDefinition",
    "FlagdDocument",
    "check_definition",
    "check_metadata",
    "parse_flagd",
    "to_flagd",
]

Scalar = str | int | float | bool
_STATES = {"ENABLED": True, "DISABLED": False}
_VARIANT_KINDS = {bool: "boolean", str: "string", int: "number", float: "number", dict: "object"}
_MAX_VALUE_DEPTH = 32


@dataclass(frozen=True)
class FlagDefinition:
    """One flag in flagd's terms (immutable; ``variants`` and ``metadata`` are not copied)."""

    variants: Mapping[str, JSON]  # name -> value: all booleans, strings, numbers or objects
    default_variant: str | None  # None: no default variant (the caller's default is answered)
    targeting: JSON | None = None  # a JsonLogic rule (may hold {"$ref": name}); None: none
    enabled: bool = True  # flagd's "state": ENABLED / DISABLED
    metadata: Mapping[str, Scalar] = field(default_factory=dict)


@dataclass(frozen=True)
class FlagdDocument:
    """A parsed flagd flag-definition document."""

    flags: dict[str, FlagDefinition]
    evaluators: dict[str, JSON]  # "$evaluators": name -> JsonLogic fragment
    metadata: dict[str, Scalar]  # the flag set's metadata, which every flag inherits

    def flag_metadata(self, key: str) -> dict[str, Scalar]:
        """A flag's metadata as flagd answers it: the flag set's, overridden by the flag's."""
        return {**self.metadata, **self.flags[key].metadata}


def key_path(path: str, key: str) -> str:
    """``path`` + ``key`` in the JSONPath-like notation RuleError uses."""
    simple = key.replace("_", "a").replace("-", "a").isalnum() and key.isascii()
    return f"{path}.{key}" if simple else f"{path}[{json.dumps(key)}]"


def _json_problem(value: Any) -> str | None:
    """What makes ``value`` not a JSON value (finite numbers, str keys, bounded depth)."""
    level: list[Any] = [value]
    for _ in range(_MAX_VALUE_DEPTH + 1):
        deeper: list[Any] = []
        for item in level:
            if isinstance(item, float) and not math.isfinite(item):
                return f"{item!r} is not a JSON number"
            if isinstance(item, dict):
                if not all(isinstance(k, str) for k in item):
                    return "an object has a key that is not a string"
                deeper.extend(item.values())
            elif isinstance(item, list):
                deeper.extend(item)
            elif item is not None and not isinstance(item, str | int | float):
                return f"{type(item).__name__} {item!r:.60} is not a JSON value"
        if not deeper:
            return None
        level = deeper
    return f"nests more than {_MAX_VALUE_DEPTH} levels deep"


def check_metadata(metadata: Any, path: str) -> dict[str, Scalar]:
    """Metadata as the schema allows it: string keys, string/number/boolean values."""
    if not isinstance(metadata, Mapping):
        raise RuleError(path, f"metadata is an object, not {type(metadata).__name__}")
    checked: dict[str, Scalar] = {}
    for key, value in metadata.items():
        here = key_path(path, str(key))
        if not isinstance(key, str):
            raise RuleError(here, f"a metadata key is a string, not {key!r}")
        if not isinstance(value, str | int | float) or (
            isinstance(value, float) and not math.isfinite(value)
        ):
            raise RuleError(here, f"metadata values are strings, numbers or booleans: {value!r}")
        checked[key] = value
    return checked


def check_definition(definition: FlagDefinition, path: str = "$") -> None:
    """RuleError (naming the path) unless ``definition`` is a flag flagd's schema accepts."""
    variants = definition.variants
    here = f"{path}.variants"
    if not isinstance(variants, Mapping) or not variants:
        raise RuleError(here, "a flag has at least one variant (an object: name -> value)")
    kinds = set()
    for name, value in variants.items():
        at = key_path(here, str(name))
        if not isinstance(name, str) or not name:
            raise RuleError(at, f"a variant name is a non-empty string, not {name!r}")
        kind = _VARIANT_KINDS.get(type(value))
        if kind is None:
            raise RuleError(at, f"a variant is a boolean, string, number or object: {value!r:.80}")
        if (problem := _json_problem(value)) is not None:
            raise RuleError(at, problem)
        kinds.add(kind)
    if len(kinds) > 1:
        raise RuleError(here, f"all variants of a flag have one type, not {sorted(kinds)}")
    default = definition.default_variant
    if default is not None and (not isinstance(default, str) or default not in variants):
        raise RuleError(f"{path}.defaultVariant", f"{default!r} is not one of the variants")
    if definition.targeting is not None:
        check_rule(definition.targeting, f"{path}.targeting")
    if not isinstance(definition.enabled, bool):
        raise RuleError(f"{path}.state", f"enabled is True or False, not {definition.enabled!r}")
    check_metadata(definition.metadata, f"{path}.metadata")


def _flag(raw: Any, path: str) -> FlagDefinition:
    if not isinstance(raw, Mapping):
        raise RuleError(path, f"a flag is an object, not {type(raw).__name__}")
    for required in ("state", "variants"):
        if required not in raw:
            raise RuleError(path, f"a flag needs {required!r}")
    state = raw["state"]
    if state not in _STATES or not isinstance(state, str):
        raise RuleError(f"{path}.state", f"state is 'ENABLED' or 'DISABLED', not {state!r}")
    default = raw.get("defaultVariant")
    if default is not None and not isinstance(default, str):
        raise RuleError(f"{path}.defaultVariant", f"a string or null, not {default!r}")
    targeting = raw.get("targeting")
    if "targeting" in raw and not isinstance(targeting, dict):
        raise RuleError(f"{path}.targeting", f"targeting is an object, not {targeting!r:.80}")
    definition = FlagDefinition(
        variants=dict(raw["variants"]) if isinstance(raw["variants"], Mapping) else raw["variants"],
        # flagd reads an empty default variant as none, and {} targeting as no targeting.
        default_variant=default or None,
        targeting=targeting or None,
        enabled=_STATES[state],
        metadata=check_metadata(raw.get("metadata", {}), f"{path}.metadata"),
    )
    check_definition(definition, path)
    return definition


def _flags(raw: Any) -> dict[str, FlagDefinition]:
    if isinstance(raw, list):  # flagd's daemon also takes an array of flags with a "key"
        flags: dict[str, FlagDefinition] = {}
        for index, item in enumerate(raw):
            here = f"$.flags[{index}]"
            key = item.get("key") if isinstance(item, Mapping) else None
            if not isinstance(key, str) or not key:
                raise RuleError(f"{here}.key", "a flag in an array needs a non-empty string key")
            if key in flags:
                raise RuleError(f"{here}.key", f"flag {key!r} is defined twice")
            flags[key] = _flag(item, here)
        return flags
    if not isinstance(raw, Mapping):
        raise RuleError("$.flags", f"flags is an object (key -> flag), not {type(raw).__name__}")
    for key in raw:
        if not isinstance(key, str) or not key:
            raise RuleError("$.flags", f"a flag key is a non-empty string, not {key!r}")
    return {key: _flag(value, key_path("$.flags", key)) for key, value in raw.items()}


def _evaluators(raw: Any) -> dict[str, JSON]:
    if not isinstance(raw, Mapping):
        raise RuleError("$.$evaluators", f"$evaluators is an object, not {type(raw).__name__}")
    evaluators: dict[str, JSON] = {}
    for name, rule in raw.items():
        here = key_path("$.$evaluators", str(name))
        if not isinstance(name, str) or not name:
            raise RuleError(here, f"an evaluator name is a non-empty string, not {name!r}")
        if rule == {}:
            raise RuleError(here, "an evaluator is a rule, not {} (flagd refuses it)")
        check_rule(rule, here)
        evaluators[name] = rule
    return evaluators


def _reject_constant(name: str) -> Any:
    raise ValueError(f"{name} is not JSON")


def parse_flagd(document: Mapping[str, Any] | str | bytes) -> FlagdDocument:
    """Parse and validate a flagd flag-definition document (a mapping, or its JSON text).

    RuleError names the JSON path of the first problem; nothing partial is returned.
    """
    if isinstance(document, str | bytes | bytearray):
        try:
            document = json.loads(document, parse_constant=_reject_constant)
        except (ValueError, RecursionError) as error:
            raise RuleError("$", f"the document is not JSON: {error}") from None
    elif isinstance(document, Mapping):
        # A copy: the caller's later edits of nested values must not reach the definitions.
        try:
            document = copy.deepcopy(document)
        except RecursionError:
            raise RuleError("$", "the document is nested too deeply") from None
    if not isinstance(document, Mapping):
        raise RuleError("$", f"a flagd document is a JSON object, not {type(document).__name__}")
    if "flags" not in document:
        raise RuleError("$", "a flagd document needs 'flags'")
    flags = _flags(document["flags"])
    evaluators = _evaluators(document.get("$evaluators", {}))
    metadata = check_metadata(document.get("metadata", {}), "$.metadata")
    return FlagdDocument(flags=flags, evaluators=evaluators, metadata=metadata)


#: The JSON schema of flagd's flag-definition files, named in the files it writes.
FLAGD_SCHEMA = "https://flagd.dev/schema/v0/flags.json"


def to_flagd(
    flags: Mapping[str, FlagDefinition],
    evaluators: Mapping[str, JSON],
    metadata: Mapping[str, Any] | None = None,
) -> dict[str, Any]:
    """A flagd document that parse_flagd reads back to the same definitions."""
    out_flags: dict[str, Any] = {}
    for key, definition in flags.items():
        flag: dict[str, Any] = {
            "state": "ENABLED" if definition.enabled else "DISABLED",
            "variants": dict(definition.variants),
            "defaultVariant": definition.default_variant,
        }
        if definition.targeting is not None:
            flag["targeting"] = definition.targeting
        if definition.metadata:
            flag["metadata"] = dict(definition.metadata)
        out_flags[key] = flag
    # flagd's files name their schema first; editors validate and complete by it.
    document: dict[str, Any] = {"$schema": FLAGD_SCHEMA, "flags": out_flags}
    if evaluators:
        document["$evaluators"] = dict(evaluators)
    if metadata:
        document["metadata"] = dict(metadata)
    return document
