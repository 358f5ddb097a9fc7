"""The API's operations on targeting as data (issue 16): a flag's flagd definition (variants,
default variant, targeting rule, state, metadata), its targeting alone, named rules (flagd's
``$evaluators``, also groups of on/off flags: "segments"), an evaluation for a context (the
dashboard's preview) and whole flagd documents, imported and exported.

Rules and definitions are checked by the targeting engine (``rollout._core.targeting``), which
validates as flagd's JSON schema does and names the JSON path of what it refuses: that path is
the error's ``field`` (``$.targeting.if[1]``), and nothing is written.
"""

from __future__ import annotations

import functools
from collections.abc import Callable, Mapping
from typing import TYPE_CHECKING, Any, Final, Protocol

from .._core.definition_shapes import (
    DEFINITION_KEYS,
    definition_shape,
    evaluation_shape,
    parse_definition,
    rule_events,
    rule_shape,
)
from .._core.targeting import FlagDefinition, RuleError, check_rule, parse_flagd
from ._api_fields import LIMIT, NAME_PATH, REASON, Field, Param, member_parser
from ._errors import ApiError
from ._operation import Call, Operation

if TYPE_CHECKING:
    from .._client.rollout import Rollout


class Api(Protocol):
    """What these handlers use of rollout.admin._api's Api (which imports this module)."""

    flags: Rollout

    async def write(self, call: Call, method: Callable[..., None], *args: Any) -> None: ...

    async def run_code(self, name: str, function: Callable[..., Any], *args: Any) -> Any: ...


__all__ = ["RULE_BODY_OPERATIONS", "TARGETING_OPERATIONS"]


def _refused(exc: RuleError, root: str = "$") -> ApiError:
    """A RuleError as the API's 422: ``field`` is the JSON path of the culprit in the body."""
    path = root + exc.path[1:] if exc.path.startswith("$") else exc.path
    return ApiError("invalid", f"{path}: {exc.message}"[:1000], field=path)


def _object(name: str) -> Any:
    def parse(value: Any) -> dict[str, Any]:
        if not isinstance(value, dict):
            raise ApiError(
                "invalid", f"$.{name}: must be a JSON object, got {value!r:.80}", field=f"$.{name}"
            )
        return value

    return parse


def _rule(name: str) -> Any:
    def parse(value: Any) -> Any:
        _object(name)(value)
        try:
            check_rule(value, f"$.{name}")
        except RuleError as exc:
            raise _refused(exc) from None
        return value

    return parse


def _nullable_string(name: str) -> Any:
    def parse(value: Any) -> str | None:
        if value is not None and not isinstance(value, str):
            raise ApiError(
                "invalid", f"$.{name}: must be a string or null, got {value!r:.80}", f"$.{name}"
            )
        return value

    return parse


def _string(name: str) -> Any:
    def parse(value: Any) -> str:
        if not isinstance(value, str):
            raise ApiError("invalid", f"$.{name}: must be a string, got {value!r:.80}", f"$.{name}")
        return value

    return parse


def _state(value: Any) -> str:
    if value not in ("ENABLED", "DISABLED"):
        raise ApiError(
            "invalid", f"$.state: must be ENABLED or DISABLED, got {value!r:.80}", "$.state"
        )
    return str(value)


