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
from typing import TYPE_CHECKING, Any

from .._core.validate import FlagName

if TYPE_CHECKING:
    from .._core.targeting import JSON, Resolution

__all__ = ["DefinitionsAPI"]


class DefinitionsAPI:
    """Variants, targeting rules and named rules: the flagd model, as methods of ``Rollout``."""

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

        ``variants`` maps variant names to JSON values (all of one kind, as flagd's typed
        flags: booleans, strings, numbers or objects); ``default_variant`` names one of them,
        or is None (the caller's default is answered when no rule decides). ``targeting`` is a
        JsonLogic rule choosing a variant by name (flagd's operators and ``{"$ref": rule}``);
        ``enabled=False`` is flagd's state DISABLED. ``metadata`` becomes the flag's data.
        ``reason`` is recorded in history (as ``with_context(reason=...)`` would).
        Raises ``RuleError`` (a ``ValueError`` with the JSON path) or ``ValueError`` /
        ``TypeError`` naming the argument and the value; nothing is written then.
        """
        raise NotImplementedError

    def set_variant(self, name: FlagName, variant: str, value: JSON) -> None:
        """Add the variant ``variant`` or change its value; other variants stay."""
        raise NotImplementedError

    def remove_variant(self, name: FlagName, variant: str) -> None:
        """Remove one variant. ``UnknownFlagError`` for an unknown flag, ``ValueError`` for a
        variant it does not have or for the default variant (change that first)."""
        raise NotImplementedError

    def set_default_variant(self, name: FlagName, variant: str | None) -> None:
        """The variant answered when no rule decides; None: the caller's default is."""
        raise NotImplementedError

    def set_targeting(self, name: FlagName, rule: JSON | None) -> None:
        """The flag's JsonLogic targeting rule (checked first); None removes targeting."""
        raise NotImplementedError

    def enable_flag(self, name: FlagName) -> None:
        """flagd's state ENABLED: the definition answers again."""
        raise NotImplementedError

    def disable_flag(self, name: FlagName) -> None:
        """flagd's state DISABLED: evaluations answer the caller's default, reason DISABLED."""
        raise NotImplementedError

    def define_rule(self, rule_name: str, rule: JSON) -> None:
        """A named rule: flagd's shared evaluator (``{"$ref": rule_name}`` in targeting) and a
        group ("segment") of on/off flags whose group has no predicate in code."""
        raise NotImplementedError

    def remove_rule(self, rule_name: str) -> None:
        """Forget a named rule. ``ValueError`` when there is no rule of that name."""
        raise NotImplementedError

    def rules(self) -> dict[str, JSON]:
        """Every named rule, name -> JsonLogic (copies)."""
        raise NotImplementedError

    def evaluate(
        self, name: FlagName, context: Mapping[str, Any] | object | None = None
    ) -> Resolution:
        """The flag's answer in flagd's terms: value, variant, reason, error code and message.

        ``context`` is a mapping (``targetingKey`` and attributes), a user object (its id, read
        with ``id_user_by``, as ``targetingKey``, and its attributes), or None. Never raises for
        a flag: an unknown one answers reason ERROR, error code FLAG_NOT_FOUND; an on/off flag
        answers True/False with variant "on"/"off".
        """
        raise NotImplementedError

    def load_flagd(self, path_or_document: str | os.PathLike[str] | Mapping[str, Any]) -> list[str]:
        """Load a flagd flag-definition file (a path, JSON text, or the parsed mapping): each
        flag's definition replaces what it had, and its ``$evaluators`` become named rules.
        Everything is checked before anything is written. Returns the names of the flags."""
        raise NotImplementedError

    def export_flagd(self) -> dict[str, Any]:
        """Every flag with a definition and every named rule as flagd's flag-definition JSON
        (what :meth:`load_flagd` reads back to the same definitions)."""
        raise NotImplementedError
