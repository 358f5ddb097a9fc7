"""The OpenAPI response schemas of the targeting operations (rollout.admin._api_targeting)."""

from __future__ import annotations

from typing import Any, Final

__all__ = ["FLAG_DEFINITION", "SUMMARY_DEFINITION", "TARGETING_SCHEMAS", "with_definition"]

_NULLABLE_STRING = {"type": ["string", "null"]}


def _closed(properties: dict[str, Any]) -> dict[str, Any]:
    return {
        "type": "object",
        "properties": properties,
        "required": [*properties],
        "additionalProperties": False,
    }


TARGETING_SCHEMAS: Final[dict[str, Any]] = {
    "Definition": _closed(
        {
            "flag": {"type": "string"},
            "variants": {
                "type": "object",
                "description": "Variant name -> value; `{}` for an on/off flag.",
            },
            "defaultVariant": {
                **_NULLABLE_STRING,
                "description": "null: the caller's default is answered when no rule decides.",
            },
            "targeting": {
                "type": ["object", "null"],
                "description": "The JsonLogic rule choosing a variant; null: none.",
            },
            "state": {"enum": ["ENABLED", "DISABLED"]},
            "metadata": {"type": "object", "description": "The flag's data."},
        }
    ),
    "Evaluation": _closed(
        {
            "flag": {"type": "string"},
            "value": {"description": "The variant's value; null: the caller's default applies."},
            "variant": _NULLABLE_STRING,
            "reason": {
                "type": "string",
                "description": "flagd's reason (STATIC, TARGETING_MATCH, DEFAULT, DISABLED, "
                'ERROR); for an on/off flag, the rule of `explain` (docs/http-api.md, "Explain").',
            },
            "error_code": {
                **_NULLABLE_STRING,
                "description": "FLAG_NOT_FOUND, PARSE_ERROR or GENERAL, with reason ERROR.",
            },
            "error_message": _NULLABLE_STRING,
        }
    ),
    "Rule": _closed(
        {
            "rule": {"type": "string"},
            "logic": {"type": "object", "description": "The rule's JsonLogic."},
        }
    ),
    "Rules": _closed({"rules": {"type": "array", "items": {"$ref": "#/components/schemas/Rule"}}}),
    "DeletedRule": _closed({"deleted": {"type": "string"}}),
    "RuleEvent": _closed(
        {
            "rule": {"type": "string"},
            "action": {"type": "string", "description": "define_rule, remove_rule, ..."},
            "before": {"type": "object", "description": "`rule:NAME`: the rule as it was."},
            "after": {"type": "object", "description": "`rule:NAME`: as it became (null: gone)."},
            "at": {"type": "string", "format": "date-time"},
            "node": {"type": "string"},
            "actor": {**_NULLABLE_STRING, "description": "Who: the API token's name."},
            "reason": _NULLABLE_STRING,
        }
    ),
    "RuleHistory": _closed(
        {"events": {"type": "array", "items": {"$ref": "#/components/schemas/RuleEvent"}}}
    ),
    "FlagdDocument": {
        "type": "object",
        "required": ["flags"],
        "properties": {
            "flags": {"type": "object"},
            "$evaluators": {"type": "object"},
            "metadata": {"type": "object"},
        },
        "description": "flagd's flag-definition file (https://flagd.dev/schema/v0/flags.json).",
    },
    "FlagdImport": _closed(
        {
            "flags": {
                "type": "array",
                "items": {"type": "string"},
                "description": "The flags loaded.",
            },
            "rules": {
                "type": "array",
                "items": {"type": "string"},
                "description": "The named rules loaded ($evaluators).",
            },
        }
    ),
}


_ONLY = "Only for a flag with a definition (variants): an on/off flag's shape has none of these."
#: What a flag with a definition adds to its full shape (``Flag``) ...
FLAG_DEFINITION: Final[dict[str, Any]] = {
    "variants": {"type": "object", "description": "Variant name -> value. " + _ONLY},
    "default_variant": _NULLABLE_STRING,
    "targeting": {"type": ["object", "null"], "description": "The JsonLogic rule, or null."},
    "enabled": {"type": "boolean", "description": "false: flagd's state DISABLED."},
}
#: ... and to its summary (``FlagSummary``).
SUMMARY_DEFINITION: Final[dict[str, Any]] = {
    "variants": {
        "type": "array",
        "items": {"type": "string"},
        "description": "The variants' names. " + _ONLY,
    },
    "default_variant": _NULLABLE_STRING,
    "has_targeting": {"type": "boolean"},
    "enabled": {"type": "boolean", "description": "false: flagd's state DISABLED."},
}


def with_definition(schema: dict[str, Any], added: dict[str, Any]) -> dict[str, Any]:
    """A flag shape's closed schema with the definition's fields, present together or not at
    all (they are not required: an on/off flag has none)."""
    return {
        **schema,
        "properties": {**schema["properties"], **added},
        "dependentRequired": {name: sorted(set(added) - {name}) for name in added},
    }
