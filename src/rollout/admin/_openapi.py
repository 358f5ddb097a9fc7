"""The OpenAPI 3.1 document of the JSON API, built from the operation table (rollout.admin._api).

Paths, methods, parameters and request bodies come from the same objects the routes check
input with; the response schemas below describe what the handlers return (the schemathesis test
checks every response against them).
"""

from __future__ import annotations

import copy
from typing import Any, get_args

from .._core.explain import Reason
from ._api import OPERATIONS, PREFIX, Operation
from ._api_fields import body_schema
from ._auth import COOKIE_NAME
from ._errors import CODES
from ._openapi_targeting import (
    FLAG_DEFINITION,
    SUMMARY_DEFINITION,
    TARGETING_SCHEMAS,
    with_definition,
)

__all__ = ["openapi_document"]


def _ref(name: str) -> dict[str, str]:
    return {"$ref": f"#/components/schemas/{name}"}


def _object(properties: dict[str, Any], *, closed: bool = True) -> dict[str, Any]:
    schema: dict[str, Any] = {"type": "object", "properties": properties, "required": [*properties]}
    if closed:
        schema["additionalProperties"] = False
    return schema


_STRINGS = {"type": "array", "items": {"type": "string"}}
_PERCENT = {"type": "number", "minimum": 0, "maximum": 100}
_NULLABLE_STRING = {"type": ["string", "null"]}
_NULLABLE_INT = {"type": ["integer", "null"]}
_COUNT = {"type": "integer", "minimum": 0}
_TIME = {"type": ["string", "null"], "format": "date-time"}
_STATE = {
    "enum": ["on", "off", "partial"],
    "description": "on: 100% of users or of the time, nobody excluded; off: no percentage, "
    "users or groups; partial: anything between.",
}
#: What is known of a flag's use, in both of its shapes (null: not known).
_USAGE: dict[str, Any] = {
    "last_changed": {**_TIME, "description": "The newest change in its history."},
    "last_changed_by": {**_NULLABLE_STRING, "description": "Who made it (the token's name)."},
    "on_since": {
        **_TIME,
        "description": "When on for everybody: since when (the newest change that could have "
        "turned it on, from history).",
    },
    "last_checked": {
        **_TIME,
        "description": "When this serve process last saw it checked (docs/http-api.md, "
        '"Last checked").',
    },
    "checks": {
        "type": ["integer", "null"],
        "minimum": 0,
        "description": "Checks this process counted (estimated by sampling; null while it does "
        "not sample).",
    },
}
_HELD = "Registers this node holds in its quarantine (GET /quarantine lists them)."

