"""What group predicates receive for an OpenFeature check, and the targeting key as a user id."""

from __future__ import annotations

from collections.abc import Mapping
from types import MappingProxyType

from openfeature.evaluation_context import EvaluationContext, EvaluationContextAttribute
from openfeature.exception import InvalidContextError

__all__ = ["ContextUser", "targeting_key"]


class ContextUser:
    """What a group predicate receives when the check comes through OpenFeature.

    ``id`` and ``targeting_key`` are the context's targeting key (None for a context without
    one: its groups are still asked; rules about ids cannot apply), ``attributes`` its
    attributes (read-only), ``context`` the :class:`EvaluationContext` itself. Each attribute
    is also an attribute of the object (``user.plan`` is ``attributes["plan"]``;
    AttributeError when absent), so a predicate written for the application's user objects, such as
    ``lambda user: user.is_admin``, works for contexts that carry the same names. (Those four
    names are the object's own, whatever the context's attributes say.)
    """

    id: str | None
    targeting_key: str | None
    attributes: Mapping[str, EvaluationContextAttribute]
    context: EvaluationContext

    def __init__(self, context: EvaluationContext) -> None:
        key = targeting_key(context)
        attributes = context.attributes
        # Copied into the instance dict: a predicate reads `user.plan` at the speed of a plain
        # attribute (a __getattr__ lookup would cost a Python call per predicate per check).
        self.__dict__.update(attributes)
        self.id = self.targeting_key = key
        self.attributes = MappingProxyType(attributes)
        self.context = context

    def __getattr__(self, name: str) -> EvaluationContextAttribute:
        # Only reached for a name that is not set: say what the context does have.
        raise AttributeError(
            f"{name!r} is not an attribute of the evaluation context "
            f"(it has {sorted(self.__dict__.get('attributes', ()))!r})"
        )

    def __repr__(self) -> str:
        attributes = dict(self.attributes)
        return f"ContextUser(targeting_key={self.targeting_key!r}, attributes={attributes!r})"


def targeting_key(context: EvaluationContext | None) -> str | None:
    """The context's targeting key as a Rollout user id; None when there is none."""
    if context is None:
        return None
    key: object = context.targeting_key
    if key is None or key == "":
        return None
    if type(key) is str:
        return key
    if isinstance(key, int) and not isinstance(key, bool):  # Rollout ids: 42 is "42"
        return str(key)
    raise InvalidContextError(f"targeting_key must be a str, got {key!r}")
