"""Text the ``rollout`` command shows a person: aligned tables and one-line flag summaries."""

from __future__ import annotations

import json
from collections.abc import Iterable, Sequence

from .._core.feature import Feature
from .._core.ids import user_order
from .._core.rules import on_without_a_user, state

__all__ = [
    "LIST_HEADER",
    "describe",
    "feature_rows",
    "format_table",
    "list_rows",
]


def format_table(header: Sequence[str], rows: Iterable[Sequence[str]]) -> str:
    """Columns padded to their widest cell, two spaces apart; no trailing spaces."""
    table = [list(header), *([_printable(cell) for cell in row] for row in rows)]
    widths = [max(len(row[i]) for row in table) for i in range(len(header))]
    lines = [
        "  ".join(cell.ljust(width) for cell, width in zip(row, widths, strict=True)).rstrip()
        for row in table
    ]
    return "\n".join(lines)


def _printable(cell: str) -> str:
    # User ids may hold newlines or tabs (the library allows any str); one would break the row.
    return cell if cell.isprintable() else repr(cell)


def _count(number: int, noun: str) -> str:
    return f"{number} {noun}" if number == 1 else f"{number} {noun}s"


def describe(feature: Feature) -> str:
    """One line for a write's confirmation, e.g. ``chat: on for 20% of users, 2 users``."""
    excluded = len(feature.excluded_users)
    if on_without_a_user(feature):
        tail = f" except {_count(excluded, 'excluded user')}" if excluded else ""
        return f"{feature.name}: on for everybody{tail}"
    if state(feature) == "off":
        return f"{feature.name}: off"
    parts = []
    if feature.percentage:
        parts.append(f"{feature.percentage:g}% of users")
    if feature.percentage_of_time:
        parts.append(f"{feature.percentage_of_time:g}% of the time")
    if feature.users:
        parts.append(_count(len(feature.users), "user"))
    if feature.groups:
        noun = "group" if len(feature.groups) == 1 else "groups"
        parts.append(f"{noun} {', '.join(sorted(feature.groups))}")
    tail = f"; {_count(excluded, 'user')} excluded" if excluded else ""
    return f"{feature.name}: on for {', '.join(parts)}{tail}"


def list_rows(features: Iterable[Feature]) -> list[list[str]]:
    return [
        [
            feature.name,
            state(feature),
            f"{feature.percentage:g}%",
            f"{feature.percentage_of_time:g}%",
            str(len(feature.users)),
            ", ".join(sorted(feature.groups)),
        ]
        for feature in features
    ]


LIST_HEADER = ["NAME", "STATE", "PERCENTAGE", "OF TIME", "USERS", "GROUPS"]


def _limited(values: list[str], limit: int | None) -> list[str]:
    # `show --limit N`: the first N, then one row that counts the rest.
    if limit is None or len(values) <= limit:
        return values
    return [*values[:limit], f"... and {len(values) - limit:,} more"]


def feature_rows(feature: Feature, limit: int | None = None) -> list[list[str]]:
    """``show``: one field per row; each user, group and data key on a row of its own.

    ``limit`` keeps the first that many users and excluded users (in id order) and counts the
    rest on one row: a flag listing 100,000 users still fits a terminal.
    """
    rows = [
        ["name", feature.name],
        ["state", state(feature)],
        ["percentage", f"{feature.percentage:g}%"],
        ["percentage of time", f"{feature.percentage_of_time:g}%"],
    ]
    rows += _listed("users", _limited(sorted(feature.users, key=user_order), limit))
    rows += _listed(
        "excluded users", _limited(sorted(feature.excluded_users, key=user_order), limit)
    )
    rows += _listed("groups", sorted(feature.groups))
    data = [f"{key} = {json.dumps(value)}" for key, value in sorted(feature.data.items())]
    rows += _listed("data", data)
    if feature.has_definition:  # what decides its answer (`rollout variants` shows it alone)
        variants = [f"{name} = {json.dumps(v)}" for name, v in sorted(feature.variants.items())]
        rows += _listed("variants", variants)
        default = feature.default_variant
        rows.append(["default variant", default if default is not None else "-"])
        targeting = feature.targeting
        rows.append(["targeting", json.dumps(targeting) if targeting is not None else "-"])
        rows.append(["flagd state", "ENABLED" if feature.enabled else "DISABLED"])
    return rows


def _listed(field: str, values: Sequence[str]) -> list[list[str]]:
    # The field name only on the first row, so a long list still reads as one field.
    if not values:
        return [[field, "-"]]
    return [[field if i == 0 else "", value] for i, value in enumerate(values)]
