"""The library's logger, ``rollout``, with :mod:`logging` imported by the first message.

Importing logging loads traceback and string too: 8% of what ``import rollout`` cost
(``python -X importtime``) when every client module imported it at the top. The client logs only
when something goes wrong (a store error, a predicate that raises), so a process whose flags
never fail never loads it. ``logging.getLogger`` returns the same logger on every call, so
handlers, levels and pytest's ``caplog`` see no difference.
"""

from __future__ import annotations

TYPE_CHECKING = False
if TYPE_CHECKING:
    import logging

__all__ = ["logger"]


def logger() -> logging.Logger:
    """The ``rollout`` logger."""
    import logging

    return logging.getLogger("rollout")
