"""OFREP, the OpenFeature Remote Evaluation Protocol: ``POST /ofrep/v1/evaluate/flags[/{key}]``.

Any OpenFeature OFREP provider (Python, Go, Java, the browser's) evaluates this server's flags
through these two endpoints, as the protocol's OpenAPI document (0.3.0) has them. The evaluation
is the Python provider's own (:meth:`RolloutProvider.resolve_value_details`): the same
``ContextUser`` for group predicates, typed values, variants, reasons and errors (and, for a
flag with a definition, ``flags.evaluate``'s answer, as flagd's OFREP gives it), so a flag
answers the same in process and over HTTP. What a token may evaluate is its grant's
(``_grants.py``): a flag outside it is not found, and a bulk evaluation leaves it out.

The bulk answer carries an ETag made of this process's epoch, a counter of flag changes (for a
key limited to some flags, of changes to those) and a hash of the context and the grant's
flags: a poll with ``If-None-Match`` is answered 304 without evaluating anything. (A flag on
for a percentage of the *time* is drawn at each evaluation; a 304 keeps the client's earlier
draw, as polling any server would.) It also names the change stream (``_ofrep_stream.py``),
which web providers use instead of polling.

Where an evaluation runs: a flag whose answer may run the application's code (a group defined
by a predicate in this process) or a rule (a flag with a definition, a named rule as a group)
is evaluated on a worker thread, so a slow one holds no other request. Every other flag (on,
off, a percentage, listed users, groups that nothing here defines) is a few dict lookups and is
answered on the event loop: the hop to a thread and back cost more than four times the
evaluation. Which flags are which is worked out once per flag and forgotten at every change of
a flag, a group's definition or a named rule. On a worker thread an evaluation has a deadline
(``code_timeout``, see ``_code_threads``): past it a 503 with OFREP's general error body, naming
the flag (the bulk answer's: the flag it was at), never a 200 that its ETag would keep cached.
"""

from __future__ import annotations

import hashlib
import itertools
import json
import secrets
import threading
from collections.abc import Awaitable, Callable
from typing import Any, Final

from openfeature.evaluation_context import EvaluationContext
from openfeature.exception import ErrorCode
from starlette.requests import ClientDisconnect, Request
from starlette.responses import JSONResponse, Response
from starlette.types import Receive, Scope, Send

from .._client.rollout import Rollout
from ..errors import RolloutError
from ..openfeature import RolloutProvider
from ._auth import Auth
from ._code_threads import CodeDeadline, CodeTimeoutError
from ._grants import Grant
from ._ofrep_stream import OfrepStream
from ._routing import RawRoute
from ._serialize import JsonAnswer, send_json

__all__ = ["BULK_PATH", "FLAG_PATH", "Ofrep"]

BULK_PATH: Final = "/ofrep/v1/evaluate/flags"
FLAG_PATH: Final = BULK_PATH + "/{key}"
#: The enum member's value, read once (reading it goes through two Python calls).
_NOT_FOUND: Final = ErrorCode.FLAG_NOT_FOUND.value


class BadRequestError(Exception):
    """A request OFREP answers 400 (``code`` PARSE_ERROR or INVALID_CONTEXT) or 413."""

    def __init__(self, code: str, details: str, status: int = 400) -> None:
        super().__init__(details)
        self.code, self.details, self.status = code, details, status


