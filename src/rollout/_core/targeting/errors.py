"""The one error the targeting engine raises: a rule or a definition refused at write time."""

from __future__ import annotations

TYPE_CHECKING = False
if TYPE_CHECKING:
    from typing import Any, TypeAlias

__all__ = ["JSON", "RuleError"]

# A JSON value as json.loads gives it: dict, list, str, int, float, bool or None.
JSON: TypeAlias = "Any"


class RuleError(ValueError):
    """A rule or a flag definition that cannot be accepted, with the JSON path of the culprit.

    ``path`` is a JSONPath-like address of the offending node, such as ``$.targeting.if[1]`` or
    ``$.flags.checkout.defaultVariant``; the message starts with it.
    """

    def __init__(self, path: str, message: str) -> None:
        super().__init__(f"{path}: {message}")
        self.path = path
        self.message = message
