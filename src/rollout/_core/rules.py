"""What a flag's rules say, read from its snapshot: the one home of "is it on" and "why".

Several parts describe a flag rather than check it: the CLI's table and the API's ``state``
(``on``, ``off``, ``partial``), degrade (is there anything to switch off?), OpenFeature's
reasons (which rule decided this answer?). They used to compute their own predicates, under the
same names with different meanings (two functions called ``is_on``, one meaning "on for
everybody", the other "on for anybody"). Here each question has one name:

* :func:`on_without_a_user` — a check with no user says yes (100% of users or of the time);
* :func:`on_for_everybody` — every user gets it: that, with nobody excluded (state ``on``);
* :func:`on_for_anybody` — some rule can turn it on for someone (state ``partial`` or ``on``);
* :func:`state` — ``on``, ``off`` or ``partial``;
* :class:`Rules` and :meth:`Rules.decided_by` — which rule decided one check's answer.

The answer itself always comes from the compiled check (rollout._core.specialize); this module
only explains it, in the check's own order (the README's "Evaluation, in order").
"""

from __future__ import annotations

import enum
from collections.abc import Callable
from typing import Literal

from .feature import Feature

__all__ = [
    "Decision",
    "Rules",
    "State",
    "on_for_anybody",
    "on_for_everybody",
    "on_without_a_user",
    "state",
]

State = Literal["on", "off", "partial"]


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


class Decision(enum.Enum):
    """Which kind of rule decided a check's answer."""

    #: Nothing can turn the flag on for anybody: off, and not by any rule.
    DISABLED = "disabled"
    #: On for every context, with or without a user: no rule needed.
    STATIC = "static"
    #: A rule about this user decided: excluded, listed, a group, or on for everybody.
    TARGETING = "targeting"
    #: Chance decided: the user's percentage bucket, or a draw of the percentage of time.
    SPLIT = "split"
    #: No rule applied: the flag's default answer, off.
    DEFAULT = "default"


class Rules:
    """The facts about one snapshot of a flag that explaining an answer needs, computed once."""

    __slots__ = (
        "anyone",
        "chance",
        "disabled",
        "everybody",
        "excluded",
        "feature",
        "groups",
        "needs_key",
        "of_time",
        "static",
        "users",
    )

    def __init__(self, feature: Feature) -> None:
        self.feature = feature
        percentage, of_time = feature.percentage, feature.percentage_of_time
        self.users = feature.users
        self.excluded = feature.excluded_users
        #: Groups with a predicate to run (``all`` needs none): the user object is built only
        #: for flags that have some, since only their predicates can see it.
        self.groups = tuple(sorted(feature.groups - {"all"}))
        #: On without a user: 100% of users or of the time.
        self.anyone = on_without_a_user(feature)
        #: On for every user who is not excluded: that, or the group `all`.
        self.everybody = self.anyone or "all" in feature.groups
        self.of_time = of_time > 0.0
        #: Nothing can turn it on for anybody (exclusions alone turn nothing on).
        self.disabled = not on_for_anybody(feature)
        #: The same answer, on, for every context, with or without a user. (`all` is not
        #: enough: a check without a user is on only at 100%.)
        self.static = self.anyone and not feature.excluded_users
        #: A pseudorandom rule may decide: a percentage of users or of the time.
        self.chance = percentage > 0.0 or of_time > 0.0
        #: The answer is a split of users that cannot be computed without a user.
        self.needs_key = 0.0 < percentage < 100.0 and of_time < 100.0

    def decided_by(
        self,
        key: str | None,
        answer: bool,
        user: object,
        in_group: Callable[[str, object], bool],
    ) -> Decision | None:
        """Which rule decided that the check for user id ``key`` answered ``answer``.

        ``in_group(group, user)`` runs a group's predicate again, only when the answer was yes,
        the user is not listed, and both a group and a percentage could have let the user in.
        None means the answer cannot come from this snapshot (the flag changed between the
        check and this call): the caller reads again.
        """
        if self.disabled:
            return None if answer else Decision.DISABLED
        if self.static:
            return Decision.STATIC if answer else None
        if key is None:  # a check without a user: only 100% or a draw of the time says yes
            if self.anyone:  # on for everybody, but the flag also excludes some users
                return Decision.TARGETING if answer else None
            if self.of_time:
                return Decision.SPLIT
            return None if answer else Decision.DEFAULT
        if key in self.excluded:
            return None if answer else Decision.TARGETING
        if not answer:
            if key in self.users or self.everybody:
                return None
            return Decision.SPLIT if self.chance else Decision.DEFAULT
        if key in self.users or self.everybody:
            return Decision.TARGETING
        if not self.groups:
            return Decision.SPLIT if self.chance else None
        if not self.chance:
            return Decision.TARGETING
        if any(in_group(group, user) for group in self.groups):
            return Decision.TARGETING
        return Decision.SPLIT
