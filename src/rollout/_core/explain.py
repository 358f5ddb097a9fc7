"""``flags.explain(name, user)``: which rule decided a check, and the numbers behind it.

It reads the same compiled :class:`~rollout._core.feature.Check` that ``flags.active`` runs and
walks the steps in the check's own order (rollout._core.specialize): exclusion, the draw of the
percentage of time, on for everybody, the listed users, the user's bucket, the groups'
predicates. The first step that says yes decided; if none did, the flag is off for this user, and
the explanation says how close the bucket came. It never calls ``active()`` and guesses.

The draw of the percentage of time is taken at the same point and under the same conditions as
the check takes it (one call of ``draw``, only when the check would call ``random()``), so with
the same draw the explanation's ``active`` is the check's answer.

The walk itself is :func:`decide_check`, which returns the decision as a plain tuple; an
:class:`Explanation` is that decision with its words. The OpenFeature provider asks for the
decision alone (on every targeted evaluation, where the message would be built for nothing).
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import asdict, dataclass, replace
from typing import Any, Literal
from zlib import crc32

from .bucketing import id_bytes, randomized_bucket, ruby_bucket
from .feature import Check
from .targeting import Resolution

__all__ = [
    "Decision",
    "Explanation",
    "Reason",
    "amended",
    "decide_check",
    "explain_check",
    "explain_definition",
    "explain_override",
    "explain_unknown",
    "explained",
]

Reason = Literal[
    "override",
    "unknown_flag",
    "excluded",
    "percentage_of_time",
    "everybody",
    "listed",
    "bucket",
    "group",
    "no_user",
    "off",
    "definition",
]

_EVERY_BUCKET = 2**32  # as in specialize: a bound this high lets every bucket in


@dataclass(frozen=True, init=False)
class Explanation:
    """Why ``flags.active(flag, user)`` answers ``active``: the rule that decided (``reason``).

    ``reason``, in the order the check tries the rules:

    * ``override``: ``flags.override()`` forces the answer;
    * ``unknown_flag``: never written, or deleted: off;
    * ``excluded``: the user is excluded: off;
    * ``percentage_of_time``: the ``draw`` (``random() * 100``) was below ``percentage_of_time``
      (on), or was not and no other rule turned the flag on (off);
    * ``everybody``: 100% of users, the group ``all`` (or, without a user, 100% of the time);
    * ``listed``: the user is listed: on;
    * ``bucket``: the user's ``bucket`` is below ``threshold``, the bound of ``percentage``
      (on), or is not and no group said yes (off);
    * ``group``: the predicate of ``group`` said yes: on;
    * ``no_user``: a check without a user is on only at 100%: off;
    * ``off``: no rule turns the flag on for this user;
    * ``definition``: the flag has a definition (variants): on when it resolves to the value
      ``True``; the message names the variant and flagd's reason (``flags.evaluate``).
    """

    flag: str
    user: str | None
    active: bool
    reason: Reason
    #: One line for people, e.g. "on: bucket 12345 is below 429496730 (10% of users)".
    message: str
    percentage: float = 0.0
    percentage_of_time: float = 0.0
    #: The group whose predicate said yes (``reason == "group"``).
    group: str | None = None
    #: The user's bucket, as the check computes it (0 <= bucket < 2**32), when a percentage of
    #: users between 0 and 100 was consulted.
    bucket: int | None = None
    #: The bucket bound for ``percentage``: buckets below it are let in.
    threshold: int | None = None
    #: How buckets are computed: "crc32" (the default), "randomized" or "ruby".
    bucketing: str | None = None
    #: The draw of the percentage of time, ``random() * 100``, when one was taken.
    draw: float | None = None

    def __init__(  # noqa: PLR0917 - one parameter per field, as the generated one
        self,
        flag: str,
        user: str | None,
        active: bool,
        reason: Reason,
        message: str,
        percentage: float = 0.0,
        percentage_of_time: float = 0.0,
        group: str | None = None,
        bucket: int | None = None,
        threshold: int | None = None,
        bucketing: str | None = None,
        draw: float | None = None,
    ) -> None:
        # The generated __init__ of a frozen dataclass sets each field with object.__setattr__,
        # ten times slower than one update of the instance's dict; the OpenFeature provider
        # builds one explanation per targeted evaluation. Still frozen: __setattr__ refuses.
        self.__dict__.update(
            flag=flag,
            user=user,
            active=active,
            reason=reason,
            message=message,
            percentage=percentage,
            percentage_of_time=percentage_of_time,
            group=group,
            bucket=bucket,
            threshold=threshold,
            bucketing=bucketing,
            draw=draw,
        )

    def to_dict(self) -> dict[str, Any]:
        """A JSON-ready dict of every field (None where a number was not consulted)."""
        return asdict(self)


def explain_override(name: str, user: str | None, value: bool) -> Explanation:
    word = "on" if value else "off"
    return Explanation(name, user, value, "override", f"{word}: forced by flags.override()")


def explain_definition(name: str, user: str | None, resolution: Resolution) -> Explanation:
    """A flag with a definition: its resolution (``flags.evaluate``) in words."""
    value, variant, reason, _, error = resolution
    active = value is True
    word = "on" if active else "off"
    if error is not None:
        return Explanation(name, user, active, "definition", f"{word}: {reason} ({error})")
    chosen = f"variant {variant!r} ({value!r})" if variant is not None else "no variant"
    return Explanation(name, user, active, "definition", f"{word}: {chosen}, {reason}")


def explain_unknown(name: str, user: str | None) -> Explanation:
    # The words of every other surface (show, the API's 404, OpenFeature): a typo is named.
    return Explanation(name, user, False, "unknown_flag", f"off: no flag named {name!r}")


#: What decided a check, without words (:func:`decide_check`): ``(active, reason,
#: percentage, percentage_of_time, group, bucket, threshold, bucketing, draw)``, the fields of
#: :class:`Explanation` after its message, in its order. A plain tuple: the OpenFeature provider
#: asks for one on every targeted evaluation, and a tuple is built ten times faster than an
#: Explanation with its message.
Decision = tuple[
    bool, Reason, float, float, str | None, int | None, int | None, str | None, float | None
]


def explain_check(
    check: Check,
    uid: str | None,
    user: object,
    in_group: Callable[[str, object], bool],
    draw: Callable[[], float],
) -> Explanation:
    """The explanation of ``check`` for user id ``uid`` (None: a check without a user):
    :func:`decide_check`'s decision, in words.

    ``in_group(group, user)`` runs a defined group's predicate (one that raises says no);
    ``draw()`` is ``random.random`` unless a test fixes it.
    """
    return explained(check, uid, decide_check(check, uid, user, in_group, draw))


def explained(check: Check, uid: str | None, decision: Decision) -> Explanation:
    """The explanation of ``decision``, made by ``check`` for user id ``uid``: its words."""
    return Explanation(
        check.name, uid, decision[0], decision[1], _words(check, uid, decision), *decision[2:]
    )


def decide_check(
    check: Check,
    uid: str | None,
    user: object,
    in_group: Callable[[str, object], bool],
    draw: Callable[[], float],
) -> Decision:
    """Which rule decides ``check`` for user id ``uid`` (None: a check without a user), and
    the numbers behind it; arguments as :func:`explain_check`'s."""
    # Written out flat, with positional tuples: the OpenFeature provider asks this on every
    # targeted evaluation, so it is kept to a few hundred nanoseconds.
    of_time = check.time_percentage
    percentage = check.percentage
    if uid is None:
        if check.anonymous is not None:
            if check.anonymous:
                return True, "everybody", percentage, of_time, None, None, None, None, None
            return False, "no_user", percentage, of_time, None, None, None, None, None
        value = draw() * 100.0
        yes = value < of_time
        return yes, "percentage_of_time", percentage, of_time, None, None, None, None, value
    if uid in check.excluded:
        return False, "excluded", percentage, of_time, None, None, None, None, None
    drawn: float | None = None
    if of_time > 0:
        drawn = draw() * 100.0
        if drawn < of_time:
            return True, "percentage_of_time", percentage, of_time, None, None, None, None, drawn
    bound = check.bound
    if check.has_all or bound >= _EVERY_BUCKET:
        return True, "everybody", percentage, of_time, None, None, None, None, drawn
    if uid in check.users:
        return True, "listed", percentage, of_time, None, None, None, None, drawn
    bucket: int | None = None
    kind: str | None = None
    if bound:
        kind, bucket = _bucket(check, uid)
        if bucket < bound:
            return True, "bucket", percentage, of_time, None, bucket, bound, kind, drawn
    for group in check.groups:
        if in_group(group, user):
            return True, "group", percentage, of_time, group, None, None, None, drawn
    if bucket is not None:
        return False, "bucket", percentage, of_time, None, bucket, bound, kind, drawn
    if drawn is not None:
        return False, "percentage_of_time", percentage, of_time, None, None, None, None, drawn
    return False, "off", percentage, of_time, None, None, None, None, drawn


