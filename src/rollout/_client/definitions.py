"""The library API of flag definitions (variants, a default variant, targeting as data) and of
named rules: the methods :class:`~rollout.Rollout` gains from :class:`DefinitionsAPI`.

A definition is flagd's model of a flag (docs/targeting.md, "Variants and rules in the
library"): named variants with JSON values, a default variant, a JsonLogic targeting rule and a
state (enabled or disabled). Named rules are flagd's shared evaluators (``$ref``) and, by name,
groups of on/off flags ("segments"). Each method checks all of its arguments first and then
makes one write, recorded in history like every other change.
"""

from __future__ import annotations

import os
from collections.abc import Mapping

from .._core import targeting as _engine  # loaded with the first definition or rule
from .._core.defined import DefinedCheck, rule_refs
from .._core.definition_args import (
    check_default_variant,
    definition_changes,
    flagd_metadata,
    rule_argument,
    variant_kind,
    variant_value,
    variants_argument,
)
from .._core.history import write_context
from .._core.keys import DEFAULT_VARIANT, DISABLED, RULE, RULES_ENTITY, TARGETING_RULE, VARIANT
from .._core.targeting import JSON, Resolution
from .._core.validate import FlagName, flag_name, member_name, text
from ..errors import UnknownFlagError

TYPE_CHECKING = False
if TYPE_CHECKING:
    from typing import Any

    from .._core.explain import Decision
    from .._core.feature import Check
    from .._core.history_event import HistoryEvent
    from .._core.targeting import CompiledFlag, FlagDefinition
    from .override import Overrides
    from .pipeline import WritePipeline
    from .replica import Replica

__all__ = ["DefinitionsAPI"]

#: An on/off flag's answers as variants.
_ON_OFF = {True: "on", False: "off"}

#: An on/off flag's answers when they are the same for every context.
_STATIC_ON = Resolution(True, "on", "STATIC", None, None)
_DISABLED_OFF = Resolution(False, "off", "DISABLED", None, None)

#: explain()'s reasons of an on/off flag in flagd's (and OpenFeature's) words.
_REASONS = {
    "override": "STATIC",
    "excluded": "TARGETING_MATCH",
    "listed": "TARGETING_MATCH",
    "group": "TARGETING_MATCH",
    "everybody": "TARGETING_MATCH",
    "percentage_of_time": "SPLIT",
    "bucket": "SPLIT",
    "no_user": "DEFAULT",
    "off": "DEFAULT",
}


