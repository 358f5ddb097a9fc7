"""``flags.explain()`` in OpenFeature's words: the reason, and the numbers as flag metadata.

The provider's reason always comes from the explanation's walk of the compiled check's own
steps (rollout._core.explain): on every targeted evaluation the provider asks for the walk's
:data:`~rollout._core.explain.Decision` (the explanation's fields without its message, which
costs a fraction of building the words), and this module only translates it. OpenFeature flag
metadata values are ``bool | str | int | float``; each key here has one type, whatever the
check (a consumer can read ``metadata["bucket"]`` as an int without testing it):

========================  =======  ==================================================
key                       type     present
========================  =======  ==================================================
``rule``                  str      always: the explanation's reason (``bucket``, ...)
``percentage``            float    always: the flag's percentage of users
``percentage_of_time``    float    always: its percentage of the time
``bucket``                int      the user's bucket, when a percentage was consulted
``threshold``             int      the bucket bound of ``percentage``, likewise
``bucketing``             str      ``crc32``, ``randomized`` or ``ruby``, likewise
``group``                 str      the group whose predicate said yes
``draw``                  float    the draw of the percentage of time, when taken
========================  =======  ==================================================
"""

from __future__ import annotations

from collections.abc import Mapping
from random import random
from typing import TYPE_CHECKING

from openfeature.flag_evaluation import Reason

from .._core.decide import specialize_decision
from .._core.explain import decide_check

if TYPE_CHECKING:
    from .._client.rollout import Rollout
    from .._core.explain import Decision
    from .._core.feature import Check

__all__ = [
    "EXPLANATION_KEYS",
    "REASONS",
    "decide",
    "explained_metadata",
    "group_metadata",
]

#: The metadata keys an explanation fills (a flag's data under these names is not metadata).
EXPLANATION_KEYS = frozenset(
    {
        "rule",
        "percentage",
        "percentage_of_time",
        "bucket",
        "threshold",
        "bucketing",
        "group",
        "draw",
    }
)

# The explanation's reason in OpenFeature's vocabulary. "everybody" reaches here only when the
# flag is not the same for every context (those are STATIC before any explanation): the group
# `all`, or 100% with some users excluded, so a rule about users decided.
REASONS: Mapping[str, Reason] = {
    "override": Reason.STATIC,
    "excluded": Reason.TARGETING_MATCH,
    "percentage_of_time": Reason.SPLIT,
    "everybody": Reason.TARGETING_MATCH,
    "listed": Reason.TARGETING_MATCH,
    "bucket": Reason.SPLIT,
    "group": Reason.TARGETING_MATCH,
    "no_user": Reason.DEFAULT,
    "off": Reason.DEFAULT,
}


def decide(flags: Rollout, check: Check, uid: str | None, user: object) -> Decision:
    """Which rule decides ``check`` (an on/off flag's, of the version the provider's view is
    of) for the user whose id, as the check reads it, is ``uid`` (None: a check without a
    user), and its numbers: the walk of ``flags.explain`` without its words. With a user, the
    check's decision function (rollout._core.decide, built on its first decision), about half
    the cost of the walk (rollout._core.explain.decide_check)."""
    if uid is None:
        return decide_check(check, None, None, flags._explain_group, random)
    function = check.decide
    if function is None:  # two threads may both build it: the same function
        function = check.decide = specialize_decision(check, flags._group_failed)
    return function(uid, user)


def explained_metadata(
    data: Mapping[str, bool | int | float | str], decision: Decision
) -> dict[str, bool | int | float | str]:
    """The flag's data metadata plus the decision's numbers, one type per key (the decision's
    numbers are of those types already: only the percentages, which a flag may hold as ints,
    are converted)."""
    _, reason, percentage, of_time, group, bucket, bound, bucketing, drawn = decision
    # One dict display per kind of decision: this is on the targeted evaluation's hot path.
    if bucket is not None and bound is not None and bucketing is not None:
        metadata = {
            **data,
            "rule": reason,
            "percentage": float(percentage),
            "percentage_of_time": float(of_time),
            "bucket": bucket,
            "threshold": bound,
            "bucketing": bucketing,
        }
    else:
        metadata = {
            **data,
            "rule": reason,
            "percentage": float(percentage),
            "percentage_of_time": float(of_time),
        }
        if group is not None:
            metadata["group"] = group
    if drawn is not None:
        metadata["draw"] = drawn
    return metadata


def group_metadata(
    data: Mapping[str, bool | int | float | str], decision: Decision, group: str
) -> dict[str, bool | int | float | str]:
    """For a context without a targeting key whose group said yes after the decision of
    the check without a user said no: the same keys, with the group as the rule."""
    metadata = explained_metadata(data, decision)
    metadata.pop("draw", None)  # the draw did not decide: the group did
    metadata["rule"] = "group"
    metadata["group"] = group
    return metadata
