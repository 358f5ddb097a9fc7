"""An OFREP answer is of one version of the flag, also when the flag changes while it is made.

The answer is the provider's resolution plus, where the resolution names no variant (the
caller's default), the variant OFREP's clients need: ``"off"`` for an on/off flag, ``""`` for a
flag with a definition. Which of the two must be said by the version the resolution was of: a
group predicate that defines the flag while it is asked puts the change between them.
"""

from __future__ import annotations

import asyncio
from collections.abc import Callable
from typing import Any

import pytest

from rollout import Rollout
from rollout.admin import create_app

from .api_helpers import BEARER, TOKEN, asgi_client

BULK = "/ofrep/v1/evaluate/flags"
FREE = {"context": {"targetingKey": "c", "plan": "free"}}


class WritingGroup:
    """The group ``pro``'s predicate, which makes a change, once, when armed."""

    def __init__(self) -> None:
        self.change: Callable[[], None] | None = None

    def __call__(self, user: object) -> bool:
        change, self.change = self.change, None
        if change is not None:
            change()
        return getattr(user, "plan", None) == "pro"


def answers_around_a_change(path: str, answer: Callable[[Any], Any]) -> list[Any]:
    """The answer before the change, the one it is made inside, and the one after."""

    async def run() -> list[Any]:
        with Rollout() as flags:
            group = WritingGroup()
            flags.define_group("pro", group)
            # Off for a free user, with no off_value: the caller's default, variant "off".
            flags.activate_group("limit", "pro")
            flags.set_feature_data("limit", {"value": 10})
            async with asgi_client(create_app(flags, token=TOKEN), headers=BEARER) as http:
                seen = [answer((await http.post(path, json=FREE)).json())]
                group.change = lambda: flags.define_flag(
                    "limit", {"a": 1, "b": 2}, default_variant=None
                )
                seen.append(answer((await http.post(path, json=FREE)).json()))
                assert group.change is None, "the change was not made inside the answer"
                seen.append(answer((await http.post(path, json=FREE)).json()))
                return seen

    return asyncio.run(run())


def of_limit(bulk: dict[str, Any]) -> Any:
    return next(flag for flag in bulk["flags"] if flag["key"] == "limit")


@pytest.mark.parametrize(
    ("path", "answer"),
    [(f"{BULK}/limit", lambda body: body), (BULK, of_limit)],
    ids=["single", "bulk"],
)
def test_a_flag_defined_while_it_is_answered_is_answered_by_one_version(
    path: str, answer: Callable[[Any], Any]
) -> None:
    before, during, after = answers_around_a_change(path, answer)
    assert (before["variant"], after["variant"]) == ("off", "")
    assert during in (before, after)
