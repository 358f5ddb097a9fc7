"""A flag's users (or excluded users) a page at a time: ``GET /flags/{name}/users`` and
``GET /flags/{name}/excluded_users``, for lists far too long to send whole.

Ids come in the order ``rollout show`` lists them (numeric ids by value, then the rest as text:
:func:`rollout._core.ids.user_order`). A page ends with an opaque ``next_cursor``: the last id
shown, encoded, so the next page starts after it even when ids were added or removed meanwhile
(an id is never shown twice or skipped unless it changed). A page costs one pass over the ids
(a bounded heap) rather than a sort of them all.
"""

from __future__ import annotations

import heapq
import re
from collections.abc import Mapping
from typing import TYPE_CHECKING, Any, Final

from starlette.concurrency import run_in_threadpool

from .._core import validate as _validate
from .._core.ids import user_order
from ._api_fields import TEXT_PATTERN, Param
from ._errors import ApiError

if TYPE_CHECKING:
    from .._client.rollout import Rollout

__all__ = [
    "CURSOR",
    "PAGE_LIMIT",
    "SEARCH",
    "decode_cursor",
    "encode_cursor",
    "members_answer",
    "page_of",
]

#: Ids per page without ``limit``, and the most one page may hold.
DEFAULT_LIMIT: Final = 100
MAX_LIMIT: Final = 1000
#: The longest search text accepted.
MAX_SEARCH: Final = 1000
#: Marks a cursor as ours (and its format's version): anything else is refused, by name. The
#: rest is the last id shown, its UTF-8 in hex: opaque to clients, and any such text is valid.
_CURSOR_PREFIX: Final = "u1"
_CURSOR_PATTERN: Final = "^u1(?:[0-9a-f]{2})+$"


def encode_cursor(last: str) -> str:
    return _CURSOR_PREFIX + last.encode("utf-8", "surrogateescape").hex()


def decode_cursor(value: str) -> str:
    """The last id of the previous page, or an ApiError naming ``cursor``."""
    if not re.fullmatch(_CURSOR_PATTERN, value):
        raise ApiError(
            "invalid",
            f"cursor must be a next_cursor this API answered, got {value[:80]!r}",
            field="cursor",
        )
    # Any bytes decode (surrogateescape): every cursor the pattern admits is one to go on from.
    return bytes.fromhex(value[len(_CURSOR_PREFIX) :]).decode("utf-8", "surrogateescape")


def _page_limit(value: Any) -> int:
    text = str(value)
    if (
        not (text.isascii() and text.isdigit() and len(text) <= 6)
        or not 1 <= int(text) <= MAX_LIMIT
    ):
        raise ApiError(
            "invalid",
            f"limit must be a whole number from 1 to {MAX_LIMIT}, got {text[:40]!r}",
            field="limit",
        )
    return int(text)


def _search(value: Any) -> str:
    text = str(value)
    if len(text) > MAX_SEARCH or not re.fullmatch(TEXT_PATTERN, text or "x"):
        raise ApiError(
            "invalid",
            f"q must be text without control characters (at most {MAX_SEARCH} characters), "
            f"got {text[:80]!r}",
            field="q",
        )
    try:
        return _validate.text(text, "q") if text else ""
    except ValueError as exc:
        raise ApiError("invalid", str(exc), field="q") from None


CURSOR: Final = Param(
    "cursor",
    "query",
    {"type": "string", "pattern": _CURSOR_PATTERN},
    decode_cursor,
    "Where to go on: the `next_cursor` of the previous page (the first page without it).",
    required=False,
)
PAGE_LIMIT: Final = Param(
    "limit",
    "query",
    {"type": "integer", "minimum": 1, "maximum": MAX_LIMIT},
    _page_limit,
    f"At most this many ids (default {DEFAULT_LIMIT}).",
    required=False,
)
SEARCH: Final = Param(
    "q",
    "query",
    # Empty is allowed (a search box sent empty): every id.
    {"type": "string", "maxLength": MAX_SEARCH, "pattern": f"^$|{TEXT_PATTERN}"},
    _search,
    "Only ids containing this text (ignoring case); every id when empty.",
    required=False,
)


def page_of(
    ids: frozenset[str] | set[str],
    *,
    after: str | None = None,
    q: str = "",
    limit: int = DEFAULT_LIMIT,
) -> tuple[int, list[str], str | None]:
    """``(total, page, next_cursor)``: how many ids match ``q``, the ``limit`` first of them
    after ``after`` in user order, and the cursor of the next page (None: this is the last)."""
    needle = q.casefold()
    matching = [i for i in ids if needle in i.casefold()] if needle else ids
    start = user_order(after) if after is not None else None
    rest = (i for i in matching if start is None or user_order(i) > start)
    page = heapq.nsmallest(limit + 1, rest, key=user_order)
    more = len(page) > limit
    page = page[:limit]
    return len(matching), page, encode_cursor(page[-1]) if more else None


async def members_answer(
    flags: Rollout, name: str, field: str, values: Mapping[str, Any]
) -> dict[str, Any]:
    """The answer of ``GET /flags/{name}/<field>`` (``users`` or ``excluded_users``), for the
    checked query ``values`` (``cursor``, ``limit``, ``q``)."""
    feature = flags.get(name)
    ids = feature.users if field == "users" else feature.excluded_users
    total, page, cursor = await run_in_threadpool(
        page_of,
        ids,
        after=values.get("cursor"),
        q=values.get("q", ""),
        limit=values.get("limit", DEFAULT_LIMIT),
    )
    excluded = feature.excluded_users
    return {
        "flag": name,
        "total": total,
        "users": page,
        # Listed and excluded both: the exclusion wins (the flag is off for them).
        "excluded": [i for i in page if i in excluded],
        "next_cursor": cursor,
    }