class DefinitionsAPI:
    """Variants, targeting rules and named rules: the flagd model, as methods of ``Rollout``."""

    if TYPE_CHECKING:  # the parts of Rollout these methods use
        _pipeline: WritePipeline
        _replica: Replica
        _overrides: Overrides

        def _subject(self, user: object) -> tuple[str | None, object]: ...
        def _decision(self, check: Check, uid: str | None, user: object) -> Decision: ...

    # Definitions ------------------------------------------------------------------------------

    def define_flag(
        self,
        name: FlagName,
        variants: Mapping[str, JSON],
        *,
        default_variant: str | None,
        targeting: JSON | None = None,
        enabled: bool = True,
        metadata: Mapping[str, Any] | None = None,
        reason: str | None = None,
    ) -> None:
        """Make the flag's definition exactly this, in one write (what it had is replaced).

        ``variants`` maps variant names to JSON values, all of one of flagd's kinds (booleans,
        strings, numbers or objects); ``default_variant`` names one of them, or is None (the
        caller's default is answered when no rule decides). ``targeting`` is a JsonLogic rule
        choosing a variant by name (flagd's operators and ``{"$ref": rule}``); ``enabled=False``
        is flagd's state DISABLED. ``metadata`` (strings, numbers, booleans) becomes the flag's
        data, replacing it; None leaves the data as it is. ``reason`` is recorded in history
        (as ``with_context(reason=...)`` would). Creates the flag if it does not exist.
        Raises ``RuleError`` (a ``ValueError`` with the JSON path), ``ValueError`` or
        ``TypeError`` naming the argument and the value; nothing is written then.
        """
        flag = flag_name(name)
        definition = _checked_definition(
            variants,
            default_variant=default_variant,
            targeting=targeting,
            enabled=enabled,
            metadata=metadata,
            targeting_path="$.targeting",
        )
        if reason is not None and not isinstance(reason, str):
            raise TypeError(f"reason must be a str or None, got {reason!r}")
        changes = definition_changes(definition, replace_data=metadata is not None)
        with write_context(None, reason):
            self._pipeline.write({flag: changes}, "define_flag")

    def set_variant(self, name: FlagName, variant: str, value: JSON) -> None:
        """Add the variant ``variant`` or change its value; the other variants stay (each is its
        own register: two processes changing two variants at once both keep their change).
        The value must be of the kind of the flag's other variants. Creates the flag (with a
        definition of this one variant) if it does not exist."""
        flag = flag_name(name)
        key = member_name(variant, "variant")
        checked = variant_value(value, "value")
        current = self._replica.definition(flag)
        others = {n: v for n, v in (current.variants if current else {}).items() if n != key}
        kinds = {variant_kind(v) for v in others.values()}
        if others and variant_kind(checked) not in kinds:
            raise ValueError(
                f"value must be a {'/'.join(sorted(k for k in kinds if k))} like the other "
                f"variants of flag {flag!r} (flagd's flags are typed), got {value!r:.200}"
            )
        self._pipeline.write({flag: {VARIANT + key: checked}}, "set_variant")

    def remove_variant(self, name: FlagName, variant: str) -> None:
        """Remove one variant. ``UnknownFlagError`` for an unknown flag, ``ValueError`` for a
        variant it does not have or for its default variant (change the default first).
        Removing the last variant leaves an on/off flag."""
        flag = flag_name(name)
        key = member_name(variant, "variant")
        current = self._defined(flag, "remove_variant")
        if key not in current.variants:
            raise ValueError(
                f"variant {key!r} is not one of the variants of flag {flag!r} "
                f"{sorted(current.variants)!r}"
            )
        if current.default_variant == key:
            raise ValueError(
                f"variant {key!r} is the default variant of flag {flag!r}: "
                "set another default variant (or None) first"
            )
        self._pipeline.write({flag: {VARIANT + key: None}}, "remove_variant", must_exist=True)

    def set_default_variant(self, name: FlagName, variant: str | None) -> None:
        """The variant answered when no rule decides; None: the caller's default is."""
        flag = flag_name(name)
        current = self._defined(flag, "set_default_variant")
        check_default_variant(variant, current.variants, "variant")
        self._pipeline.write(
            {flag: {DEFAULT_VARIANT: variant}}, "set_default_variant", must_exist=True
        )

    def set_targeting(self, name: FlagName, rule: JSON | None) -> None:
        """The flag's JsonLogic targeting rule (checked first: ``RuleError`` names the JSON
        path, ``$.targeting...``); None removes targeting."""
        flag = flag_name(name)
        checked = None if rule is None else rule_argument(rule, "rule", "$.targeting")
        self._defined(flag, "set_targeting")
        self._pipeline.write({flag: {TARGETING_RULE: checked}}, "set_targeting", must_exist=True)

    def enable_flag(self, name: FlagName) -> None:
        """flagd's state ENABLED: the definition answers again."""
        flag = flag_name(name)
        self._defined(flag, "enable_flag")
        self._pipeline.write({flag: {DISABLED: False}}, "enable_flag", must_exist=True)

    def disable_flag(self, name: FlagName) -> None:
        """flagd's state DISABLED: evaluations answer the caller's default, reason DISABLED,
        and ``active()`` is False. (An on/off flag is turned off with ``deactivate``.)"""
        flag = flag_name(name)
        self._defined(flag, "disable_flag")
        self._pipeline.write({flag: {DISABLED: True}}, "disable_flag", must_exist=True)

    def _defined(self, flag: str, method: str) -> FlagDefinition:
        """The flag's definition; UnknownFlagError for no flag, ValueError for an on/off one."""
        if flag not in self._replica.checks:
            raise UnknownFlagError(flag)
        current = self._replica.definition(flag)
        if current is None:
            raise ValueError(
                f"flag {flag!r} has no variants, so {method} has nothing to change: "
                "give it variants first (define_flag or set_variant)"
            )
        return current

    # Named rules -------------------------------------------------------------------------------

    def define_rule(self, rule_name: str, rule: JSON) -> None:
        """A named rule: flagd's shared evaluator (``{"$ref": rule_name}`` in targeting) and a
        group ("segment") of on/off flags whose group has no predicate in code. Flags that use
        it answer by the new rule at once."""
        key = member_name(rule_name, "rule_name")
        checked = rule_argument(rule, "rule")
        self._pipeline.write({RULES_ENTITY: {RULE + key: checked}}, "define_rule")

    def remove_rule(self, rule_name: str) -> None:
        """Forget a named rule. ``ValueError`` when there is none of that name, when a flag's
        targeting or another rule refers to it (``$ref``), or when it is the group of an on/off
        flag (a segment in use): change those first."""
        key = member_name(rule_name, "rule_name")
        rules = self._replica.rules
        if key not in rules:
            raise ValueError(f"rule_name {key!r} names no rule (rules: {sorted(rules)!r})")
        users = [n for n, d in self._replica.flag_definitions().items() if key in _refs(d)]
        users += [f"rule {n}" for n, r in rules.items() if n != key and key in rule_refs(r)]
        if users:
            raise ValueError(f"rule {key!r} is referred to ($ref) by {sorted(users)!r}")
        definitions = self._replica.definitions
        grouped = [n for n, c in self._replica.checks.items() if key in c.groups]
        grouped = sorted(n for n in grouped if n not in definitions)  # whose group decides
        if grouped:
            raise ValueError(
                f"rule {key!r} is the group of {grouped!r} (a segment): "
                "remove it from those flags first (deactivate_group)"
            )
        self._pipeline.write({RULES_ENTITY: {RULE + key: None}}, "remove_rule")

    def rules(self) -> dict[str, JSON]:
        """Every named rule, name -> JsonLogic (copies)."""
        return {name: _copy(rule) for name, rule in sorted(self._replica.rules.items())}

    def rule_history(self, limit: int | None = None) -> list[HistoryEvent]:
        """The recorded changes of the named rules, newest first (as ``history()`` for a flag;
        their ``flag`` is the reserved name of the rules' entity)."""
        if limit is not None and (
            isinstance(limit, bool) or not isinstance(limit, int) or limit < 0
        ):
            raise ValueError(f"limit must be an int >= 0 or None, got {limit!r}")
        events = self._replica.events(RULES_ENTITY)[:limit]
        from .._core.history_event import HistoryEvent  # here: a dataclass (see lazy.py)

        return [HistoryEvent.from_register(RULES_ENTITY, r.ts, r.value) for _, r in events]

    # Evaluation --------------------------------------------------------------------------------

    def evaluate(
        self, name: FlagName, context: Mapping[str, Any] | object | None = None
    ) -> Resolution:
        """The flag's answer in flagd's terms: value, variant, reason, error code and message.

        ``context`` is a mapping (``targetingKey`` and attributes), a user object (its id, read
        with ``id_user_by``, as ``targetingKey``, and its attributes), a user id, or None.
        Never raises for a flag: an unknown one answers reason ERROR, error code
        FLAG_NOT_FOUND. An on/off flag answers True or False with variant ``"on"`` or
        ``"off"``: STATIC when on for everybody (or forced by ``override()``), DISABLED when
        nothing turns it on (as the OpenFeature provider says), else the reason of
        :meth:`explain` in flagd's words (TARGETING_MATCH, SPLIT, DEFAULT). A flag with a
        definition answers as flagd does (STATIC, TARGETING_MATCH, DEFAULT, DISABLED, ERROR).

        Every answer is of one version of the flag, a state it had at some moment of the call:
        a change made meanwhile (by another thread, a replicated write, or an ``id_user_by``,
        context or predicate of the call itself) gives the answer of the version before it or
        after it, never a mix of the two (such as DEFAULT where the flag said DISABLED before
        and TARGETING_MATCH after), and never an error for a flag deleted meanwhile.
        """
        checks = self._replica.checks
        # A known flag's name was checked when it was written: checking it again on every call
        # would cost more than the answer (the name rule reads every character).
        check = checks.get(name) if type(name) is str else None
        # (No cast(): typing is not loaded at run time. A known name is an exact str.)
        flag: str = name if check is not None else flag_name(name)  # type: ignore[assignment]
        forced = self._overrides.answers.get(flag)
        if forced is not None:
            return Resolution(forced, _ON_OFF[forced], "STATIC", None, None)
        if check is None:
            check = checks.get(flag)
            if check is None:
                message = f"flag {flag!r} not found"
                return Resolution(None, None, "ERROR", "FLAG_NOT_FOUND", message)
        # The flag's one read: the answer is of the version this check is of, whatever changes
        # while the context is read or a predicate runs (docs/targeting.md, "evaluate()").
        if type(check) is DefinedCheck:
            resolution = check.compiled.resolve(flag, self._replica.context_of(context))
            if resolution.reason == "ERROR":
                self._replica.on_rule_error()
            return resolution
        settled = check.settled
        if settled is not None:
            # The same answer for every context, as the OpenFeature provider says it.
            return _STATIC_ON if settled else _DISABLED_OFF
        # A mapping context is read as the OpenFeature provider (and so OFREP) reads it: the
        # targetingKey is the user id, the groups (predicates and named rules) read the
        # attributes, and without a key they are asked all the same (explain() does this).
        uid, subject = self._subject(context)
        active, reason = self._decision(check, uid, subject)[:2]
        return Resolution(active, _ON_OFF[active], _REASONS.get(reason, "DEFAULT"), None, None)

    def _evaluate_version(
        self, flag: str, compiled: CompiledFlag, context: Mapping[str, Any]
    ) -> Resolution:
        """:meth:`evaluate` of a flag with a definition, by ``compiled``: the definition of
        one version of the flag (the OpenFeature provider's view's, whose metadata it answers
        with), not whatever version the replica holds when the call reads it."""
        forced = self._overrides.forced(flag)
        if forced is not None:
            return Resolution(forced, _ON_OFF[forced], "STATIC", None, None)
        # (evaluate's own steps, not a call from it: evaluate is the CLI's, and the one-flag
        # path of an application's own remote evaluation.)
        resolution = compiled.resolve(flag, self._replica.context_of(context))
        if resolution.reason == "ERROR":
            self._replica.on_rule_error()
        return resolution

    # flagd files -------------------------------------------------------------------------------

    def load_flagd(self, path_or_document: str | os.PathLike[str] | Mapping[str, Any]) -> list[str]:
        """Load a flagd flag-definition document: a path to the file, its JSON text (a str
        that starts with ``{``), or the parsed mapping. Each flag's definition replaces what it
        had (its metadata, over the document's top-level metadata, becomes its data); the
        ``$evaluators`` become named rules (others stay). Everything is checked before
        anything is written, and it is one write. Returns the names of the flags loaded."""
        document = _engine.parse_flagd(_document(path_or_document))
        changes: dict[str, dict[str, Any]] = {}
        for raw_name, definition in document.flags.items():
            flag = flag_name(raw_name, f"flag name $.flags[{raw_name!r}]")
            checked = _checked_definition(
                definition.variants,
                default_variant=definition.default_variant,
                targeting=definition.targeting,
                enabled=definition.enabled,
                # flagd's flags inherit the document's metadata; their own keys win.
                metadata={**document.metadata, **definition.metadata},
                targeting_path=f"$.flags[{flag!r}].targeting",
            )
            changes[flag] = definition_changes(checked, replace_data=True)
        rules = {
            member_name(n, f"evaluator name $['$evaluators'][{n!r}]"): rule_argument(
                r, f"$['$evaluators'][{n!r}]", f"$['$evaluators'][{n!r}]"
            )
            for n, r in document.evaluators.items()
        }
        if rules:
            changes[RULES_ENTITY] = {RULE + n: r for n, r in rules.items()}
        if changes:
            self._pipeline.write(changes, "load_flagd")
        return sorted(document.flags)

    def export_flagd(self) -> dict[str, Any]:
        """Every flag with a definition and every named rule as flagd's flag-definition JSON
        (what :meth:`load_flagd` reads back to the same definitions)."""
        return _engine.to_flagd(self._replica.flag_definitions(), self.rules())


