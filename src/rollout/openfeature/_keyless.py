"""The provider's answer for a context without a targeting key (an on/off flag).

Only the check without a user can say yes to it (100%, or a draw of the percentage of time);
then the flag's groups are asked, since a predicate needs attributes, not an id; rules about ids
(listed users, the percentage of users) cannot apply: a flag on for a percentage of users needs
a targeting key (TARGETING_KEY_MISSING) unless a group said yes.
"""

from __future__ import annotations

from collections.abc import Callable
from types import MappingProxyType
from typing import TYPE_CHECKING

from openfeature.exception import TargetingKeyMissingError
from openfeature.flag_evaluation import Reason

from ._explained import REASONS, decide, explained_metadata, group_metadata

if TYPE_CHECKING:
    from openfeature.evaluation_context import EvaluationContext

    from .._client.rollout import Rollout
    from .._core.feature import Check
    from ._flag import Evaluated, FlagView

__all__ = ["without_key"]


def without_key(
    flags: Rollout,
    check: Check,
    view: FlagView,
    context: EvaluationContext | None,
    user_of: Callable[[EvaluationContext], object],
) -> Evaluated:
    """A context without a targeting key: the check without a user (only 100% or a draw
    of the time says yes), then the flag's groups, whose predicates need no id, for a
    context that has attributes for them to read (the user ``user_of(context)``); rules about
    ids cannot apply. ``check`` is the flag's compiled check of the version ``view`` is of."""
    decision = decide(flags, check, None, None)
    if not decision[0]:
        if view.groups and context is not None and context.attributes:
            group = flags._group_saying_yes(check, user_of(context))
            if group is not None:
                matched = group_metadata(view.metadata, decision, group)
                return view, True, Reason.TARGETING_MATCH, MappingProxyType(matched)
        if view.needs_key:
            raise TargetingKeyMissingError(
                f"flag {view.feature.name!r} is on for a percentage of users: the evaluation "
                "context needs a targeting_key to pick them"
            )
    metadata = MappingProxyType(explained_metadata(view.metadata, decision))
    return view, decision[0], REASONS[decision[1]], metadata
