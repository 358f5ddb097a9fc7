"""The evaluation context of a rule: what a JsonLogic rule reads for one check.

A rule reads a flat mapping, flagd's: ``targetingKey`` plus attributes (``{"var": "plan"}``).
``flags.evaluate``, ``flags.active`` on a flag with a definition, and a named rule used as a
group all take what the rest of the API takes for a user, so each is turned into that mapping
in one way, here:

* None: an empty context;
* a mapping: itself (a copy), its ``targetingKey`` included if it has one (an int as its text);
* a str or int id: ``{"targetingKey": id}`` (``42`` is ``"42"``, as everywhere);
* any other object: its ``attributes`` when that is a mapping (an OpenFeature context's user),
  else its public instance attributes (``vars()``, or the slots it fills), with
  ``targetingKey`` its id as ``id_user_by`` reads it.
"""

from __future__ import annotations

from collections.abc import Callable, Mapping
from typing import Any

__all__ = ["TARGETING_KEY", "MappingUser", "context_key", "evaluation_context"]

TARGETING_KEY = "targetingKey"


def context_key(context: Mapping[str, Any]) -> str | None:
    """A mapping context's ``targetingKey`` as a user id (``42`` is ``"42"``); None when it is
    absent, empty or not a str or int."""
    key = context.get(TARGETING_KEY)
    if type(key) is str:
        return key or None
    if isinstance(key, int) and not isinstance(key, bool):
        return str(key)
    return None


class MappingUser:
    """A mapping context as the user an on/off flag's rules receive, so a context answers an
    on/off flag in process as it does through OpenFeature: ``id`` is its targeting key (None
    without one) for listed users and buckets; its groups read the attributes, a named rule
    through ``attributes`` (this whole mapping) and a predicate in code as attributes of the
    object (``user.plan``), as OpenFeature's ``ContextUser`` gives them."""

    def __init__(self, context: Mapping[str, Any]) -> None:
        self.__dict__.update(context)
        self.id = context_key(context)
        self.attributes = context  # read by evaluation_context, for a named rule

    def __repr__(self) -> str:
        return f"MappingUser({dict(self.attributes)!r})"


def evaluation_context(user: object, id_of: Callable[[Any], object]) -> dict[str, Any]:
    """The context a rule sees for ``user`` (see the module's docstring)."""
    if user is None:
        return {}
    if isinstance(user, Mapping):
        context = dict(user)
        # Checked inline: this runs on every check of a flag with a definition.
        if type(context.get(TARGETING_KEY, "")) is str:
            return context
        return _key_as_text(context)
    kind = type(user)
    if kind is str or (kind is not bool and isinstance(user, int)):
        return {TARGETING_KEY: str(user)}
    context = _attributes(user)
    try:
        ident = id_of(user)
    except Exception:  # an object without an id: its attributes alone
        ident = None
    if isinstance(ident, str | int) and not isinstance(ident, bool) and ident != "":
        context[TARGETING_KEY] = str(ident)
    return _key_as_text(context)


def _key_as_text(context: dict[str, Any]) -> dict[str, Any]:
    # Ids compare as text everywhere (42 is "42"); flagd's rules, fractional first, read the
    # targetingKey as a string only, so an int key is given as its text.
    key = context.get(TARGETING_KEY)
    if type(key) is not str and isinstance(key, int) and not isinstance(key, bool):
        context[TARGETING_KEY] = str(key)
    return context


def _attributes(user: object) -> dict[str, Any]:
    attributes = getattr(user, "attributes", None)
    if isinstance(attributes, Mapping):
        return dict(attributes)
    found: dict[str, Any] = {}
    for cls in reversed(type(user).__mro__):  # slots of every class, the subclass's last
        slots = getattr(cls, "__slots__", ())
        for name in (slots,) if isinstance(slots, str) else slots:
            if isinstance(name, str) and hasattr(user, name):
                found[name] = getattr(user, name)
    found.update(getattr(user, "__dict__", {}))
    return {name: value for name, value in found.items() if not name.startswith("_")}
