"""The JSON API under ``/api/v1``: one table of operations, from which both the routes and the
OpenAPI document (rollout.admin._openapi) are built.

Every operation checks all of its input (path, query, body) before it calls the facade, and
each facade method it calls makes one write: a refused request has changed nothing.
"""

from __future__ import annotations

import datetime
from collections.abc import Callable
from typing import Any, Final, TypeVar, TypeVarTuple, Unpack

from starlette.concurrency import run_in_threadpool

from .._client.rollout import Rollout
from .._core.feature import Feature
from .._core.rules import state
from .._core.shapes import check_shape
from .._core.specialize import answer_before_groups
from ._api_call import direct, endpoint
from ._api_fields import (
    DATA,
    FLAG_QUERY,
    GROUP,
    GROUP_PATH,
    LIMIT,
    LIST_PARAMS,
    NAME_PATH,
    PERCENTAGE,
    REASON,
    REGISTER_KEY,
    USER,
    VIEW,
    active_field,
    users_field,
)
from ._api_members import CURSOR, PAGE_LIMIT, SEARCH, members_answer
from ._api_targeting import TARGETING_OPERATIONS
from ._code_threads import CodeDeadline, CodeTimeoutError
from ._errors import ApiError
from ._listing import ListQuery, flag_page, viewed_flag
from ._operation import PREFIX, Call, Handler, Operation
from ._routing import RawRoute
from ._sampling import CheckSampler, sampler_for

__all__ = ["OPERATIONS", "PREFIX", "STATES_KEPT", "Api", "Call", "Operation"]

T = TypeVar("T")
Args = TypeVarTuple("Args")

#: Flags whose state the check keeps at most (emptied when full).
STATES_KEPT: Final = 4096


class Api:
    """The operations bound to one Rollout."""

    def __init__(
        self,
        flags: Rollout,
        *,
        max_body: int,
        document: Callable[[str], dict[str, Any]],
        require_reason: bool = False,
        code: CodeDeadline | None = None,
    ) -> None:
        self.flags = flags
        #: The deadline of the reads that run the application's code (_code_threads).
        self.code = code if code is not None else CodeDeadline()
        self.max_body = max_body
        self.document = document
        #: Every write must say why (``serve --require-reason``): without ``reason``, a 422.
        self.require_reason = require_reason
        self._sampler: CheckSampler | None = None
        #: Each flag's state, by the snapshot it was worked out from (see _check).
        self.states: dict[str, tuple[Feature, str]] = {}

    @property
    def sampler(self) -> CheckSampler:
        """The flags' check sampler, looked up once (``sampler_for`` takes a lock and builds a
        weak reference each time: every check request notes its flag)."""
        sampler = self._sampler
        if sampler is None:
            sampler = self._sampler = sampler_for(self.flags)
        return sampler

    def routes(self) -> list[RawRoute]:
        # One Route per path, so a 405 lists every method the path has in its Allow header.
        by_path: dict[str, dict[str, Operation]] = {}
        for op in OPERATIONS:
            by_path.setdefault(op.path, {})[op.method] = op
        # Full paths rather than a Mount: a Mount's pattern stops at a newline, so a flag name
        # holding an (encoded) control character would get a 404 instead of its 422. Matched on
        # the raw path, so a name holding "/" (sent as %2F) stays one segment.
        # A path that only reads (the check's) is also answered directly (_api_call.direct).
        return [
            RawRoute(
                PREFIX + path, endpoint(self, ops), methods=list(ops), direct=direct(self, ops)
            )
            for path, ops in by_path.items()
        ]

    def flag(self, call: Call) -> dict[str, Any]:
        """The flag of the call, in the ``view`` it asked for (full by default)."""
        return viewed_flag(self.flags, call.name, call.values.get("view", "full"))

    async def run_code(self, name: str, function: Callable[[Unpack[Args]], T], *args: *Args) -> T:
        """``function(*args)`` on a thread that runs the application's code, for the flag
        ``name``, within the deadline (else a 503 naming the flag and the deadline)."""
        try:
            return await self.code.run(name, function, *args)
        except CodeTimeoutError as exc:
            raise ApiError("unavailable", str(exc)) from None

    async def write(self, call: Call, method: Callable[..., None], *args: Any) -> None:
        """Run a facade write on a worker thread (a store may block), as the request's actor."""

        def run() -> None:
            with self.flags.with_context(user=call.actor, reason=call.values.get("reason")):
                method(*args)

        try:
            await run_in_threadpool(run)
        except (TypeError, ValueError) as exc:  # the facade's own checks; ours ran first
            raise ApiError("invalid", str(exc)[:500]) from None


