"""What group predicates receive for an OpenFeature check, and the targeting key as a user id."""

from __future__ import annotations

from collections.abc import Callable, Mapping
from types import MappingProxyType
from typing import TYPE_CHECKING

from openfeature.evaluation_context import EvaluationContext, EvaluationContextAttribute
from openfeature.exception import GeneralError, InvalidContextError

__all__ = [
    "ContextUser",
    "attribute_dict",
    "context_user",
    "context_user_and_key",
    "fill_context_user",
    "targeting_key",
    "unreadable_context",
    "user_and_id",
]


class ContextUser:
    """What a group predicate receives when the check comes through OpenFeature.

    ``id`` and ``targeting_key`` are the context's targeting key (None for a context without
    one: its groups are still asked; rules about ids cannot apply), ``attributes`` its
    attributes (read-only), ``context`` the :class:`EvaluationContext` itself. Each attribute
    is also an attribute of the object (``user.plan`` is ``attributes["plan"]``;
    AttributeError when absent, as for any object), so a predicate written for the application's
    user objects, such as ``lambda user: user.is_admin``, works for contexts that carry the same
    names. (Those four names are the object's own, whatever the context's attributes say.)
    """

    # The four names of its own are slots (set and read faster than dict entries, and never
    # shadowed by an attribute of the context); a copy of the context's attributes is its
    # __dict__. No __getattr__ (for a friendlier message on a missing name): a class with one
    # has every attribute read take the slow generic path, where a predicate's `user.plan` is
    # otherwise a specialised read: a third of the cost of three group predicates.
    __slots__ = ("__dict__", "context", "id", "targeting_key")

    id: str | None
    targeting_key: str | None
    context: EvaluationContext

    def __init__(self, context: EvaluationContext) -> None:
        fill_context_user(self, context, targeting_key(context))

    if TYPE_CHECKING:  # for type checkers only: at run time a missing name is AttributeError

        def __getattr__(self, name: str) -> EvaluationContextAttribute: ...

    @property
    def attributes(self) -> Mapping[str, EvaluationContextAttribute]:
        # Built when read (predicates rarely read it: they read the attributes themselves).
        return MappingProxyType(self.context.attributes)

    def __repr__(self) -> str:
        attributes = dict(self.attributes)
        return f"ContextUser(targeting_key={self.targeting_key!r}, attributes={attributes!r})"


def context_user(context: EvaluationContext, key: str | None) -> ContextUser:
    """``ContextUser(context)`` for a context whose targeting key (``targeting_key(context)``)
    is already known."""
    user: ContextUser = _new(ContextUser)
    fill_context_user(user, context, key)
    return user


def fill_context_user(user: ContextUser, context: EvaluationContext, key: str | None) -> None:
    """Fill a new ContextUser (``object.__new__(ContextUser)``) as ``__init__`` does, the
    targeting key given: the provider builds one on every targeted check of a flag with
    groups, and a call of the class costs a third more."""
    user.id = user.targeting_key = key
    user.context = context
    user.__dict__ = attribute_dict(context.attributes)


def attribute_dict(attributes: Mapping[str, EvaluationContextAttribute]) -> dict[str, object]:
    """A ContextUser's ``__dict__``: a copy of the context's attributes, so a predicate reads
    ``user.plan`` at the speed of a plain attribute (one named ``attributes`` is hidden by the
    property, as it should be), and one that sets an attribute on the user leaves the context
    alone. A dict's own copy costs a quarter less than filling a new one."""
    return attributes.copy() if type(attributes) is dict else dict(attributes)


_new = object.__new__


def unreadable_context(exc: Exception) -> GeneralError:
    """The error of a context whose attributes cannot be read (they are no mapping)."""
    return GeneralError(f"cannot read the evaluation context's attributes: {exc!r}")


def context_user_and_key(context: EvaluationContext, key: str) -> tuple[ContextUser, str]:
    """The ContextUser of a context with a targeting key, and its id as a check reads it (the
    key, for a Rollout reading ``user.id``). GeneralError for attributes that are no mapping."""
    try:
        return context_user(context, key), key
    except Exception as exc:
        raise unreadable_context(exc) from exc


def user_and_id(
    user: object, flag_key: str, check_id: Callable[[object], str]
) -> tuple[object, str]:
    """An object of ``user_from_context`` and its id as the check reads it (``check_id``):
    INVALID_CONTEXT for an object without a usable id."""
    try:
        return user, check_id(user)
    except (TypeError, ValueError) as exc:
        raise InvalidContextError(f"cannot check {flag_key!r} for {user!r}: {exc}") from exc


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
