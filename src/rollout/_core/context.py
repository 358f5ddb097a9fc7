"""The evaluation context of a rule: what a JsonLogic rule reads for one check.

A rule reads a flat mapping, flagd's: ``targetingKey`` plus attributes (``{"var": "plan"}``).
``flags.evaluate``, ``flags.active`` on a flag with a definition, and a named rule used as a
group all take what the rest of the API takes for a user, so each is turned into that mapping
in one way, here:

* None: an empty context;
* a mapping: itself (a copy), its ``targetingKey`` included if it has one;
* a str or int id: ``{"targetingKey": id}`` (``42`` is ``"42"``, as everywhere);
* any other object: its ``attributes`` when that is a mapping (an OpenFeature context's user),
  else its public instance attributes (``vars()``, or the slots it fills), with
  ``targetingKey`` its id as ``id_user_by`` reads it.
"""

from __future__ import annotations

from collections.abc import Callable, Mapping
from typing import Any

__all__ = ["TARGETING_KEY", "evaluation_context"]

TARGETING_KEY = "targetingKey"


def evaluation_context(user: object, id_of: Callable[[Any], object]) -> dict[str, Any]:
    """The context a rule sees for ``user`` (see the module's docstring)."""
    if user is None:
        return {}
    if isinstance(user, Mapping):
        return dict(user)
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
