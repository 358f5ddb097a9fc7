"""Answers read while a thread cycles a flag through its versions: each must be one version's.

Shared by the tests of ``evaluate`` (tests/client/test_evaluate_versions.py) and of the
OpenFeature provider (tests/openfeature/test_versions.py).
"""

from __future__ import annotations

import sys
import threading
from collections.abc import Callable, Sequence

from rollout import Rollout

__all__ = ["answers_while_cycled"]


def answers_while_cycled(
    flags: Rollout,
    cycle: Sequence[Callable[[Rollout], None]],
    answers: Callable[[], list[object]],
    rounds: int,
) -> list[str]:
    """Read ``answers()`` while a thread makes the writes of ``cycle`` (which must end where it
    began) ``rounds`` times over; return the answers no version the flag had during their call
    gives (at most five), each as ``"index: answer not in [what the versions answer]"``."""
    # What each version answers, read with nothing else running: version w is the state after
    # w writes, and the cycle brings back version 0.
    versions = [answers()]
    for write in cycle:
        write(flags)
        versions.append(answers())
    assert versions[-1] == versions[0], "the cycle does not end where it began"
    versions.pop()
    written = 0  # writes made (the writer's count; a write may be applied and not yet counted)
    done = threading.Event()
    failures: list[str] = []

    def writer() -> None:
        nonlocal written
        try:
            for _ in range(rounds):
                for write in cycle:
                    write(flags)
                    written += 1
        finally:
            done.set()

    def reader() -> None:
        while not done.is_set() and len(failures) < 5:
            before = written
            seen = answers()
            after = written
            # The versions the flag had during the call: those of the writes counted before
            # it to the one that may have been in progress when it ended.
            possible = [versions[w % len(versions)] for w in range(before, after + 2)]
            for index, answer in enumerate(seen):
                if not any(answer == each[index] for each in possible):
                    failures.append(f"{index}: {answer} not in {[a[index] for a in possible]}")

    interval = sys.getswitchinterval()
    sys.setswitchinterval(1e-5)  # threads take turns often: more interleavings per run
    try:
        threads = [threading.Thread(target=writer), threading.Thread(target=reader)]
        for thread in threads:
            thread.start()
        for thread in threads:
            thread.join()
    finally:
        sys.setswitchinterval(interval)
    return failures