SCHEMAS: dict[str, Any] = {
    "Flag": _object(
        {
            "flag": {"type": "string"},
            "state": _STATE,
            "percentage": _PERCENT,
            "percentage_of_time": _PERCENT,
            "users": _STRINGS,
            "excluded_users": _STRINGS,
            "groups": _STRINGS,
            "data": {"type": "object"},
            "counts": _ref("Counts"),
            **_USAGE,
        }
    ),
    "FlagSummary": _object(
        {
            "flag": {"type": "string"},
            "state": _STATE,
            "percentage": _PERCENT,
            "percentage_of_time": _PERCENT,
            "counts": _ref("Counts"),
            "data_keys": _STRINGS,
            "description": {
                **_NULLABLE_STRING,
                "description": "`data.description`, when it is a string.",
            },
            **_USAGE,
        }
    ),
    # A flag's answer: full, or its summary with ?view=summary (they never match each other's
    # closed schema, so exactly one applies).
    "FlagView": {"oneOf": [_ref("Flag"), _ref("FlagSummary")]},
    "Counts": _object(
        {
            "users": _COUNT,
            "excluded_users": _COUNT,
            "groups": _COUNT,
        }
    ),
    "FlagList": _object(
        {
            "flags": {"type": "array", "items": _ref("FlagSummary")},
            "next_cursor": {
                **_NULLABLE_STRING,
                "description": "Pass it as `cursor` for the next page; null on the last one.",
            },
            "total": {**_COUNT, "description": "Flags that match the filters, on all pages."},
        }
    ),
    "UserPage": _object(
        {
            "flag": {"type": "string"},
            "total": {
                "type": "integer",
                "minimum": 0,
                "description": "How many ids there are (that match `q`, with it), on all pages.",
            },
            "users": {**_STRINGS, "description": "This page's ids, in order."},
            "excluded": {
                **_STRINGS,
                "description": "Those of this page's ids that are excluded: the flag is off for "
                "them, listed or not (the exclusion wins).",
            },
            "next_cursor": {
                **_NULLABLE_STRING,
                "description": "Pass as `cursor` for the next page; null on the last one.",
            },
        }
    ),
    "Deleted": _object({"deleted": {"type": "string"}}),
    "Check": _object(
        {
            "flag": {"type": "string"},
            "user": _NULLABLE_STRING,
            "active": {"type": "boolean"},
            "state": _STATE,
        }
    ),
    "Explanation": _object(
        {
            "flag": {"type": "string"},
            "user": _NULLABLE_STRING,
            "active": {"type": "boolean", "description": "What `check` answers (given `draw`)."},
            "reason": {
                "enum": list(get_args(Reason)),
                "description": 'The rule that decided (docs/http-api.md, "Explain").',
            },
            "message": {"type": "string", "description": "The same, in one line for people."},
            "percentage": _PERCENT,
            "percentage_of_time": _PERCENT,
            "group": {**_NULLABLE_STRING, "description": "The group that said yes."},
            "bucket": {
                "type": ["integer", "null"],
                "minimum": 0,
                "maximum": 2**32 - 1,
                "description": "The user's bucket, when a percentage of users was consulted.",
            },
            "threshold": {
                **_NULLABLE_INT,
                "description": "The bound of `percentage`: buckets below it are on.",
            },
            "bucketing": {"enum": ["crc32", "randomized", "ruby", None]},
            "draw": {
                "type": ["number", "null"],
                "minimum": 0,
                "exclusiveMaximum": 100,
                "description": "The draw of the percentage of time, when one was taken.",
            },
        }
    ),
    "HistoryEvent": _object(
        {
            "flag": {"type": "string"},
            "action": {"type": "string", "description": "The method that made the change."},
            "before": {"type": "object", "description": "What it changed, as it was."},
            "after": {"type": "object", "description": "What it changed, as it became."},
            "at": {"type": "string", "format": "date-time"},
            "node": {"type": "string", "description": "The process that made the change."},
            "actor": {**_NULLABLE_STRING, "description": "Who: the API token's name."},
            "reason": _NULLABLE_STRING,
        }
    ),
    "History": _object({"events": {"type": "array", "items": _ref("HistoryEvent")}}),
    "Groups": _object({"groups": _STRINGS}),
    "Members": _object(
        {
            "node": {"type": "string", "description": "This node's name."},
            "node_id": {"type": "string", "description": "This node's id (hex)."},
            "members": {
                "type": "array",
                "items": {
                    "type": "object",
                    "properties": {
                        "address": {"type": "string"},
                        "node": _NULLABLE_STRING,
                        "state": {"type": "string"},
                    },
                    "required": ["address", "node", "state"],
                },
                "description": "clock_offset_ms and clock_agrees: each member's clock against "
                "this node's.",
            },
            "clock": {
                "anyOf": [_ref("ClockVerdict"), {"type": "null"}],
                "description": "The verdict on this node's own clock by its peers (null "
                "without peers).",
            },
            "quarantined": {"type": "integer", "minimum": 0, "description": _HELD},
        }
    ),
    "ClockVerdict": _object(
        {
            "state": {"enum": ["ok", "outlier", "no_majority", "unconfirmed"]},
            "writable": {"type": "boolean", "description": "Whether this node takes writes."},
            "problem": {**_NULLABLE_STRING, "description": "Why writes are refused, if they are."},
            "max_offset_ms": {"type": "integer"},
            "voters": {"type": "integer", "description": "This node and the peers heard."},
            "agreeing": {"type": "integer", "description": "Within max_offset / 2 of it."},
            "disagreeing": _STRINGS,
            "offsets_ms": {"type": "object", "additionalProperties": {"type": "integer"}},
            "offset_min_ms": _NULLABLE_INT,
            "offset_max_ms": _NULLABLE_INT,
            "offset_median_ms": _NULLABLE_INT,
        },
        closed=False,
    ),
    "QuarantinedRegister": _object(
        {
            "flag": {"type": "string"},
            "key": {"type": "string", "description": "The register, e.g. `user:42`."},
            "value": {"description": "Its value, as it would have been applied."},
            "timestamp": {
                "type": "array",
                "items": {"type": "integer"},
                "description": "Its hybrid timestamp: wall ms, counter, node.",
            },
            "node": {"type": "string", "description": "The node that stamped it (hex)."},
            "origin": {"enum": ["peer", "store", "merge", "own clock"]},
            "quarantined_at_ms": {"type": "integer"},
            "ahead_ms": {"type": "integer", "description": "How far ahead of this clock."},
        }
    ),
    "Quarantine": _object({"quarantined": {"type": "array", "items": _ref("QuarantinedRegister")}}),
    "Resolved": _object(
        {
            "flag": {"type": "string"},
            "action": {"enum": ["accept", "drop"]},
            "registers": {"type": "integer", "minimum": 0, "description": "How many."},
        }
    ),
    "OpenAPI": {"type": "object", "required": ["openapi", "info", "paths"]},
    "Error": _object(
        {
            "error": _object(
                {
                    "code": {"enum": list(CODES)},
                    "field": {
                        **_NULLABLE_STRING,
                        "description": "The body field or parameter at fault, if one is.",
                    },
                    "message": {"type": "string"},
                }
            )
        }
    ),
}