def _words(check: Check, uid: str | None, decision: Decision) -> str:
    """The one line for people of a decision (:attr:`Explanation.message`)."""
    active, reason, percentage, of_time, group, bucket, bound, _, drawn = decision
    word = "on" if active else "off"
    if reason == "everybody":
        if uid is None:
            return f"on: {_everybody(percentage, of_time)}"
        why = "the group 'all'" if check.has_all else "100% of users"
        return f"on: on for everybody ({why})"
    if reason == "no_user":
        return "off: without a user a flag is on only at 100%"
    if reason == "percentage_of_time" and drawn is not None:  # a draw decided
        return f"{word}: {_drew(drawn, of_time, active)}"
    if reason == "excluded":
        return f"off: user {uid!r} is excluded"
    if reason == "listed":
        return f"on: user {uid!r} is listed"
    if bucket is not None and bound is not None:  # a bucket decided
        relation = "below" if active else "not below"
        return f"{word}: {_compared(bucket, relation, bound, percentage)}"
    if reason == "group":
        return f"on: the group {group!r} says yes"
    return "off: no rule turns it on for this user"


def _bucket(check: Check, uid: str) -> tuple[str, int]:
    """The user's bucket, by the same formula as the check (rollout._core.specialize)."""
    if check.randomize is False:
        return "crc32", crc32(id_bytes(uid))
    if check.randomize is True:
        return "randomized", randomized_bucket(uid, check.seed)
    return "ruby", ruby_bucket(uid, check.name, randomize=True)


def _everybody(percentage: float, of_time: float) -> str:
    if percentage >= 100.0:
        return "on for everybody (100% of users)"
    return f"on for every check ({of_time:g}% of the time)"


def _drew(value: float, of_time: float, below: bool) -> str:
    relation = "below" if below else "not below"
    return f"the draw {value:.2f} is {relation} {of_time:g}% of the time"


def _compared(bucket: int, relation: str, bound: int, percentage: float) -> str:
    return f"bucket {bucket} is {relation} {bound} ({percentage:g}% of users)"


def amended(explanation: Explanation, **changes: Any) -> Explanation:
    """``explanation`` with some fields changed (the client names a rule that acts as a group)."""
    return replace(explanation, **changes)
