"""Flags with a definition (flagd's model) on the check path, and named rules as groups.

A flag with variants is compiled once per change into the engine's
:class:`~rollout._core.targeting.CompiledFlag`; ``flags.active`` on it answers whether the
resolved value is ``True``. The check function (rollout._core.evaluate) is the one every flag
uses and must not change for on/off flags, so a defined flag takes part in it as a
:class:`DefinedCheck`: a :class:`~rollout._core.feature.Check` whose ``for_user`` resolves the
definition, and whose ``time_percentage`` (the only field the check reads for a check without a
user) is 100 or 0 as the definition resolves for an empty context.
"""

from __future__ import annotations

from collections.abc import Callable, Mapping

from . import targeting as _engine  # loaded with the first definition or rule
from .bucketing import Randomize
from .feature import Check
from .state import FlagState
from .targeting import JSON, RuleError

TYPE_CHECKING = False
if TYPE_CHECKING:
    from collections.abc import Iterable
    from typing import Any, TypeAlias

    from .targeting import CompiledFlag, FlagDefinition

__all__ = [
    "ContextOf",
    "DefinedCheck",
    "definition_of",
    "metadata_of",
    "rule_group",
    "rule_predicate",
    "rule_refs",
    "users_of_rules",
]

#: Turns what the API takes for a user into a rule's context (rollout._core.context).
ContextOf: TypeAlias = "Callable[[Any], Mapping[str, Any]]"

#: The metadata values flagd allows; other data values of a flag are not its flagd metadata.
_SCALARS = (str, int, float, bool)


def metadata_of(data: Mapping[str, Any]) -> dict[str, str | int | float | bool]:
    """A flag's data as flagd metadata: the keys whose values are strings, numbers or booleans."""
    return {key: value for key, value in data.items() if isinstance(value, _SCALARS)}


def definition_of(state: FlagState) -> FlagDefinition:
    """The flag's definition in the engine's terms (its data as metadata)."""
    return _engine.FlagDefinition(
        variants=dict(state.variants),
        default_variant=state.default_variant,
        targeting=state.targeting,
        enabled=not state.disabled,
        metadata=metadata_of(state.data),
    )


class DefinedCheck(Check):
    """The check of a flag with a definition: on when the definition resolves to ``True``."""

    __slots__ = ("compiled", "context_of", "on_error")

    def __init__(
        self,
        name: str,
        state: FlagState,
        randomize: Randomize,
        *,
        compiled: CompiledFlag,
        context_of: ContextOf,
        on_error: Callable[[], object],
    ) -> None:
        super().__init__(name, state, randomize, {})
        self.compiled = compiled
        self.context_of = context_of
        self.on_error = on_error
        self.anonymous = None  # a rule may read the time ($flagd.timestamp): never cached
        self.for_user = self._for_user

    def _for_user(self, user: object) -> bool:
        resolution = self.compiled.resolve(self.name, self.context_of(user))
        if resolution.reason == "ERROR":
            self.on_error()  # counted; the check answers no, as flagd answers the default
        return resolution.value is True

    # The check without a user is `random() * 100.0 < check.time_percentage`: 100 lets every
    # draw in (random() < 1), 0 none. The on/off percentages of such a flag play no part.
    @property
    def time_percentage(self) -> float:
        return 100.0 if self.compiled.resolve(self.name, {}).value is True else 0.0

    @time_percentage.setter
    def time_percentage(self, _value: float) -> None:
        pass  # Check.__init__ sets it from the state: a defined flag computes it instead


def rule_refs(rule: JSON) -> set[str]:
    """The names a rule refers to with ``{"$ref": name}``."""
    found: set[str] = set()
    pending = [rule]
    while pending:
        node = pending.pop()
        if isinstance(node, dict):
            ref = node.get("$ref")
            if isinstance(ref, str) and len(node) == 1:
                found.add(ref)
            pending.extend(node.values())
        elif isinstance(node, list):
            pending.extend(node)
    return found


def users_of_rules(
    changed: set[str], uses: Iterable[tuple[str, JSON]], rules: Mapping[str, JSON]
) -> set[str]:
    """The names among ``uses`` (name, rule) whose rule refers to a changed rule, directly or
    through other rules (a rule may ``$ref`` another)."""
    # Who refers to whom, read once: a flagd file can chain thousands of evaluators, and
    # rescanning every rule for each link found was quadratic (under the replica's lock).
    referrers: dict[str, list[str]] = {}
    for name, rule in rules.items():
        for ref in rule_refs(rule):
            referrers.setdefault(ref, []).append(name)
    affected = set(changed)
    pending = list(changed)
    while pending:  # the rules that reach a changed one (a cycle stops at names already seen)
        for name in referrers.get(pending.pop(), ()):
            if name not in affected:
                affected.add(name)
                pending.append(name)
    return {name for name, rule in uses if rule_refs(rule) & affected}


def rule_predicate(
    rule: JSON, rules: Mapping[str, JSON], on_error: Callable[[], object]
) -> Callable[[Mapping[str, Any]], bool]:
    """A named rule compiled as a predicate over a context; one that cannot compile (a ``$ref``
    to a rule removed since) says no, as an undefined group does. ``on_error()`` is called for
    each evaluation that fails (it says no)."""
    try:
        return _engine.compile_predicate(rule, rules, on_error=lambda _error: on_error())
    except RuleError:
        return _never


def _never(_context: Mapping[str, Any]) -> bool:
    return False


def rule_group(
    predicate: Callable[[Mapping[str, Any]], bool], context_of: ContextOf
) -> Callable[[Any], bool]:
    """A named rule as a group's predicate over a user (what on/off flags' checks call)."""

    def in_group(user: object) -> bool:
        return predicate(context_of(user))

    return in_group
