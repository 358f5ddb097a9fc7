"""The evaluation context of a rule: what a JsonLogic rule reads for one check.

A rule reads a flat mapping, flagd's: ``targetingKey`` plus attributes (``{"var": "plan"}``).
``flags.evaluate``, ``flags.active`` on a flag with a definition, and a named rule used as a
group all take what the rest of the API takes for a user, so each is turned into that mapping
in one way, here:

* None: an empty context;
* a mapping: itself (read, never changed), its ``targetingKey`` included if it has one (an
  int as its text);
* a str or int id: ``{"targetingKey": id}`` (``42`` is ``"42"``, as everywhere);
* any other object: its ``attributes`` when that is a mapping (an OpenFeature context's user),
  else its public attributes, properties included, read only when a rule asks for one
  (:class:`UserAttributes`), with ``targetingKey`` its id as ``id_user_by`` reads it.
"""

from __future__ import annotations

from collections.abc import Mapping

TYPE_CHECKING = False
if TYPE_CHECKING:
    from collections.abc import Callable, Iterator
    from typing import Any

__all__ = [
    "TARGETING_KEY",
    "MappingUser",
    "UserAttributes",
    "context_key",
    "context_reader",
    "evaluation_context",
]

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


def context_reader(id_of: Callable[[Any], object]) -> Callable[[object], Mapping[str, Any]]:
    """:func:`evaluation_context` with ``id_of`` bound, and the common case (a dict whose
    ``targetingKey``, if any, is text) answered in the one call a check makes."""

    def read(user: object) -> Mapping[str, Any]:
        if type(user) is dict:
            key = user.get(TARGETING_KEY)
            if key is None or type(key) is str:
                return user
        return evaluation_context(user, id_of)

    return read


def evaluation_context(user: object, id_of: Callable[[Any], object]) -> Mapping[str, Any]:
    """The context a rule sees for ``user`` (see the module's docstring)."""
    kind = type(user)
    if kind is dict or isinstance(user, Mapping):
        mapping: Mapping[str, Any] = user  # type: ignore[assignment]  # (no cast() call per check)
        # Read, never changed: no copy per check (checked inline: this runs on every check of
        # a flag with a definition), unless an int targetingKey must be given as its text.
        key = mapping.get(TARGETING_KEY)
        if key is None or type(key) is str:
            return mapping
        return _key_as_text(dict(mapping))
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


def _key_as_text(context: dict[str, Any]) -> dict[str, Any]:
    # Ids compare as text everywhere (42 is "42"); flagd's rules, fractional first, read the
    # targetingKey as a string only, so an int key is given as its text.
    key = context.get(TARGETING_KEY)
    if type(key) is not str and isinstance(key, int) and not isinstance(key, bool):
        context[TARGETING_KEY] = str(key)
    return context


if TYPE_CHECKING:
    _Attributes = Mapping[str, Any]
else:
    _Attributes = Mapping  # the same class (typing's Any is not loaded at run time)


class UserAttributes(_Attributes):
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
