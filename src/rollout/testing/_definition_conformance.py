"""The part of :class:`rollout.testing.StoreConformance` about flag definitions and named rules.

A definition (variants, default variant, targeting rule, state) is registers hidden by the
``definition_reset`` watermark; named rules are ``rule:<name>`` registers of the reserved rules
entity. A store keeps them exactly as every replica does: key by key (last writer wins per
variant), hidden by their own watermark only, and the rules entity like any flag.
"""

from __future__ import annotations

from .._core.clock import Timestamp
from .._core.keys import (
    DATA,
    DEFAULT_VARIANT,
    DEFINITION_RESET,
    DISABLED,
    EXISTS,
    PERCENTAGE,
    RESET,
    RULE,
    RULES_ENTITY,
    TARGETING_RULE,
    USER,
    VARIANT,
    history_key,
)
from .._core.state import Delta, FlagState, Register
from ..stores import Store
from ._round_trip import assert_reloads_exactly

__all__ = ["DefinitionConformance"]


def _reg(wall: int, value: object, node: int = 7) -> Register:
    return Register(Timestamp(wall, 0, node), value)


_RULE = {"in": [{"var": "plan"}, ["pro", "enterprise"]]}
_OTHER_RULE = {"==": [{"var": "country"}, "FR"]}
_TARGETING = {"if": [{"$ref": "pro"}, "big", "small"]}


def _view(registers: dict[str, Register]) -> tuple[object, ...]:
    """What a replica shows of these registers: a store may keep hidden ones, never show them."""
    state = FlagState()
    state.merge(registers)
    return (
        state.variants,
        state.default_variant,
        state.targeting,
        state.disabled,
        state.rules,
        state.users,
        state.percentage,
        state.data,
    )


class DefinitionConformance:
    """Mixed into StoreConformance; ``make_store`` and ``reopen`` come from there."""

    def make_store(self) -> Store:
        raise NotImplementedError

    def reopen(self, store: Store) -> Store:
        return store

    def test_definitions_and_rules_load_back_exactly(self) -> None:
        store = self.make_store()
        delta: Delta = {
            "layout": {
                EXISTS: _reg(10, True),
                DEFINITION_RESET: _reg(10, None),
                VARIANT + "big": _reg(10, {"columns": 3, "tags": ["a", 1.5, None]}),
                VARIANT + "small": _reg(10, {}),
                VARIANT + "gone": _reg(11, None),
                DEFAULT_VARIANT: _reg(10, "small"),
                TARGETING_RULE: _reg(12, _TARGETING),
                DISABLED: _reg(13, False),
                DATA + "owner": _reg(10, "web"),
            },
            "plain": {EXISTS: _reg(10, True), DEFAULT_VARIANT: _reg(10, None)},
            RULES_ENTITY: {
                RULE + "pro": _reg(14, _RULE),
                RULE + "removed": _reg(15, None),
                history_key(Timestamp(14, 0, 7)): _reg(14, {"action": "define_rule"}),
            },
        }
        try:
            assert_reloads_exactly(store, self.reopen, delta)
        finally:
            store.close()

    def test_definition_reset_hides_only_older_definition_registers(self) -> None:
        store = self.make_store()
        try:
            old = {
                VARIANT + "a": _reg(10, True),
                DEFAULT_VARIANT: _reg(10, "a"),
                TARGETING_RULE: _reg(10, {"if": [{"var": "x"}, "a", None]}),
                DISABLED: _reg(10, True),
                USER + "42": _reg(10, True),
                PERCENTAGE: _reg(10, 20.0),
                DATA + "k": _reg(10, 1),
            }
            store.save({"f": {EXISTS: _reg(10, True), **old}})
            # Replaced by a new definition: its registers share the watermark's timestamp.
            new = {DEFINITION_RESET: _reg(20, None), VARIANT + "b": _reg(20, False)}
            store.save({"f": {**new, DEFAULT_VARIANT: _reg(20, "b")}})
            store.save({"f": {VARIANT + "late": _reg(15, True)}})  # older than the watermark
            loaded = store.load()["f"]
            assert _view(loaded) == (
                {"b": False},
                "b",
                None,
                False,
                {},
                {"42"},  # targeting and data are not the definition's
                20.0,
                {"k": 1},
            )
            assert loaded[VARIANT + "b"] == _reg(20, False)
            assert loaded[DEFINITION_RESET] == _reg(20, None)
            # `reset` (deactivate) hides users, never the definition.
            store.save({"f": {RESET: _reg(30, None)}})
            assert _view(store.load()["f"])[:2] == ({"b": False}, "b")
        finally:
            store.close()

    def test_variants_and_rules_merge_each_on_its_own(self) -> None:
        store = self.make_store()
        other = self.reopen(store)
        try:
            # Two writers change two variants (and two rules) at once: both changes are kept.
            store.save({"f": {VARIANT + "a": _reg(10, "one", node=1)}})
            other.save({"f": {VARIANT + "b": _reg(10, "two", node=2)}})
            store.save({RULES_ENTITY: {RULE + "x": _reg(10, _RULE, node=1)}})
            other.save({RULES_ENTITY: {RULE + "y": _reg(10, _OTHER_RULE, node=2)}})
            # An older value of a variant never replaces a newer one.
            other.save({"f": {VARIANT + "a": _reg(5, "stale", node=2)}})
            for handle in (store, other):
                loaded = handle.load()
                assert _view(loaded["f"])[0] == {"a": "one", "b": "two"}
                assert _view(loaded[RULES_ENTITY])[4] == {"x": _RULE, "y": _OTHER_RULE}
        finally:
            store.close()
            if other is not store:
                other.close()