_CHECK = _object(
    {
        "ok": {"type": "boolean"},
        "problem": {
            **_NULLABLE_STRING,
            "description": "What is wrong, in general terms (the details are in the log).",
        },
    }
)
SCHEMAS.update(TARGETING_SCHEMAS)
SCHEMAS["Flag"] = with_definition(SCHEMAS["Flag"], FLAG_DEFINITION)
SCHEMAS["FlagSummary"] = with_definition(SCHEMAS["FlagSummary"], SUMMARY_DEFINITION)
SCHEMAS["Health"] = _object({"status": {"const": "ok"}, "flags": {"type": "integer", "minimum": 0}})
SCHEMAS["Readiness"] = _object(
    {
        "status": {"enum": ["ready", "not ready"]},
        "checks": _object(
            {
                "open": {**_CHECK, "description": "The server is not stopping."},
                "store": {**_CHECK, "description": "The store answers a round trip now."},
                "transport": {
                    **_CHECK,
                    "description": "Redis: subscribed to its changes (others always pass).",
                },
                "clock": {**_CHECK, "description": "Local writes are not refused for the clock."},
            }
        ),
    }
)

#: The probes, outside /api/v1 (their own server URL), public: path, id, summary, schema, 503.
_PROBES = (
    ("/healthz", "healthz", "Liveness: the process answers (reads no store)", "Health", False),
    ("/livez", "livez", "The same as /healthz, under Kubernetes' name", "Health", False),
    (
        "/readyz", "readyz",
        "Readiness: the store answers, Redis is subscribed, writes are not refused for the "
        "clock; 503 (naming the failing checks) when not",
        "Readiness", True,
    ),
)  # fmt: skip


def _probe_paths(root: str) -> dict[str, Any]:
    paths: dict[str, Any] = {}
    for path, operation_id, summary, schema, can_fail in _PROBES:
        content = {"application/json": {"schema": _ref(schema)}}
        responses: dict[str, Any] = {"200": {"description": "OK", "content": content}}
        if can_fail:
            responses["503"] = {"description": "Not ready", "content": content}
        responses["403"] = _error(403)
        paths[path] = {
            "servers": [{"url": root or "/"}],
            "get": {
                "operationId": operation_id,
                "summary": summary,
                "security": [],  # public: no token
                "responses": responses,
            },
        }
    return paths


