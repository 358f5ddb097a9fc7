"""The evaluation context of a rule: what a JsonLogic rule reads for one check.

A rule reads a flat mapping, flagd's: ``targetingKey`` plus attributes (``{"var": "plan"}``).
``flags.evaluate``, ``flags.active`` on a flag with a definition, and a named rule used as a
group all take what the rest of the API takes for a user, so each is turned into that mapping
in one way, here:

* None: an empty context;
* a mapping: itself (read, never changed), its ``targetingKey`` included if it has one;
* a str or int id: ``{"targetingKey": id}`` (``42`` is ``"42"``, as everywhere);
* any other object: its ``attributes`` when that is a mapping (an OpenFeature context's user),
  else its public attributes, properties included, read only when a rule asks for one
  (:class:`UserAttributes`), with ``targetingKey`` its id as ``id_user_by`` reads it.
"""

from __future__ import annotations

from collections.abc import Callable, Iterator, Mapping
from typing import Any

__all__ = ["TARGETING_KEY", "UserAttributes", "evaluation_context"]

TARGETING_KEY = "targetingKey"


def evaluation_context(user: object, id_of: Callable[[Any], object]) -> Mapping[str, Any]:
    """The context a rule sees for ``user`` (see the module's docstring)."""
    kind = type(user)
    if kind is dict or (user is not None and isinstance(user, Mapping)):
        return user  # type: ignore[return-value]  # read, never changed: no copy per check
    if user is None:
        return {}
    if kind is str or (kind is not bool and isinstance(user, int)):
        return {TARGETING_KEY: str(user)}
    attributes = getattr(user, "attributes", None)
    if attributes is not None and isinstance(attributes, Mapping):
        context = dict(attributes)
        ident = _id(user, id_of)
        if ident is not None:
            context[TARGETING_KEY] = ident
        return context
    return UserAttributes(user, id_of)


def _id(user: object, id_of: Callable[[Any], object]) -> str | None:
    try:
        ident = id_of(user)
    except Exception:  # an object without an id: its attributes alone
        return None
    if isinstance(ident, str | int) and not isinstance(ident, bool) and ident != "":
        return str(ident)
    return None


class UserAttributes(Mapping[str, Any]):
    """A user object as a rule's context, read lazily: an attribute is read when a rule asks.

    Copying every attribute of the user on every check would cost more than the rule (and
    miss properties); a rule reads two or three. Names starting with ``_`` and methods are not
    part of the context (a rule must not call code); ``targetingKey`` is the user's id.
    """

    __slots__ = ("_id_of", "_user")

    def __init__(self, user: object, id_of: Callable[[Any], object]) -> None:
        self._user = user
        self._id_of = id_of

    def get(self, name: str, default: Any = None) -> Any:
        # The one reading of a name (what a rule's {"var": name} costs): __getitem__ uses it.
        if name == TARGETING_KEY:
            ident = _id(self._user, self._id_of)
            return default if ident is None else ident
        if type(name) is not str or name[:1] == "_":
            return default
        value = getattr(self._user, name, _ABSENT)
        if value is _ABSENT or callable(value):
            return default
        return value

    def __getitem__(self, name: str) -> Any:
        value = self.get(name, _ABSENT)
        if value is _ABSENT:
            raise KeyError(name)
        return value

    def __contains__(self, name: object) -> bool:
        return isinstance(name, str) and self.get(name, _ABSENT) is not _ABSENT

    def __iter__(self) -> Iterator[str]:
        # What a whole-context read ({"var": ""}, $flagd's copy) sees: the public instance
        # attributes (vars(), or the slots filled) and the id.
        found: dict[str, None] = {}
        for cls in reversed(type(self._user).__mro__):  # slots of every class, the subclass's last
            slots = getattr(cls, "__slots__", ())
            for name in (slots,) if isinstance(slots, str) else slots:
                if isinstance(name, str) and name in self:
                    found[name] = None
        for name in getattr(self._user, "__dict__", {}):
            if name in self:
                found[name] = None
        if TARGETING_KEY in self:
            found[TARGETING_KEY] = None
        return iter(found)

    def __len__(self) -> int:
        return sum(1 for _ in self)

    def __repr__(self) -> str:
        return f"UserAttributes({dict(self)!r})"


_ABSENT = object()
