"""Shared fixtures: a fresh in-memory Rollout on a clock that moves only when told."""

from __future__ import annotations

from collections.abc import Iterator

import pytest

from rollout import Rollout
from rollout.testing import FakeClock


@pytest.fixture
def clock() -> FakeClock:
    return FakeClock()


@pytest.fixture
def flags(clock: FakeClock) -> Iterator[Rollout]:
    with Rollout(clock=clock) as rollout:
        yield rollout
