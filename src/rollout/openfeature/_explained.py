"""``flags.explain()`` in OpenFeature's words: the reason, and the numbers as flag metadata.

The provider's reason always comes from :class:`rollout.Explanation` (rollout._core.explain,
which walks the compiled check's own steps): this module only translates it. OpenFeature flag
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

from openfeature.flag_evaluation import Reason

if TYPE_CHECKING:
    from .._core.explain import Explanation

__all__ = ["EXPLANATION_KEYS", "explained_metadata", "explained_reason", "group_metadata"]

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
_REASONS: Mapping[str, Reason] = {
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


def explained_reason(explanation: Explanation) -> Reason:
    """The OpenFeature reason of an explanation (``unknown_flag`` is the caller's error)."""
    return _REASONS[explanation.reason]


def explained_metadata(
    data: Mapping[str, bool | int | float | str], explanation: Explanation
) -> dict[str, bool | int | float | str]:
    """The flag's data metadata plus the explanation's numbers, one type per key."""
    metadata = dict(data)
    metadata["rule"] = explanation.reason
    metadata["percentage"] = float(explanation.percentage)
    metadata["percentage_of_time"] = float(explanation.percentage_of_time)
    if explanation.bucket is not None:
        metadata["bucket"] = int(explanation.bucket)
    if explanation.threshold is not None:
        metadata["threshold"] = int(explanation.threshold)
    if explanation.bucketing is not None:
        metadata["bucketing"] = str(explanation.bucketing)
    if explanation.group is not None:
        metadata["group"] = str(explanation.group)
    if explanation.draw is not None:
        metadata["draw"] = float(explanation.draw)
    return metadata


def group_metadata(
    data: Mapping[str, bool | int | float | str], explanation: Explanation, group: str
) -> dict[str, bool | int | float | str]:
    """For a context without a targeting key whose group said yes after the explanation of
    the check without a user said no: the same keys, with the group as the rule."""
    metadata = explained_metadata(data, explanation)
    metadata.pop("draw", None)  # the draw did not decide: the group did
    metadata["rule"] = "group"
    metadata["group"] = group
    return metadata