# Handlers -------------------------------------------------------------------------------------


async def _list_flags(api: Api, call: Call) -> Any:
    query = ListQuery.from_values(call.values)
    return flag_page(api.flags, query, datetime.datetime.now(datetime.UTC)).to_dict()


async def _get_flag(api: Api, call: Call) -> Any:
    return api.flag(call)


async def _delete_flag(api: Api, call: Call) -> Any:
    await api.write(call, api.flags.delete, call.name)
    return {"deleted": call.name}


def _change(method: str, *arguments: str) -> Handler:
    """A handler calling ``flags.<method>(name, *values[arguments])``, answering the flag."""

    async def handler(api: Api, call: Call) -> Any:
        await api.write(
            call, getattr(api.flags, method), call.name, *map(call.values.get, arguments)
        )
        return api.flag(call)

    return handler


async def _check(api: Api, call: Call) -> Any:
    user, name, flags = call.values.get("user"), call.name, api.flags
    check = flags._checks.get(name)
    if check is None or not check.predicates or user is None:
        active = flags.active(name, user)
    else:
        # A user that a rule tested before the groups decides for (inside the percentage,
        # listed, excluded) is answered here, by that rule: no predicate is called.
        decided = answer_before_groups(check, user)
        if decided is None:
            # A group's predicate is the application's code (a named rule takes its time too)
            # and may be slow: off the event loop, as OFREP's evaluation, on a thread counted
            # apart from those of writes (_code_threads). Every other check is a few dict
            # lookups, which the hop to a thread and back would cost several times over.
            active = await api.run_code(name, flags.active, name, user)
        else:
            # Answered without flags.active, as the OpenFeature provider answers: an override
            # wins, and a wrapper in the check slot (the metrics sampler) is told the answer.
            slot = flags._check_slot
            if slot.wrapped:
                forced = flags._overrides.forced(name)
                if forced is not None:
                    decided = forced
                slot.observed(name, decided)
            active = decided
    # The name was checked once, as the path parameter: the replica is asked directly, not
    # through exists() and get(), which would check it twice more (a Python loop each time).
    feature = flags._replica.feature(name)
    if name not in flags._checks:  # only flags: what callers ask for cannot grow the records
        return check_shape(name, user, active, feature)
    (api._sampler or api.sampler).note(name)
    # check_shape's answer, with the flag's state worked out once per snapshot of the flag
    # (snapshots are immutable, and replaced when the flag changes): four calls a request.
    known = api.states.get(name)
    if known is not None and known[0] is feature:
        flag_state = known[1]
    else:
        flag_state = state(feature)
        if len(api.states) >= STATES_KEPT:  # flags deleted since stay until then
            api.states.clear()
        api.states[name] = (feature, flag_state)
    return {"flag": name, "user": user, "active": active, "state": flag_state}


async def _explain(api: Api, call: Call) -> Any:
    # Predicates are the application's code and may be slow: off the event loop, on a thread
    # counted apart from those of writes (_code_threads) when the flag has some.
    check, name, user = api.flags._checks.get(call.name), call.name, call.values.get("user")
    if check is not None and check.predicates:
        explanation = await api.run_code(name, api.flags.explain, name, user)
    else:
        explanation = await run_in_threadpool(api.flags.explain, name, user)
    return explanation.to_dict()


async def _history(api: Api, call: Call) -> Any:
    events = api.flags.history(call.name, call.values.get("limit"))
    return {"events": [event.to_dict() for event in events]}


async def _groups(api: Api, _call: Call) -> Any:
    return {"groups": api.flags.groups()}


