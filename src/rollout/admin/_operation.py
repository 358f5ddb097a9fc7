"""One operation of the JSON API (a row of the table in rollout.admin._api) and one request's
checked input. Kept apart from the table so that groups of operations can live in modules of
their own (rollout.admin._api_targeting) and still be rows of the one table."""

from __future__ import annotations

from collections.abc import Awaitable, Callable
from dataclasses import dataclass
from typing import Any, NamedTuple

from ._api_fields import Field, Param

__all__ = ["PREFIX", "Call", "Handler", "Operation"]

PREFIX = "/api/v1"


class Call(NamedTuple):
    """One request's checked input: ``values`` holds its parameters and body fields by name.

    A named tuple, immutable as a frozen dataclass is, and made in a fifth of its time: every
    API request makes one."""

    name: str
    values: dict[str, Any]
    actor: str | None
    base_url: str  #: where the API is: /api/v1, under the prefix the app is mounted at


#: A handler: the Api (rollout.admin._api, which imports this module: Any keeps the two
#: acyclic) and the call, to the answer's JSON.
Handler = Callable[[Any, Call], Awaitable[Any]]


@dataclass(frozen=True)
class Operation:
    method: str
    path: str  # under PREFIX
    operation_id: str
    summary: str
    handler: Handler
    response: str  # a schema name in the document's components
    params: tuple[Param, ...] = ()
    body: tuple[Field, ...] = ()
    #: What a flag that does not exist gets: ``ok`` (an answer: off, no events), ``create``
    #: (a write creates it), ``not_found`` (404, nothing written: a removal's UnknownFlagError)
    #: or ``no_history`` (404 unless it has history: a deleted flag's history is still read).
    unknown_flag: str = "ok"
    #: False: the body may be left out (no Content-Type, no content), meaning ``{}``.
    body_required: bool = True
    #: A POST that changes nothing (its body only carries input, as an evaluation's context):
    #: no reason is asked for, and no write can fail with 503 or 504.
    read_only: bool = False

    @property
    def writes(self) -> bool:
        return self.method != "GET" and not self.read_only