_RULE_NOTE = (
    "A JsonLogic rule, as flagd's targeting: its operators (`if`, `==`, `in`, `var`, ...) and "
    'flagd\'s (`fractional`, `sem_ver`, `starts_with`, `ends_with`), and `{"$ref": RULE}`. '
    "Checked as flagd's schema checks it, with bounds on size and depth: a 422 names the JSON "
    "path of what is refused."
)
#: A flag's definition in flagd's words (one entry of a flagd file's "flags").
DEFINITION: Final = (
    Field(
        "variants", {"type": "object"}, _object("variants"),
        "Variant name -> its value (booleans, strings, numbers or objects: one kind per flag).",
    ),
    Field(
        "defaultVariant", {"type": ["string", "null"]}, _nullable_string("defaultVariant"),
        "The variant answered when no rule decides; null or left out: the caller's default.",
        required=False,
    ),
    Field(
        "targeting", {"type": "object"}, _rule("targeting"), _RULE_NOTE + " `{}`: none.",
        required=False,
    ),
    Field(
        "state", {"enum": ["ENABLED", "DISABLED"]}, _state,
        "DISABLED: every evaluation answers the caller's default (reason DISABLED).",
        required=False,
    ),
    Field(
        "metadata", {"type": "object"}, _object("metadata"),
        "Kept as the flag's data (strings, numbers, booleans).", required=False,
    ),
    REASON,
)  # fmt: skip
TARGETING: Final = Field("targeting", {"type": "object"}, _rule("targeting"), _RULE_NOTE)
LOGIC: Final = Field("logic", {"type": "object"}, _rule("logic"), _RULE_NOTE)
CONTEXT: Final = Field(
    "context",
    {"type": "object"},
    _object("context"),
    "The evaluation context: `targetingKey` (the user id) and attributes; none: empty.",
    required=False,
)
#: A flagd document's top-level keys, so that a flagd file is the body as it is.
FLAGD_DOCUMENT: Final = (
    Field(
        "flags", {"type": "object"}, _object("flags"),
        "Flag name -> its definition (`variants`, `defaultVariant`, `targeting`, `state`, "
        "`metadata`), as in a flagd file.",
    ),
    Field(
        "$evaluators", {"type": "object"}, _object("$evaluators"),
        "Named rules, referenced with `{\"$ref\": NAME}`.", required=False,
    ),
    Field("metadata", {"type": "object"}, _object("metadata"), "Flags inherit it.", False),
    Field("$schema", {"type": "string"}, _string("$schema"), "flagd's schema URL.", False),
)  # fmt: skip
RULE_PATH: Final = Param(
    "rule",
    "path",
    NAME_PATH.schema,
    member_parser("rule"),
    "The rule's name, percent-encoded (/ as %2F).",
)
#: The reason of an import, whose body is the flagd document as it is.
REASON_QUERY: Final = Param(
    "reason", "query", REASON.schema, REASON.parse, REASON.description, required=False
)


# Handlers -------------------------------------------------------------------------------------


def _definition(values: Mapping[str, Any]) -> FlagDefinition:
    """The body's definition, checked whole as flagd's schema checks one flag."""
    try:
        return parse_definition({key: values[key] for key in DEFINITION_KEYS if key in values})
    except RuleError as exc:
        raise _refused(exc) from None


async def _get_definition(api: Api, call: Call) -> Any:
    return definition_shape(api.flags.get(call.name))


async def _put_definition(api: Api, call: Call) -> Any:
    definition = _definition(call.values)
    define = functools.partial(
        api.flags.define_flag,
        call.name,
        dict(definition.variants),
        default_variant=definition.default_variant,
        targeting=definition.targeting,
        enabled=definition.enabled,
        # Left out: the flag's data (its metadata) stays as it is.
        metadata=dict(definition.metadata) if "metadata" in call.values else None,
    )
    await api.write(call, define)
    return definition_shape(api.flags.get(call.name))


async def _put_targeting(api: Api, call: Call) -> Any:
    rule = call.values["targeting"]
    await api.write(call, api.flags.set_targeting, call.name, rule or None)
    return definition_shape(api.flags.get(call.name))


async def _delete_targeting(api: Api, call: Call) -> Any:
    feature = api.flags.get(call.name)
    if api.flags.exists(call.name) and not feature.variants:
        # An on/off flag has no targeting rule to remove: answered as it is, nothing written.
        return definition_shape(feature)
    await api.write(call, api.flags.set_targeting, call.name, None)
    return definition_shape(api.flags.get(call.name))


async def _evaluate(api: Api, call: Call) -> Any:
    context = call.values.get("context") or {}
    # Predicates of groups are the application's code and may be slow: off the event loop, on
    # a thread counted apart from those of writes (_code_threads).
    resolution = await api.run_code(call.name, api.flags.evaluate, call.name, context)
    return evaluation_shape(call.name, resolution)


async def _list_rules(api: Api, _call: Call) -> Any:
    return {"rules": [rule_shape(name, logic) for name, logic in sorted(api.flags.rules().items())]}


def _known_rule(api: Api, name: str) -> Any:
    rules = api.flags.rules()
    if name not in rules:
        raise ApiError("not_found", f"no rule named {name!r}", field="rule")
    return rules[name]


async def _get_rule(api: Api, call: Call) -> Any:
    rule = call.values["rule"]
    return rule_shape(rule, _known_rule(api, rule))


async def _put_rule(api: Api, call: Call) -> Any:
    rule = call.values["rule"]
    await api.write(call, api.flags.define_rule, rule, call.values["logic"])
    return rule_shape(rule, _known_rule(api, rule))


async def _delete_rule(api: Api, call: Call) -> Any:
    rule = call.values["rule"]
    _known_rule(api, rule)
    await api.write(call, api.flags.remove_rule, rule)
    return {"deleted": rule}


