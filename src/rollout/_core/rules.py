"""What a flag's rules say, read from its snapshot: the one home of "is it on" and "why".

Several parts describe a flag rather than check it: the CLI's table and the API's ``state``
(``on``, ``off``, ``partial``), degrade (is there anything to switch off?), OpenFeature's
reasons (is there a rule at all?). They used to compute their own predicates, under the
same names with different meanings (two functions called ``is_on``, one meaning "on for
everybody", the other "on for anybody"). Here each question has one name:

* :func:`on_without_a_user` — a check with no user says yes (100% of users or of the time);
* :func:`on_for_everybody` — every user gets it: that, with nobody excluded (state ``on``);
* :func:`on_for_anybody` — some rule can turn it on for someone (state ``partial`` or ``on``);
* :func:`state` — ``on``, ``off`` or ``partial``;
* :class:`Rules` — the facts that settle an answer's kind without a check (STATIC, DISABLED).

The answer itself always comes from the compiled check (rollout._core.specialize), and which
rule decided it from ``flags.explain`` (rollout._core.explain), which walks the check's own steps.
"""

from __future__ import annotations

from .feature import Feature

TYPE_CHECKING = False
if TYPE_CHECKING:
    from typing import Literal, TypeAlias

__all__ = [
    "Rules",
    "State",
    "on_for_anybody",
    "on_for_everybody",
    "on_without_a_user",
    "state",
]

State: TypeAlias = "Literal['on', 'off', 'partial']"


def on_without_a_user(feature: Feature) -> bool:
    """A check without a user says yes: 100% of users, or 100% of the time."""
    return feature.percentage >= 100.0 or feature.percentage_of_time >= 100.0


def on_for_everybody(feature: Feature) -> bool:
    """Every user gets it: on without a user, and nobody excluded."""
    return on_without_a_user(feature) and not feature.excluded_users


def on_for_anybody(feature: Feature) -> bool:
    """Some rule can turn it on for someone (exclusions alone turn nothing on)."""
    return bool(feature.percentage or feature.percentage_of_time or feature.users or feature.groups)


def state(feature: Feature) -> State:
    """``on`` for everybody, ``off`` for everybody, else ``partial``."""
    if on_for_everybody(feature):
        return "on"
    return "partial" if on_for_anybody(feature) else "off"


class Rules:
    """The facts about one snapshot of a flag that tell an answer's kind without a check.

    Which rule decided one check is :func:`rollout._core.explain.explain_check`'s to say (the one
    source of truth, walking the compiled check's own steps); these facts only let a caller
    skip asking it where the snapshot alone settles the matter (OpenFeature's STATIC and
    DISABLED), and say what a check without a user cannot decide.
    """

    __slots__ = ("disabled", "feature", "groups", "needs_key", "static")

    def __init__(self, feature: Feature) -> None:
        self.feature = feature
        percentage, of_time = feature.percentage, feature.percentage_of_time
        #: Groups with a predicate to run (``all`` needs none): the user object is built only
        #: for flags that have some, since only their predicates can see it.
        self.groups = tuple(sorted(feature.groups - {"all"}))
        #: Nothing can turn it on for anybody (exclusions alone turn nothing on).
        self.disabled = not on_for_anybody(feature)
        #: The same answer, on, for every context, with or without a user. (`all` is not
        #: enough: a check without a user is on only at 100%.)
        self.static = on_for_everybody(feature)
        #: The answer is a split of users that cannot be computed without a user.
        self.needs_key = 0.0 < percentage < 100.0 and of_time < 100.0
