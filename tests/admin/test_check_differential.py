"""GET /api/v1/flags/{name}/check answers what the library answers, over a real socket.

A property test (hypothesis): random flags (percentages, users listed and excluded, groups whose
predicates say yes, no or raise, a named rule as a group, percentages of the time, overrides,
definitions with targeting, unknown flags) and random user ids (digits with leading zeros or
spaces, unicode in both normal forms, control characters, very long ones), each asked of a real
uvicorn server in a thread of this process (with the connection guard ``rollout serve`` uses) and
of ``flags.active`` / ``flags.explain`` for the same input: status and body must agree, whichever
way the server answered (on its event loop, or on a worker thread when a predicate may run). And
no predicate may ever run on the server's event loop: a slow one would stall every connection.
``explain`` over HTTP is also compared with ``flags.explain`` (but for the draw of a percentage of
the time, taken again by each request).
One server per bucketing (crc32, randomized, ruby), each for the whole module.
"""

from __future__ import annotations

import asyncio
import logging
import urllib.parse
from collections.abc import Iterator
from contextlib import nullcontext
from dataclasses import dataclass
from typing import Any

import httpx
import pytest
from hypothesis import example, given, settings
from hypothesis import strategies as st

from rollout import Rollout
from rollout._core.rules import state
from rollout.admin import create_app
from rollout.admin._connections import ConnectionGuard, guarded

from .api_helpers import BEARER, TOKEN
from .dashboard_server import serve

#: Groups the flags may use: predicates that say yes, no, raise, or depend on the id; a named
#: rule used as a group; a group nobody defined; and ``all``.
GROUPS = ["yes", "no", "boom", "even", "vip", "ghost", "all"]
NAMES = ["chat", "a/b", "café", "名前", "x" * 255]
#: Families of ids that read alike as text, and would be one user (or bucket alike) if anything
#: normalised them on the way: digits (leading zeros, signs, spaces, other scripts), unicode in
#: its normal forms and case, separators a query string encodes, control and invisible characters.
FAMILIES = [
    ["7", "007", " 7", "7 ", "+7", "7.0", "\u0667", "\uff17", "\u200b7"],
    ["0", "-0", "00", "null", "None"],
    ["é", "e\u0301", "É", "E\u0301"],
    ["\ufb01", "fi", "FI"],
    ["Ǆ", "ǅ", "ǆ", "DŽ"],
    ["a b", "a+b", "a%20b", "a\tb", "a&b=c", "%41", "A"],
    ["ab", "a\x00b", "a\u00adb", "🙂", "\U0001f642\ufe0f"],
    ["x" * 4000, "x" * 3999, "X" * 4000],
]
ROLES = ["checked", "checked", "listed", "excluded", "checked listed", "checked excluded", ""]
OTHER_IDS = st.one_of(
    st.integers(min_value=-(10**20), max_value=10**20).map(str),
    st.text(st.characters(codec="utf-8"), min_size=1, max_size=40),
)


@dataclass
class Server:
    flags: Rollout
    client: httpx.Client
    #: Groups whose predicate ran on a thread with a running event loop (the server's).
    on_loop: list[str]


def _predicate(group: str, on_loop: list[str]) -> Any:
    def predicate(user: object) -> bool:
        try:
            asyncio.get_running_loop()
        except RuntimeError:
            pass
        else:
            on_loop.append(group)
        if group == "boom":
            raise RuntimeError("a broken predicate")
        return group == "yes" or (group == "even" and len(str(user)) % 2 == 0)

    return predicate


@pytest.fixture(scope="module", params=[False, True, "ruby"], ids=["crc32", "randomized", "ruby"])
def server(request: pytest.FixtureRequest) -> Iterator[Server]:
    on_loop: list[str] = []
    with Rollout(randomize_percentage=request.param) as flags:
        for group in ("yes", "no", "boom", "even"):
            flags.define_group(group, _predicate(group, on_loop))
        flags.define_rule("vip", {"starts_with": [{"var": "targetingKey"}, "v"]})
        app = create_app(flags, token=TOKEN)
        with (
            serve(app, http=guarded(ConnectionGuard(64))) as url,
            httpx.Client(base_url=url, headers=BEARER, timeout=30) as client,
        ):
            yield Server(flags, client, on_loop)


@dataclass(frozen=True)
class Case:
    kind: str  # "plain", "defined" or "unknown"
    name: str
    percentage: float
    of_time: float
    listed: list[str]
    excluded: list[str]
    groups: list[str]
    override: bool | None
    users: list[str]
    plus: bool  # spaces sent as "+" rather than %20


@st.composite
def cases(draw: st.DrawFn) -> Case:
    family = draw(st.sampled_from(FAMILIES))
    ids = sorted({*family, *draw(st.lists(OTHER_IDS, max_size=2))})
    # Each id checked, listed, excluded, or some of these: lookalikes of one another are
    # often checked while another is listed or excluded.
    roles = draw(st.lists(st.sampled_from(ROLES), min_size=len(ids), max_size=len(ids)))
    users = [i for i, role in zip(ids, roles, strict=True) if "checked" in role] or ids[:1]
    return Case(
        kind=draw(st.sampled_from(["plain", "plain", "plain", "defined", "unknown"])),
        name=draw(st.sampled_from(NAMES)),
        percentage=draw(
            st.one_of(
                st.sampled_from([0.0, 0.0, 100.0, 50.0, 1e-4, 99.9999]),
                st.floats(0, 100, allow_nan=False),
            )
        ),
        of_time=draw(st.sampled_from([0.0, 0.0, 0.0, 100.0, 30.0])),
        listed=[i for i, role in zip(ids, roles, strict=True) if "listed" in role],
        excluded=[i for i, role in zip(ids, roles, strict=True) if "excluded" in role],
        groups=draw(st.lists(st.sampled_from(GROUPS), unique=True, min_size=1, max_size=4)),
        override=draw(st.sampled_from([None, None, None, True, False])),
        users=users,
        plus=draw(st.booleans()),
    )