def _checked_definition(
    variants: object,
    *,
    default_variant: object,
    targeting: object,
    enabled: object,
    metadata: object,
    targeting_path: str,
) -> FlagDefinition:
    checked = variants_argument(variants)
    check_default_variant(default_variant, checked, "default_variant")
    rule = None if targeting is None else rule_argument(targeting, "targeting", targeting_path)
    if not isinstance(enabled, bool):
        raise TypeError(f"enabled must be a bool, got {enabled!r}")
    data = {} if metadata is None else flagd_metadata(metadata)
    return _engine.FlagDefinition(checked, default_variant, rule, enabled, data)  # type: ignore[arg-type]


def _document(source: object) -> Mapping[str, Any] | str | bytes:
    """A flagd document as the engine parses it: a mapping, JSON text, or a file's text."""
    if isinstance(source, Mapping | bytes):
        return source
    if isinstance(source, str) and source.lstrip().startswith("{"):
        return source
    if isinstance(source, str | os.PathLike):
        # open(), not pathlib: pathlib loads urllib.parse and ipaddress at import.
        path = os.fspath(source)
        with open(path, encoding="utf-8") as file:
            return text(file.read(), f"the flagd file {path!r}")
    raise TypeError(f"path_or_document must be a path, JSON text or a mapping, got {source!r:.200}")


def _refs(definition: FlagDefinition) -> set[str]:
    return rule_refs(definition.targeting) if definition.targeting is not None else set()


def _copy(value: JSON) -> JSON:
    if isinstance(value, dict):
        return {k: _copy(v) for k, v in value.items()}
    if isinstance(value, list):
        return [_copy(v) for v in value]
    return value
