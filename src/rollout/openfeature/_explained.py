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
from typing import TYPE_CHECKING

from openfeature.exception import FlagNotFoundError, InvalidContextError
from openfeature.flag_evaluation import Reason

if TYPE_CHECKING:
    from .._client.rollout import Rollout
    from .._core.explain import Decision, Explanation

__all__ = [
    "EXPLANATION_KEYS",
    "REASONS",
    "DefinedSinceError",
    "decide",
    "decision_of",
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


class DefinedSinceError(Exception):
    """The flag got a definition after the provider read its view (another thread's change, a
    replicated one, or one made by a predicate or user_from_context mid-resolution): its answer
    is now ``flags.evaluate``'s, which the provider asks with the flag's new view. (Its
    explanation's reason, "definition", is none of an on/off flag's REASONS.)"""


def decide(flags: Rollout, flag_key: str, user: object) -> Decision:
    """Which rule decides the check for ``user`` and its numbers: the walk of
    ``flags.explain`` without its words (rollout._core.explain.decide_check); the explanation
    itself only for a flag overridden, deleted or defined since the provider's view of it was
    read: DefinedSinceError for one defined. (The provider's usual path asks
    ``flags._decide_user``, the same decision.)"""
    try:
        # Rollout._decide is there for this provider: explain without building its words.
        decision = flags._decide(flag_key, user)
        if decision is not None:
            return decision
        explanation = flags.explain(flag_key, user)
    except (TypeError, ValueError) as exc:  # the user object has no usable id
        raise InvalidContextError(f"cannot check {flag_key!r} for {user!r}: {exc}") from exc
    if explanation.reason == "unknown_flag":  # deleted since its view was read
        raise FlagNotFoundError(f"no flag named {flag_key!r}")
    if explanation.reason == "definition":
        raise DefinedSinceError(flag_key)
    return decision_of(explanation)


def decision_of(explanation: Explanation) -> Decision:
    """An explanation's decision: its fields after the message, in order."""
    e = explanation
    return (
        e.active, e.reason, e.percentage, e.percentage_of_time, e.group, e.bucket, e.threshold,
        e.bucketing, e.draw,
    )  # fmt: skip


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