def _write(flags: Rollout, case: Case) -> None:
    flags.clear()
    if case.kind == "unknown":
        return
    name = case.name
    flags.set(name, False)
    if case.percentage:
        flags.activate_percentage(name, case.percentage)
    if case.of_time:
        flags.activate_percentage_of_time(name, case.of_time)
    for user in case.listed:
        flags.activate_user(name, user)
    for user in case.excluded:
        flags.exclude_user(name, user)
    for group in case.groups:
        flags.activate_group(name, group)
    if case.kind == "defined":
        flags.define_flag(
            name,
            {"on": True, "off": False},
            default_variant="off",
            targeting={"if": [{"in": [{"var": "targetingKey"}, case.listed]}, "on", "off"]},
        )


def _chancy(case: Case) -> bool:
    """Whether the answer is left to a draw of the percentage of time."""
    return case.kind == "plain" and case.override is None and 0 < case.of_time < 100


def _allowed(flags: Rollout, case: Case, user: str | None) -> set[bool]:
    """The answers the library allows for ``user``: its own, or for a percentage of the time
    between 0 and 100, whatever another draw may make of it."""
    active = flags.active(case.name, user)
    explanation = flags.explain(case.name, user)
    if not _chancy(case):
        assert explanation.active is active
        if user is not None and user.isascii() and user.isdigit():
            # The id as an int, as code may check it: 7 is "7" (and "007" is not 7).
            assert flags.active(case.name, int(user)) is flags.active(case.name, str(int(user)))
        return {active}
    if explanation.reason == "excluded":
        return {False}
    if explanation.active and explanation.reason != "percentage_of_time":
        return {True}  # a rule besides the draw turned it on
    return {True, False}


def _drawless(explanation: dict[str, Any]) -> dict[str, Any]:
    """An explanation without its draw (each request draws again), where one was taken."""
    if explanation.get("draw") is None:
        return explanation
    return {k: v for k, v in explanation.items() if k not in ("draw", "message")}


def _url(case: Case, user: str | None, what: str = "check") -> str:
    path = f"/api/v1/flags/{urllib.parse.quote(case.name, safe='')}/{what}"
    if user is None:
        return path
    encode = urllib.parse.quote_plus if case.plus else urllib.parse.quote
    return f"{path}?user={encode(user, safe='')}"


def _lookalike(listed: list[str], excluded: list[str], users: list[str]) -> Case:
    return Case("plain", "chat", 0.0, 0.0, listed, excluded, ["no"], None, users, plus=False)


@settings(max_examples=150)
@given(case=cases())
# A listed or excluded id, and checked ids that only look like it: none of them is decided
# before the groups, so the predicate (which says no) must run, on a worker thread.
@example(case=_lookalike(["7"], [], ["007", " 7", "+7", "\uff17", "\u0667", "7"]))
@example(case=_lookalike(["fi", "é"], ["E\u0301"], ["\ufb01", "FI", "e\u0301", "É"]))
def test_the_check_answers_as_the_library(server: Server, case: Case) -> None:
    flags = server.flags
    server.on_loop.clear()
    _write(flags, case)
    overriding = case.override is not None
    with flags.override(case.name, bool(case.override)) if overriding else nullcontext():
        for user in [*case.users, None]:
            response = server.client.get(_url(case, user))
            assert response.status_code == 200, (user, response.text)
            body = response.json()
            known = flags.exists(case.name)
            flag_state = state(flags.get(case.name)) if known else "off"
            assert body == {
                "flag": case.name,
                "user": user,
                "active": body["active"],
                "state": flag_state,
            }
            assert body["active"] in _allowed(flags, case, user), user
            if not _chancy(case):  # explain draws again, as the check does
                explained = server.client.get(_url(case, user, "explain"))
                expected = flags.explain(case.name, user).to_dict()
                assert _drawless(explained.json()) == _drawless(expected), user
    assert not server.on_loop, "a predicate ran on the server's event loop"


def test_an_empty_user_is_refused(server: Server) -> None:
    response = server.client.get("/api/v1/flags/chat/check?user=")
    assert response.status_code == 422
    assert response.json()["error"]["field"] == "user"


def test_a_predicate_that_raises_says_no_and_is_logged_once(
    server: Server, caplog: pytest.LogCaptureFixture
) -> None:
    flags = server.flags
    flags.clear()
    server.on_loop.clear()
    # A group of its own: whether "boom" already failed depends on the examples drawn above.
    flags.define_group("fails", _predicate("boom", server.on_loop))
    flags.activate_group("broken", "fails")
    caplog.set_level(logging.DEBUG, logger="rollout")
    answers = [
        server.client.get(f"/api/v1/flags/broken/check?user=u{i}").json()["active"]
        for i in range(5)
    ]
    assert answers == [False] * 5
    assert [flags.active("broken", f"u{i}") for i in range(5)] == [False] * 5
    raised = [r for r in caplog.records if r.name == "rollout" and "'fails'" in r.getMessage()]
    # The first failure with its traceback, each repeat at debug level only.
    assert [r.levelno for r in raised] == [logging.ERROR] + [logging.DEBUG] * 9
    assert raised[0].exc_info is not None
    assert not server.on_loop