_WHY = {
    400: "The body is not JSON.",
    401: "No valid bearer token or session.",
    403: "Refused as cross-site (Origin, Sec-Fetch-Site, X-CSRF-Token) or a Host not served.",
    404: "The flag does not exist (quarantine: nothing is held for the flag or key; rules: "
    "no rule has that name).",
    413: "The body is larger than the server's limit.",
    415: "The body is not sent as application/json.",
    422: "A field or parameter is invalid; `field` names it.",
    429: "Too many wrong tokens from this address (or from everywhere): wait `Retry-After` "
    "seconds. The token was not checked.",
    503: "The store cannot be reached (or the server is shutting down); nothing was written. "
    "Or a read running the application's code (a predicate, a rule) passed code_timeout.",
    504: "The store did not answer the write in time: it may or may not have been stored "
    "(read the flag back to know).",
}


def _error(status: int) -> dict[str, Any]:
    return {"description": _WHY[status], "content": {"application/json": {"schema": _ref("Error")}}}


#: Paths of things that may not exist, besides flags: a 404 names what is missing.
_MAY_BE_MISSING = ("/quarantine/", "/rules/")


#: Reads that may be 503: the members (replication thread), those running code (code_timeout).
_MAY_BE_UNAVAILABLE = ("listMembers", "checkFlag", "explainFlag", "evaluateFlag")


def _operation(op: Operation, *, secured: bool) -> dict[str, Any]:
    statuses = [403]
    if secured:
        statuses += [401, 429]
    if op.params:
        statuses.append(422)
    if op.unknown_flag in ("not_found", "no_history") or op.path.startswith(_MAY_BE_MISSING):
        statuses.append(404)
    if op.body:
        statuses += [400, 413, 415, 422]
    if op.writes or op.operation_id in _MAY_BE_UNAVAILABLE:
        statuses.append(503)
    if op.writes:
        statuses.append(504)
    responses: dict[str, Any] = {
        "200": {"description": "OK", "content": {"application/json": {"schema": _ref(op.response)}}}
    }
    responses.update({str(status): _error(status) for status in sorted(set(statuses))})
    document: dict[str, Any] = {
        "operationId": op.operation_id,
        "summary": op.summary,
        "responses": responses,
    }
    if op.params:
        document["parameters"] = [
            {
                "name": p.name,
                "in": p.location,
                "required": p.required,
                "description": p.description,
                "schema": dict(p.schema),
            }
            for p in op.params
        ]
    if op.body:
        document["requestBody"] = {
            "required": op.body_required,
            "content": {"application/json": {"schema": body_schema(op.body)}},
        }
    return document


def _build(*, secured: bool) -> dict[str, Any]:
    paths: dict[str, dict[str, Any]] = {}
    for op in OPERATIONS:
        paths.setdefault(op.path, {})[op.method.lower()] = _operation(op, secured=secured)
    document: dict[str, Any] = {
        "openapi": "3.1.0",
        "info": {
            "title": "Rollout admin API",
            "version": "1",
            "description": "Feature flags: read, change, check, and their history.",
        },
        "servers": [{"url": PREFIX}],
        "paths": paths,
        "components": {"schemas": copy.deepcopy(SCHEMAS)},
    }
    if secured:
        document["components"]["securitySchemes"] = {
            "bearer": {"type": "http", "scheme": "bearer", "description": "An API token."},
            "session": {"type": "apiKey", "in": "cookie", "name": COOKIE_NAME},
        }
        document["security"] = [{"bearer": []}, {"session": []}]
    return document


_DOCUMENTS = {secured: _build(secured=secured) for secured in (False, True)}


def openapi_document(base_url: str = PREFIX, *, secured: bool) -> dict[str, Any]:
    """The document, its server URL where the API is (``/admin/api/v1`` when mounted there)."""
    document = dict(_DOCUMENTS[secured])
    document["servers"] = [{"url": base_url}]
    root = base_url.removesuffix(PREFIX) if base_url.endswith(PREFIX) else ""
    document["paths"] = {**document["paths"], **_probe_paths(root)}
    return document