async def _members(api: Api, _call: Call) -> Any:
    try:
        members = await run_in_threadpool(api.flags.members)  # asks the replication thread
    except TimeoutError:
        raise ApiError("unavailable", "the replication thread did not answer in time") from None
    stats = api.flags.stats()
    return {
        "node": api.flags.node_name,
        "node_id": stats["node"],
        "members": members,
        # This node's own verdict on its clock, as its peers judge it (None without peers).
        "clock": (stats["sync"] or {}).get("clock"),
        "quarantined": stats["quarantined"],
    }


def _members_page(field: str) -> Handler:
    """A page of the flag's ``users`` or ``excluded_users`` (see _api_members)."""

    async def handler(api: Api, call: Call) -> Any:
        return await members_answer(api.flags, call.name, field, call.values)

    return handler


async def _quarantined(api: Api, call: Call) -> Any:
    held = api.flags.quarantined(call.values.get("flag"))
    return {"quarantined": [entry.to_dict() for entry in held]}


def _resolve(action: str) -> Handler:
    """accept or drop the held registers of a flag (one ``key``), as the request's actor."""

    async def handler(api: Api, call: Call) -> Any:
        key, reason = call.values.get("key"), call.values.get("reason")
        method = api.flags.accept_quarantined if action == "accept" else api.flags.drop_quarantined

        def run() -> int:
            with api.flags.with_context(user=call.actor, reason=reason):
                return method(call.name, key)

        try:
            count = await run_in_threadpool(run)
        except ValueError as exc:
            held = [e for e in api.flags.quarantined(call.name) if key in (None, e.key)]
            if not held:  # the name and key were checked: nothing is held for them
                raise _nothing_held(call.name, key) from None
            raise ApiError("invalid", str(exc)[:500]) from None
        return {"flag": call.name, "action": action, "registers": count}

    return handler


def _nothing_held(name: str, key: str | None) -> ApiError:
    what = f"flag {name!r}" + (f" key {key!r}" if key is not None else "")
    return ApiError(
        "not_found", f"nothing is quarantined for {what}", field="key" if key else "name"
    )


async def _openapi(api: Api, call: Call) -> Any:
    return api.document(call.base_url)


_ADD_USERS = (users_field(allow_empty=False), REASON)
_NAME = (NAME_PATH,)
#: An operation answering a flag: its name, and the answer's view (full or summary).
_FLAG = (NAME_PATH, VIEW)
_PAGE = (NAME_PATH, CURSOR, PAGE_LIMIT, SEARCH)
#: The body of a write that needs nothing else: it may be left out.
_WHY = (REASON,)
_RESOLVE = (REGISTER_KEY, REASON)

