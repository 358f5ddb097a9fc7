"""Whether many register keys are all members' (listed users, exclusions, groups, or ``exists``),
checked at once over their join: the stores' bulk loads of a big flag (rollout.redis._load,
rollout.postgres._bulk), whose shared ``true``/``false`` registers only such keys may hold.

A regular expression trying each key (a lookahead at every separator) took 358 M instructions
at a million users. Counts do it in C: with each key after a separator, the starts of members
counted (a separator then ``user:``, ``exclude:`` or ``group:``, or ``exists`` whole) add up
to the number of keys exactly when every key is one, provided no bare prefix stands alone.
"""

from __future__ import annotations

from .keys import EXISTS, TARGETING_PREFIXES

__all__ = ["all_members"]


def all_members(joined: str, count: int, separator: str) -> bool:
    """Whether each of the ``count`` keys joined by ``separator`` is a member prefix and at
    least one character, or ``exists``. False when a key holds the separator (the count of
    separators says so): the caller then checks its keys one by one."""
    if count < 1 or joined.count(separator) != count - 1:
        return False
    wrapped = f"{separator}{joined}{separator}"
    if any(f"{separator}{prefix}{separator}" in wrapped for prefix in TARGETING_PREFIXES):
        return False  # a bare prefix: no member after it
    starts = [f"{separator}{prefix}" for prefix in TARGETING_PREFIXES]
    starts.append(f"{separator}{EXISTS}{separator}")
    return sum(map(wrapped.count, starts)) == count
