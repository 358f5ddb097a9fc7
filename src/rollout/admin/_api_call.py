"""From a request to an operation's answer: its input read and checked (a :class:`Call`), the
handler run, the answer or the refusal sent.

Two ways in, with the same answers: the Starlette endpoint of a route (:func:`endpoint`), and,
for a path whose operations only read and take no body (the check among them), a plain ASGI
app (:func:`direct`) that the app's gate calls without Starlette's request wrappers (see
``_routing.py``): the check is the endpoint clients call most.
"""

from __future__ import annotations

import urllib.parse
from collections.abc import Awaitable, Callable, Mapping
from typing import TYPE_CHECKING, Any, Final, Protocol

from starlette.requests import Request
from starlette.responses import Response
from starlette.types import ASGIApp, Receive, Scope, Send

from ..errors import RolloutError
from ._api_fields import parse_body
from ._asked import client_of
from ._errors import ApiError, error_response, rollout_error_response
from ._operation import PREFIX, Call, Operation
from ._serialize import JsonAnswer, read_json, send_json

if TYPE_CHECKING:
    from .._client.rollout import Rollout

__all__ = ["PARSED_SIZE", "direct", "endpoint"]

#: Path parameters whose parse is remembered at most (emptied when full). A parse is a pure
#: function of the text (names: the naming rule), and only a name that passes is kept.
PARSED_SIZE: Final = 4096
_PARSED: dict[tuple[Callable[[Any], Any], str], Any] = {}
_UNSEEN: Final = object()


class _Api(Protocol):
    """What of the Api (``_api.py``, which imports this module) a call needs."""

    flags: Rollout
    max_body: int
    require_reason: bool


def endpoint(api: _Api, ops: dict[str, Operation]) -> Callable[[Request], Awaitable[Response]]:
    """The Starlette endpoint of one path's operations (by method; HEAD is GET's)."""

    async def answer(request: Request) -> Response:
        op = ops["GET" if request.method == "HEAD" else request.method]
        scope = request.scope
        try:
            values = _params(op, request.path_params, scope)
            if op.body and (op.body_required or _has_body(request)):
                values.update(parse_body(await read_json(request, api.max_body), op.body))
            call = _checked(api, op, values, scope)
            payload = await op.handler(api, call)
        except ApiError as exc:
            return error_response(exc.code, exc.message, exc.field)
        except RolloutError as exc:
            # The store away, the Rollout closed, the clock skewed: nothing was written (503);
            # or a write the store did not answer in time: it may have been (504).
            return rollout_error_response(exc)
        return JsonAnswer(payload)

    return answer


def direct(api: _Api, ops: dict[str, Operation]) -> ASGIApp | None:
    """The same answers as :func:`endpoint` as a plain ASGI app, for a path whose operations
    all read without a body (GET, and so HEAD); None for any other path."""
    if set(ops) != {"GET"} or ops["GET"].body:
        return None
    op = ops["GET"]
    # What _checked asks of a read that answers for any flag (the check's): nothing.
    plain = op.unknown_flag == "ok"

    async def answer(scope: Scope, receive: Receive, send: Send) -> None:
        try:
            values = _params(op, scope["path_params"], scope)
            if plain:
                root = scope.get("root_path", "")
                call = Call(
                    values.get("name", ""), values, scope["state"].get("actor"), root + PREFIX
                )
            else:
                call = _checked(api, op, values, scope)
            payload = await op.handler(api, call)
        except ApiError as exc:
            refusal = error_response(exc.code, exc.message, exc.field)
        except RolloutError as exc:
            refusal = rollout_error_response(exc)
        else:
            await send_json(send, payload)
            return
        await refusal(scope, receive, send)

    return answer


def _params(op: Operation, path_params: Mapping[str, Any], scope: Scope) -> dict[str, Any]:
    """The operation's path and query parameters, each parsed (an ApiError if one is bad)."""
    values: dict[str, Any] = {}
    query: dict[str, str] | None = None
    for param in op.params:
        if param.location != "path":
            if query is None:
                query = _query(scope)
            raw = query.get(param.name)
            if raw is not None:
                values[param.name] = param.parse(raw)
            continue
        raw = path_params.get(param.name)
        if raw is None:
            continue
        # A path names the same few flags again and again: each name's parse (the naming
        # rule's checks) is remembered, as the route its path resolved to is.
        key = (param.parse, raw)
        parsed = _PARSED.get(key, _UNSEEN)
        if parsed is _UNSEEN:
            parsed = param.parse(raw)  # an ApiError: not remembered
            if isinstance(parsed, str):  # immutable: one value may serve every request
                if len(_PARSED) >= PARSED_SIZE:
                    _PARSED.clear()
                _PARSED[key] = parsed
        values[param.name] = parsed
    return values


def _checked(api: _Api, op: Operation, values: dict[str, Any], scope: Scope) -> Call:
    """The call, once its values are read: what no single field says checked."""
    name = values.get("name", "")
    writes = op.writes
    # A reason of spaces only says nothing: it would satisfy the rule and defeat it.
    if writes and api.require_reason and not str(values.get("reason", "")).strip():
        raise ApiError(
            "invalid",
            "reason is required (not blank): this server records why every change is made",
            field="reason",
        )
    flags = api.flags
    # A removal is refused by the facade itself (UnknownFlagError, checked under its write
    # lock, so a delete racing it cannot be undone); a read is answered here.
    if op.unknown_flag == "not_found" and not writes and not flags.exists(name):
        raise ApiError("not_found", f"no flag named {name!r}", field="name")
    if (
        op.unknown_flag == "no_history" and not flags.exists(name) and not flags.history(name, 1)
    ):  # as `rollout history` says it (exit 2): an empty answer would hide a typo
        raise ApiError("not_found", f"no flag named {name!r} and no history for it", "name")
    state = scope.get("state")
    actor = state.get("actor") if state is not None else None
    if actor is None and writes:
        # Auth off (loopback only): history still tells one client from another.
        actor = f"anonymous@{client_of(scope) or 'unknown'}"
    return Call(name, values, actor, scope.get("root_path", "") + PREFIX)


def _query(scope: Scope) -> dict[str, str]:
    """The query's parameters, the last of a repeated one winning: what Starlette's
    ``request.query_params.get`` answers, without building its multi-dict (a tenth of a
    check's time in the app)."""
    text = scope.get("query_string", b"").decode("latin-1")
    if "%" in text or "+" in text:
        return dict(urllib.parse.parse_qsl(text, keep_blank_values=True))
    # Nothing to decode (``?user=42``): split as parse_qsl does, which costs a third of this
    # request's own work in the app otherwise. Empty fields are skipped; a field without "="
    # is a name with an empty value.
    query: dict[str, str] = {}
    for field in text.split("&"):
        if field:
            name, _, value = field.partition("=")
            query[name] = value
    return query


def _has_body(request: Request) -> bool:
    """Whether the client sent a body (or claims one): an empty one is no body at all."""
    headers = request.headers
    if "transfer-encoding" in headers or "content-type" in headers:
        return True
    return headers.get("content-length", "0") != "0"
