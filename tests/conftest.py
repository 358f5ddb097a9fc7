"""Shared fixtures: a fresh in-memory Rollout on a clock that moves only when told.

Also the hypothesis profile: no deadlines and no timing health checks. The machines that run the
tests are shared and noisy, and a test must never fail because the machine was slow; hypothesis
still checks everything else about the examples.
"""

from __future__ import annotations

import logging
from collections.abc import Iterator

import pytest
from hypothesis import HealthCheck, settings

from rollout import Rollout
from rollout._core import native
from rollout.testing import FakeClock

settings.register_profile(
    "rollout",
    deadline=None,
    suppress_health_check=[HealthCheck.too_slow, HealthCheck.data_too_large],
)
settings.load_profile("rollout")


@pytest.fixture(autouse=True)
def _rollout_log_level() -> Iterator[None]:
    """The CLI run in-process quietens the ``rollout`` logger for good (a one-off command's
    output is its one line); put the level back so later tests still see what is logged."""
    logger = logging.getLogger("rollout")
    level = logger.level
    yield
    logger.setLevel(level)


@pytest.fixture
def clock() -> FakeClock:
    return FakeClock()


@pytest.fixture
def flags(clock: FakeClock) -> Iterator[Rollout]:
    with Rollout(clock=clock) as rollout:
        yield rollout


@pytest.fixture
def python_check(monkeypatch: pytest.MonkeyPatch) -> None:
    """The Rollouts the test makes check in pure Python, even where the C accelerator is
    installed: for tests of what only the Python check has (its bucket memo, the moments
    between two of its reads). The whole suite also runs with ROLLOUT_PURE_PYTHON=1."""
    monkeypatch.setattr(native, "speedups", None)