OPERATIONS: tuple[Operation, ...] = (
    Operation(
        "GET", "/flags", "listFlags",
        "The flags' summaries (counts, not members), sorted by name, a page at a time, filtered",
        _list_flags, "FlagList", LIST_PARAMS,
    ),
    Operation(
        "GET", "/flags/{name}", "getFlag", "One flag", _get_flag, "FlagView", _FLAG,
        unknown_flag="not_found",
    ),
    Operation(
        "DELETE", "/flags/{name}", "deleteFlag", "Delete a flag (its history stays)",
        _delete_flag, "Deleted", _NAME, _WHY, unknown_flag="not_found", body_required=False,
    ),
    Operation(
        "PUT", "/flags/{name}/active", "setActive",
        "Turn on for everybody (true) or off, clearing all targeting (false)",
        _change("set", "active"), "FlagView", _FLAG, (active_field(), REASON), "create",
    ),
    Operation(
        "PUT", "/flags/{name}/percentage", "setPercentage",
        "On for this percentage of users (the same users every time)",
        _change("activate_percentage", "percentage"), "FlagView", _FLAG, (PERCENTAGE, REASON),
        "create",
    ),
    Operation(
        "PUT", "/flags/{name}/percentage_of_time", "setPercentageOfTime",
        "On for this percentage of checks, drawn at random each time",
        _change("activate_percentage_of_time", "percentage"), "FlagView", _FLAG,
        (PERCENTAGE, REASON), "create",
    ),
    Operation(
        "POST", "/flags/{name}/users", "addUsers", "Add users",
        _change("activate_users", "users"), "FlagView", _FLAG, _ADD_USERS, "create",
    ),
    Operation(
        "GET", "/flags/{name}/users", "listUsers",
        "The flag's listed users, a page at a time (numeric ids by value, then the rest)",
        _members_page("users"), "UserPage", _PAGE,
    ),
    Operation(
        "POST", "/flags/{name}/users/remove", "removeUsers", "Remove users",
        _change("deactivate_users", "users"), "FlagView", _FLAG, _ADD_USERS, "not_found",
    ),
    Operation(
        "PUT", "/flags/{name}/users", "setUsers", "Make the listed users exactly these",
        _change("set_users", "users"), "FlagView", _FLAG, (users_field(allow_empty=True), REASON),
        "create",
    ),
    Operation(
        "POST", "/flags/{name}/excluded_users", "excludeUsers",
        "Exclude users (never on for them)",
        _change("exclude_users", "users"), "FlagView", _FLAG, _ADD_USERS, "create",
    ),
    Operation(
        "GET", "/flags/{name}/excluded_users", "listExcludedUsers",
        "The flag's excluded users, a page at a time (numeric ids by value, then the rest)",
        _members_page("excluded_users"), "UserPage", _PAGE,
    ),
    Operation(
        "POST", "/flags/{name}/excluded_users/remove", "includeUsers", "Remove exclusions",
        _change("include_users", "users"), "FlagView", _FLAG, _ADD_USERS, "not_found",
    ),
    Operation(
        "POST", "/flags/{name}/groups", "addGroup", "Turn on for a group",
        _change("activate_group", "group"), "FlagView", _FLAG, (GROUP, REASON), "create",
    ),
    Operation(
        "DELETE", "/flags/{name}/groups/{group}", "removeGroup", "Turn off for a group",
        _change("deactivate_group", "group"), "FlagView", (NAME_PATH, GROUP_PATH, VIEW), _WHY,
        unknown_flag="not_found", body_required=False,
    ),
    Operation(
        "PUT", "/flags/{name}/data", "setData", "Merge keys into the flag's data",
        _change("set_feature_data", "data"), "FlagView", _FLAG, (DATA, REASON), "create",
    ),
    Operation(
        "PUT", "/flags/{name}/data/replace", "replaceData",
        "Make the flag's data exactly this (other keys removed), in one write",
        _change("replace_feature_data", "data"), "FlagView", _FLAG, (DATA, REASON), "create",
    ),
    Operation(
        "DELETE", "/flags/{name}/data", "clearData", "Clear the flag's data",
        _change("clear_feature_data"), "FlagView", _FLAG, _WHY, unknown_flag="not_found",
        body_required=False,
    ),
    Operation(
        "GET", "/flags/{name}/check", "checkFlag", "Whether the flag is on for a user",
        _check, "Check", (NAME_PATH, USER),
    ),
    Operation(
        "GET", "/flags/{name}/explain", "explainFlag",
        "Why the flag is on or off for a user: the rule that decided and the numbers behind it",
        _explain, "Explanation", (NAME_PATH, USER),
    ),
    Operation(
        "GET", "/flags/{name}/history", "flagHistory",
        "The flag's changes, newest first (kept after a delete too)",
        _history, "History", (NAME_PATH, LIMIT), unknown_flag="no_history",
    ),
    Operation("GET", "/groups", "listGroups", "The defined groups, `all` included", _groups,
              "Groups"),
    Operation("GET", "/members", "listMembers", "This node and the cluster members it knows",
              _members, "Members"),
    Operation(
        "GET", "/quarantine", "listQuarantined",
        "Registers held as stamped too far in the future (by a clock that ran ahead), by flag",
        _quarantined, "Quarantine", (FLAG_QUERY,),
    ),
    Operation(
        "POST", "/quarantine/{name}/accept", "acceptQuarantined",
        "Write a flag's held values again, stamped now (all its held registers, or `key`)",
        _resolve("accept"), "Resolved", _NAME, _RESOLVE, body_required=False,
    ),
    Operation(
        "POST", "/quarantine/{name}/drop", "dropQuarantined",
        "Forget a flag's held registers (all of them, or `key`)",
        _resolve("drop"), "Resolved", _NAME, _RESOLVE, body_required=False,
    ),
    *TARGETING_OPERATIONS,
    Operation("GET", "/openapi.json", "openapi", "This document", _openapi, "OpenAPI"),
)  # fmt: skip
