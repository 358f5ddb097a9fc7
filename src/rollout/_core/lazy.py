"""A module imported by the first attribute read through it: for the parts only some uses need.

``import rollout`` must stay light (issue 15). Explaining a check needs
:mod:`rollout._core.explain`, whose result type is a dataclass, and :mod:`dataclasses` loads
:mod:`inspect` and :mod:`ast` (with dataclasses, nearly a fifth of the import by ``python -X
importtime`` while they loaded eagerly); :mod:`json` is needed by the first data value checked
or register encoded, not by ``Rollout()``. A process that never uses them should not pay for
them. Written where the module's names are used::

    if TYPE_CHECKING:
        from . import explain as _explain  # what the type checker sees
    else:
        _explain = LazyModule("rollout._core.explain")

The first ``_explain.explain_check`` imports the module; every name read is then kept on the
object, so later reads cost an attribute lookup, not an import statement (a local ``from ...
import`` costs about 0.5 µs a call even when the module is loaded). Pure: it imports only the
module it stands for, when asked.
"""

from __future__ import annotations

TYPE_CHECKING = False
if TYPE_CHECKING:
    from collections.abc import Callable, Mapping
    from typing import Any

__all__ = ["LazyModule", "lazy_names"]


def lazy_names(namespace: dict[str, Any], sources: Mapping[str, str]) -> Callable[[str], Any]:
    """A package's module ``__getattr__`` (PEP 562) for the names of ``sources`` (name -> the
    module that defines it): the first read imports that module, then the name is kept as a
    plain attribute of the package (``namespace`` is its ``globals()``)."""

    def read(name: str) -> Any:
        module = sources.get(name)
        if module is None:
            raise AttributeError(f"module {namespace['__name__']!r} has no attribute {name!r}")
        import importlib

        value = getattr(importlib.import_module(module), name)
        namespace[name] = value  # once loaded, a plain attribute
        return value

    return read


class LazyModule:
    """Stands for the module ``name`` until an attribute is read, then imports it."""

    def __init__(self, name: str) -> None:
        self._lazy_name = name

    def __getattr__(self, attribute: str) -> Any:
        # Only called for names not yet kept here: the first read of each.
        import importlib

        value = getattr(importlib.import_module(self._lazy_name), attribute)
        setattr(self, attribute, value)
        return value

    def __repr__(self) -> str:
        return f"<LazyModule {self._lazy_name!r}>"
