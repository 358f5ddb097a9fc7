"""The pytest plugin (the ``rollout`` entry point): the ``flags`` fixture.

Kept in its own module because it imports pytest, which the rest of ``rollout.testing`` (the
fake clock, the conformance suites) does not need.
"""

from __future__ import annotations

from collections.abc import Iterator

import pytest

from .._client.rollout import Rollout

__all__ = ["flags"]


@pytest.fixture
def flags() -> Iterator[Rollout]:
    """A fresh in-memory :class:`~rollout.Rollout` for one test, closed after it.

    No store, no replication, nothing shared with other tests. For code under test that uses a
    module-level instance, use that instance's ``override(name, True/False)`` instead.
    """
    with Rollout() as rollout:
        yield rollout
