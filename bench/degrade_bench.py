"""What ``flags.degrade()`` adds to a call, and what ``flags.override()`` does to checks.

Degrade is meant to wrap every call of a feature, so its cost is shown against the same call
without it, all in one run:

* ``work()``: the bare call (a function that does nothing: the worst case for a ratio);
* ``try: work() except Exception: ...``: the bare call under the try/except that handling a
  failure needs anyway;
* ``with flags.degrade("recs"): work()``: as written at a call site, looking the tracker up by
  name and arguments on every call;
* ``with tracker: work()``: the tracker kept in a variable;
* ``decorated()``: ``work`` decorated with ``@flags.degrade("recs")``.

The same again for a call that raises (caught around the whole statement). The window never
reaches its threshold here: ``minimum`` is out of reach, so every call is counted and none
switches the flag off.

Overrides: ``flags.active("on")`` with no override in place, while another flag is overridden,
and for the overridden flag itself. Run alone: ``python -m bench.degrade_bench``.
"""

from __future__ import annotations

import sys

from rollout import Rollout

from ._timing import REPEAT, ns_per_call
from .report import Table

__all__ = ["tables"]

NEVER = 10**12  # a minimum no run reaches: the flag stays on, every call is counted


class DownError(Exception):
    pass


def work() -> None:
    pass


def fail() -> None:
    raise DownError


def _namespace(flags: Rollout) -> dict[str, object]:
    tracker = flags.degrade("recs", minimum=NEVER)
    return {
        "flags": flags,
        "tracker": tracker,
        "work": work,
        "fail": fail,
        "DownError": DownError,
        "NEVER": NEVER,
        "decorated": tracker(work),
        "decorated_fail": tracker(fail),
    }


_SUCCESS = {
    "bare call": "work()",
    "bare try/except": "try:\n    work()\nexcept Exception:\n    pass",
    'with flags.degrade("recs", minimum=N)': (
        'with flags.degrade("recs", minimum=NEVER):\n    work()'
    ),
    "with tracker (kept in a variable)": "with tracker:\n    work()",
    "@flags.degrade(...) decorated": "decorated()",
}

_FAILURE = {
    "bare call (raises)": "try:\n    fail()\nexcept DownError:\n    pass",
    'with flags.degrade("recs", minimum=N)': (
        'try:\n    with flags.degrade("recs", minimum=NEVER):\n        fail()\nexcept DownError:\n'
        "    pass"
    ),
    "with tracker (kept in a variable)": (
        "try:\n    with tracker:\n        fail()\nexcept DownError:\n    pass"
    ),
    "@flags.degrade(...) decorated": "try:\n    decorated_fail()\nexcept DownError:\n    pass",
}

_OVERRIDE = {
    'flags.active("on"), no override': 'flags.active("on")',
    'flags.active("on") while "other" is overridden': 'flags.active("on")',
    'flags.active("other"), overridden': 'flags.active("other")',
}


def _say(progress: bool, what: str) -> None:
    if progress:
        print(f"  timing degrade: {what}", file=sys.stderr, flush=True)


def _x(value: float) -> str:
    return f"{value:.1f}x" if value >= 10 else f"{value:.2f}x"


def _degrade_table(
    title: str, times: dict[str, float], base: str, guarded: str | None, notes: tuple[str, ...]
) -> Table:
    rows = []
    for label, ns in times.items():
        rows.append(
            [
                label,
                f"{ns:,.0f}",
                f"{ns - times[base]:+,.0f}",
                _x(ns / times[base]),
                "" if guarded is None else _x(ns / times[guarded]),
            ]
        )
    headers = ["call", "ns/call", "added ns", "x bare call", "x bare try/except"]
    if guarded is None:
        headers = headers[:-1]
        rows = [row[:-1] for row in rows]
    return Table(title, headers, rows, notes)


def tables(progress: bool = True) -> list[Table]:
    with Rollout() as flags:
        flags.activate("recs")
        flags.activate("on")
        namespace = _namespace(flags)
        success: dict[str, float] = {}
        for label, stmt in _SUCCESS.items():
            _say(progress, label)
            success[label] = ns_per_call(stmt, namespace)
        failure: dict[str, float] = {}
        for label, stmt in _FAILURE.items():
            _say(progress, f"{label}, failing")
            failure[label] = ns_per_call(stmt, namespace)
        if not flags.active("recs"):
            raise RuntimeError("the benchmark's flag was switched off: its numbers are void")
        override: dict[str, float] = {}
        labels = iter(_OVERRIDE.items())
        label, stmt = next(labels)
        _say(progress, label)
        override[label] = ns_per_call(stmt, namespace)
        with flags.override("other", True):
            for label, stmt in labels:
                _say(progress, label)
                override[label] = ns_per_call(stmt, namespace)
        if "feature_states" in vars(flags):
            raise RuntimeError("the override was left installed")
    call_notes = (
        "A call of a function that does nothing, so the ratios are the worst case: against a "
        "real call to another service, the added nanoseconds are what counts.",
        'flags.degrade("recs", minimum=N) finds the tracker by its arguments on each call; '
        "the tracker kept in a variable skips that. Each counted call takes one lock.",
        f"Best of {REPEAT} repeats of about 0.2 s each, all in one run.",
    )
    fail_notes = (
        "The same calls raising an exception that counts as a failure, caught around the whole "
        "statement; the baseline is the bare call raising and caught the same way.",
    )
    override_notes = (
        "flags.override() swaps flags.active for a wrapper only while an override is in place; "
        "with none left, the check is the original function again (first row).",
    )
    return [
        _degrade_table(
            "Degrade: a call that works",
            success,
            "bare call",
            "bare try/except",
            call_notes,
        ),
        _degrade_table(
            "Degrade: a call that fails",
            failure,
            "bare call (raises)",
            None,
            fail_notes,
        ),
        Table(
            "Override: checks while a flag is overridden",
            ["check", "ns/check", "x no override"],
            [
                [label, f"{ns:,.0f}", _x(ns / next(iter(override.values())))]
                for label, ns in override.items()
            ],
            override_notes,
        ),
    ]


if __name__ == "__main__":
    for table in tables():
        print(f"\n{table.text()}")