class Ofrep:
    """The OFREP endpoints of one Rollout."""

    def __init__(
        self,
        flags: Rollout,
        auth: Auth,
        stream: OfrepStream,
        *,
        max_body: int,
        code: CodeDeadline | None = None,
    ) -> None:
        self.flags = flags
        #: The deadline of evaluations that run the application's code (_code_threads).
        self.code = code if code is not None else CodeDeadline()
        self.auth = auth
        self.stream = stream
        self.max_body = max_body
        self.provider = RolloutProvider(flags)
        self._epoch = ""
        self._counter = itertools.count(1)
        self.generation = 0
        #: The generation of each flag's last change: a key limited to some flags gets an ETag
        #: that moves only when one of those changes (else it would see when others change).
        self._changed_at: dict[str, int] = {}
        self._lock = threading.Lock()
        self._unsubscribe: Callable[[], None] | None = None
        self._unsubscribe_rules: Callable[[], None] | None = None
        #: Flag -> whether its evaluation may run the application's code or a rule. Replaced
        #: whole at every change, so an answer worked out across a change lands in the old one.
        self._runs_code: dict[str, bool] = {}

    def start(self) -> None:
        """Subscribe: the provider caches flag views until a flag changes, and changes are
        counted for the ETag. At the app's start-up, or at the first request of an app served
        without a lifespan (whose subscriptions then last as long as the Rollout)."""
        with self._lock:
            if self._unsubscribe is not None:
                return
            self.provider.initialize(EvaluationContext())
            # A new epoch each start: no 304 for an ETag made before (another process, or
            # before a stop, when changes went uncounted), whatever the counter says.
            self._epoch = secrets.token_hex(6)
            self._runs_code = {}
            self._unsubscribe = self.flags.subscribe(self._changed)
            self._unsubscribe_rules = self.flags.subscribe_rules(self._rules_changed)

    def stop(self) -> None:
        with self._lock:
            if self._unsubscribe is not None:
                self._unsubscribe()
                self._unsubscribe = None
                self.provider.shutdown()
            if self._unsubscribe_rules is not None:
                self._unsubscribe_rules()
                self._unsubscribe_rules = None

    def _rules_changed(self, _names: set[str]) -> None:
        self._runs_code = {}

    def _changed(self, names: set[str]) -> None:
        # A flag's groups or definition changed, or a group it names was defined (the Rollout
        # tells of every flag naming a group when the group is defined).
        self._runs_code = {}
        generation = next(self._counter)
        for name in names:
            self._changed_at[name] = generation
        self.generation = generation

    def routes(self) -> list[RawRoute]:
        return [
            RawRoute(BULK_PATH, self._guard(self.bulk), methods=["POST"]),
            RawRoute(
                FLAG_PATH, self._guard(self.single), methods=["POST"], direct=self.direct_single
            ),
        ]

    def _guard(
        self, endpoint: Callable[[Request], Awaitable[Response]]
    ) -> Callable[[Request], Awaitable[Response]]:
        async def guarded(request: Request) -> Response:
            if self._unsubscribe is None:
                self.start()
            try:
                return await endpoint(request)
            except BadRequestError as exc:
                body: dict[str, Any] = {"errorCode": exc.code, "errorDetails": exc.details}
                if "key" in request.path_params:
                    body = {"key": request.path_params["key"], **body}
                return JSONResponse(body, status_code=exc.status)
            except CodeTimeoutError as exc:
                return _timed_out(exc)
            except RolloutError as exc:  # the Rollout closed under us
                return JSONResponse({"errorDetails": f"{type(exc).__name__}: {exc}"}, 500)

        return guarded

    # Endpoints ----------------------------------------------------------------------------

    async def single(self, request: Request) -> Response:
        key: str = request.path_params["key"]
        actor = getattr(request.state, "actor", None)
        answer, status = await self._single(key, await self._body(request.receive), actor)
        return JsonAnswer(answer, status_code=status)

    async def direct_single(self, scope: Scope, receive: Receive, send: Send) -> None:
        """:meth:`single` behind :meth:`_guard`, as a plain ASGI app: what the app's gate calls
        (``_routing.py``), without Starlette's request wrappers, which cost more than the
        evaluation."""
        if self._unsubscribe is None:
            self.start()
        key: str = scope["path_params"]["key"]
        try:
            raw = await self._body(receive)
            answer, status = await self._single(key, raw, scope["state"].get("actor"))
        except BadRequestError as exc:
            body = {"key": key, "errorCode": exc.code, "errorDetails": exc.details}
            refusal: Response = JSONResponse(body, status_code=exc.status)
        except CodeTimeoutError as exc:
            refusal = _timed_out(exc)
        except RolloutError as exc:  # the Rollout closed under us
            refusal = JSONResponse({"errorDetails": f"{type(exc).__name__}: {exc}"}, 500)
        except ClientDisconnect:  # as the app's handler: nobody to answer, nothing to log
            refusal = Response(status_code=400)
        else:
            await send_json(send, answer, status)
            return
        await refusal(scope, receive, send)

    async def _single(self, key: str, raw: bytes, actor: str | None) -> tuple[dict[str, Any], int]:
        """One flag's answer to the body ``raw`` and its status (BadRequestError: a 400)."""
        context, _ = self._context(raw)
        if not self.auth.grant(actor).allows_flag(key):
            return _not_found(key), 404
        if self.runs_code(key):
            # Off the event loop, as the bulk answer: a group's predicate is the application's
            # code and a rule takes its (bounded) time; no other request should wait for them.
            answer = await self.code.run(key, self.evaluate, key, context)
        else:
            answer = self.evaluate(key, context)
        if answer.get("errorCode") == _NOT_FOUND:
            return answer, 404
        return answer, 400 if "errorCode" in answer else 200

    async def bulk(self, request: Request) -> Response:
        context, sent = self._context(await self._body(request.receive))
        actor = getattr(request.state, "actor", None)
        grant = self.auth.grant(actor)
        etag = self.etag(_canonical(sent), grant)
        if _matches(request.headers.get("if-none-match"), etag):
            return Response(status_code=304, headers={"ETag": etag})
        names = [n for n in self.flags.features() if grant.allows_flag(n)]
        at: list[str | None] = [None]  # the flag being evaluated: what a time-out names

        def evaluate_all() -> list[dict[str, Any]]:
            answers = []
            for name in names:
                at[0] = name
                answer = self.evaluate(name, context)
                # A flag deleted since it was listed is left out, not reported missing.
                if answer.get("errorCode") != _NOT_FOUND:
                    answers.append(answer)
            return answers

        # Group predicates are the application's code and may be slow: off the event loop, on a
        # thread counted apart from those of writes, within the deadline (_code_threads).
        flags = await self.code.run(lambda: at[0], evaluate_all)
        streams = [self.stream.entry(request.scope.get("root_path", ""), actor)]
        return JsonAnswer({"flags": flags, "eventStreams": streams}, headers={"ETag": etag})

    # Evaluation ---------------------------------------------------------------------------

    def runs_code(self, key: str) -> bool:
        """Whether evaluating ``key`` may run the application's code or a rule (then it runs on
        a worker thread): it has a definition, or one of its groups is defined here, by a
        predicate or as a named rule. Remembered per flag until the next change."""
        known = self._runs_code
        answer = known.get(key)
        if answer is not None:
            return answer
        try:
            exists = self.flags.exists(key)
        except (TypeError, ValueError):  # not a possible flag name: nothing to run
            return False
        if self.provider.has_definition(key):
            answer = True
        else:
            groups = self.flags.get(key).groups
            # "all" counts as defined: the application may have defined it itself.
            answer = bool(groups) and bool(groups & {*self.flags.groups(), *self.flags.rules()})
        if exists and self._unsubscribe is not None:
            known[key] = answer  # flags only: what callers ask for cannot grow it
        return answer

    def evaluate(self, key: str, context: EvaluationContext) -> dict[str, Any]:
        """One flag's OFREP answer: an evaluation success or failure object."""
        # Whether it has a definition is of the version answered: asked after, a predicate
        # that defined the flag meanwhile would name an on/off answer's variant "".
        details, defined = self.provider.resolve_value_of_version(key, context)
        if details.error_code is not None:
            failure: dict[str, Any] = {
                "key": key,
                "errorCode": details.error_code.value,
                "errorDetails": details.error_message or details.error_code.value,
            }
            if details.flag_metadata:  # a defined flag's error still says what flag it is
                failure["metadata"] = dict(details.flag_metadata)
            return failure
        answer: dict[str, Any] = {"key": key, "reason": str(details.reason)}
        if details.value is not None:
            answer["value"] = details.value
        # No value: the caller's code default. flagd then leaves the variant out, but the
        # Python OFREP client requires the field, so there is one: for an on/off flag "off"
        # (it is off), for a defined flag "" (no variant: its DISABLED, or DEFAULT without a
        # default variant; "" names none, as in flagd's Go).
        variant = details.variant
        if variant is None:
            variant = "" if defined else "off"
        answer["variant"] = variant
        answer["metadata"] = dict(details.flag_metadata)
        return answer

    def etag(self, raw_context: bytes, grant: Grant) -> str:
        """What the bulk answer depends on: the flags (by change count) and the question."""
        digest = hashlib.sha256(raw_context)
        generation = self.generation
        if grant.flags is not None:
            digest.update(json.dumps(sorted(grant.flags)).encode("utf-8", "surrogateescape"))
            generation = max((self._changed_at.get(name, 0) for name in grant.flags), default=0)
        return f'"{self._epoch}-{generation}-{digest.hexdigest()[:20]}"'

    def _context(self, raw: bytes) -> tuple[EvaluationContext, dict[str, Any]]:
        """The evaluation context of a request's body, and the ``context`` object it was read
        from."""
        try:
            body = _parse(raw) if raw.strip() else {}
        except RecursionError:
            raise BadRequestError("PARSE_ERROR", "the body is nested too deeply") from None
        except ValueError as exc:
            raise BadRequestError("PARSE_ERROR", f"the body is not valid JSON: {exc}") from None
        if not isinstance(body, dict):
            raise BadRequestError("INVALID_CONTEXT", f"the body must be an object, got {body!r}")
        # Both reference providers send {} (no context) when the application set none.
        context = body.get("context", {})
        if not isinstance(context, dict):
            raise BadRequestError("INVALID_CONTEXT", f"context must be an object, got {context!r}")
        attributes = dict(context)
        key = attributes.pop("targetingKey", None)
        if key is not None and not isinstance(key, str):
            raise BadRequestError(
                "INVALID_CONTEXT", f"context.targetingKey must be a string, got {key!r}"
            )
        return EvaluationContext(key or None, attributes), context

    async def _body(self, receive: Receive) -> bytes:
        """The request's body, read as Starlette's ``Request.stream`` reads it (a client gone
        is ClientDisconnect), up to ``max_body`` bytes (more: a 413)."""
        # Any Content-Type is read as JSON: a browser sending text/plain (no CORS preflight)
        # is as welcome as one sending application/json.
        chunks, size = [], 0
        while True:
            message = await receive()
            kind = message["type"]
            if kind == "http.request":
                chunk = message.get("body", b"")
                if chunk:
                    size += len(chunk)
                    if size > self.max_body:
                        raise BadRequestError(
                            "PARSE_ERROR",
                            f"the body is larger than {self.max_body} bytes",
                            status=413,
                        )
                    chunks.append(chunk)
                if not message.get("more_body", False):
                    return b"".join(chunks)
            elif kind == "http.disconnect":
                raise ClientDisconnect