async def _rule_history(api: Api, call: Call) -> Any:
    rule = call.values["rule"]
    events = rule_events(api.flags.rule_history(), rule)
    if not events and rule not in api.flags.rules():
        # As a flag's history says it: an empty answer would hide a typo.
        raise ApiError("not_found", f"no rule named {rule!r} and no history for it", "rule")
    limit = call.values.get("limit")
    return {"events": events[:limit]}


async def _export_flagd(api: Api, _call: Call) -> Any:
    return api.flags.export_flagd()


async def _import_flagd(api: Api, call: Call) -> Any:
    document = {key: call.values[key] for key in _DOCUMENT_KEYS if key in call.values}
    try:
        parsed = parse_flagd(document)  # checked whole before anything is written
    except RuleError as exc:
        raise _refused(exc) from None
    loaded: list[str] = []

    def load() -> None:
        loaded.extend(api.flags.load_flagd(document))

    await api.write(call, load)
    return {"flags": loaded, "rules": sorted(parsed.evaluators)}


_DOCUMENT_KEYS = tuple(field.name for field in FLAGD_DOCUMENT)
_FLAG = (NAME_PATH,)
_RULE = (RULE_PATH,)
_WHY = (REASON,)

#: Operations whose bodies hold rules: JSON Schema describes their shape (objects), the
#: targeting engine their meaning (operators, arity, references, bounds) with a 422 naming the
#: JSON path. Generated "valid" bodies are mostly not valid rules (tests/admin's schemathesis).
RULE_BODY_OPERATIONS: Final = frozenset(
    {"putFlagDefinition", "putFlagTargeting", "putRule", "importFlagd"}
)

TARGETING_OPERATIONS: tuple[Operation, ...] = (
    Operation(
        "GET", "/flags/{name}/definition", "getFlagDefinition",
        "The flag's definition in flagd's words (variants, defaultVariant, targeting, state, "
        "metadata); an on/off flag has no variants",
        _get_definition, "Definition", _FLAG, unknown_flag="not_found",
    ),
    Operation(
        "PUT", "/flags/{name}/definition", "putFlagDefinition",
        "Make the flag's definition exactly this flagd flag definition, in one write",
        _put_definition, "Definition", _FLAG, DEFINITION, "create",
    ),
    Operation(
        "PUT", "/flags/{name}/targeting", "putFlagTargeting",
        "The targeting rule (JsonLogic choosing a variant) of a flag with variants; `{}`: none",
        _put_targeting, "Definition", _FLAG, (TARGETING, REASON), "not_found",
    ),
    Operation(
        "DELETE", "/flags/{name}/targeting", "deleteFlagTargeting",
        "Remove the flag's targeting rule: its default variant answers",
        _delete_targeting, "Definition", _FLAG, _WHY, unknown_flag="not_found",
        body_required=False,
    ),
    Operation(
        "POST", "/flags/{name}/evaluate", "evaluateFlag",
        "The flag's answer for an evaluation context: value, variant and reason (flagd's); "
        "changes nothing",
        _evaluate, "Evaluation", _FLAG, (CONTEXT,), body_required=False, read_only=True,
    ),
    Operation(
        "GET", "/rules", "listRules", "The named rules (flagd's $evaluators), by name",
        _list_rules, "Rules",
    ),
    Operation("GET", "/rules/{rule}", "getRule", "One named rule", _get_rule, "Rule", _RULE),
    Operation(
        "PUT", "/rules/{rule}", "putRule",
        "Define a named rule, or change it: every flag referring to it follows",
        _put_rule, "Rule", _RULE, (LOGIC, REASON),
    ),
    Operation(
        "DELETE", "/rules/{rule}", "deleteRule",
        "Forget a named rule (refused while a flag's targeting refers to it with $ref)",
        _delete_rule, "DeletedRule", _RULE, _WHY, body_required=False,
    ),
    Operation(
        "GET", "/rules/{rule}/history", "ruleHistory",
        "The named rule's changes, newest first (kept after it is removed)",
        _rule_history, "RuleHistory", (RULE_PATH, LIMIT),
    ),
    Operation(
        "GET", "/flagd", "exportFlagd",
        "Every flag with a definition, and every named rule, as one flagd flag-definition file",
        _export_flagd, "FlagdDocument",
    ),
    Operation(
        "POST", "/flagd", "importFlagd",
        "Load a flagd flag-definition file (the body as it is): checked whole, then each flag's "
        "definition replaces what it had and its $evaluators become named rules",
        _import_flagd, "FlagdImport", (REASON_QUERY,), FLAGD_DOCUMENT,
    ),
)  # fmt: skip
