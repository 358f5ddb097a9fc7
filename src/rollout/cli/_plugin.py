"""The Monitoring Plugins conventions ``rollout check-on`` follows: ranges, perfdata, output.

From the Monitoring Plugins development guidelines (https://www.monitoring-plugins.org/doc/
guidelines.html), which Nagios, Icinga, Naemon and Shinken read:

* one line, ``SERVICE STATUS: text | perfdata``; the status is also the exit status (0 OK,
  1 WARNING, 2 CRITICAL, 3 UNKNOWN);
* perfdata is ``'label'=value[UOM];[warn];[crit];[min];[max]`` separated by spaces; a label is in
  single quotes when it holds anything but letters, digits and ``_``, a quote inside is written
  ``''``, and ``=`` cannot appear in it (nor ``|``, which ends the text), so both become ``_``;
* a threshold is a range ``[@]start:end``: ``10`` means 0 to 10, ``10:`` 10 or more, ``~:10``
  10 or less, ``10:20`` from 10 to 20; the value alerts when it is outside the range, or inside
  it with a leading ``@``.
"""

from __future__ import annotations

import math
import re
from dataclasses import dataclass

__all__ = ["CRITICAL", "OK", "STATUS", "UNKNOWN", "WARNING", "Range", "label", "text"]

OK, WARNING, CRITICAL, UNKNOWN = 0, 1, 2, 3
STATUS = {OK: "OK", WARNING: "WARNING", CRITICAL: "CRITICAL", UNKNOWN: "UNKNOWN"}

_NUMBER = r"[-+]?(?:\d+(?:\.\d*)?|\.\d+)"
_RANGE = re.compile(rf"(?P<inside>@)?(?:(?P<start>~|{_NUMBER})?:)?(?P<end>{_NUMBER})?")
_PLAIN_LABEL = re.compile(r"[A-Za-z0-9_]+")


@dataclass(frozen=True)
class Range:
    """A threshold range, as written (``spec``) and as numbers."""

    spec: str
    start: float
    end: float
    inside: bool  # ``@``: alert inside the range rather than outside

    @classmethod
    def parse(cls, spec: str) -> Range:
        """``10``, ``10:``, ``~:10``, ``10:20``, ``@10:20``; ValueError naming ``spec`` else."""
        match = _RANGE.fullmatch(spec.strip())
        if not spec.strip() or match is None or (match["start"] is None and match["end"] is None):
            raise ValueError(f"not a range (such as 90:, 10, ~:10, 10:20, @10:20): {spec!r}")
        start = match["start"]
        lower = -math.inf if start == "~" else float(start) if start is not None else 0.0
        upper = float(match["end"]) if match["end"] is not None else math.inf
        if lower > upper:
            raise ValueError(f"range {spec!r} starts after it ends")
        return cls(spec.strip(), lower, upper, bool(match["inside"]))

    def alerts(self, value: float) -> bool:
        """Whether ``value`` is outside the range (inside it, for ``@``)."""
        within = self.start <= value <= self.end
        return within if self.inside else not within


def label(name: str) -> str:
    """A perfdata label for ``name`` that no character of the name can break."""
    if _PLAIN_LABEL.fullmatch(name):
        return name
    safe = name.replace("|", "_").replace("=", "_").replace("'", "''")
    return f"'{safe}'"


def text(value: object) -> str:
    """``value`` for the text part: one line, and no ``|`` (it would start the perfdata)."""
    return " ".join(str(value).replace("|", "_").split())