def _canonical(context: dict[str, Any]) -> bytes:
    """The context's canonical JSON: what the bulk answer's ETag hashes."""
    return json.dumps(context, sort_keys=True, ensure_ascii=True).encode()


def _timed_out(exc: CodeTimeoutError) -> Response:
    """503 with OFREP's general error body (``errorDetails``): the evaluation was not done in
    time, the client may retry (a 200 would be cached by the bulk answer's ETag)."""
    return JSONResponse({"errorDetails": str(exc)}, status_code=503)


def _not_found(key: str) -> dict[str, Any]:
    return {"key": key, "errorCode": "FLAG_NOT_FOUND", "errorDetails": f"no flag named {key!r}"}


def _matches(if_none_match: str | None, etag: str) -> bool:
    """RFC 9110's weak comparison: any listed tag (``W/`` or not) equal to ours, or ``*``."""
    if not if_none_match:
        return False
    for listed in if_none_match.split(","):
        tag = listed.strip()
        if tag == "*" or tag.removeprefix("W/") == etag:
            return True
    return False


def _no_constants(name: str) -> Any:
    raise ValueError(f"{name} is not valid JSON")


#: One decoder for every body: json.loads with an argument builds a new one each call (a tenth
#: of a single evaluation's time in the app).
_DECODE: Final = json.JSONDecoder(parse_constant=_no_constants).decode


def _parse(raw: bytes) -> Any:
    """``json.loads(raw, parse_constant=_no_constants)`` with the one decoder: the bytes read in
    the UTF they are in (a UTF-8 byte order mark skipped), as json.loads reads them."""
    # An object sent as UTF-8 (what every client sends) is what detect_encoding finds for a
    # first byte "{" and a second that is not 0 (UTF-16 and -32 put zeros there).
    utf8 = raw[:1] == b"{" and raw[1:2] != b"\x00"
    text = raw.decode("utf-8" if utf8 else json.detect_encoding(raw), "surrogatepass")
    if text.startswith("\ufeff"):
        raise json.JSONDecodeError("Unexpected UTF-8 BOM (decode using utf-8-sig)", text, 0)
    return _DECODE(text)
