"""The judge, in process: flagd's evaluator testkit through the OpenFeature client with
:class:`RolloutProvider`, after ``Rollout.load_flagd`` of our restatement of its flags."""

from __future__ import annotations

from collections.abc import Iterator

import pytest
from openfeature import api
from openfeature.client import OpenFeatureClient

from rollout import Rollout
from rollout.openfeature import RolloutProvider

from .judge import assert_row, evaluate
from .scenarios import FLAGS_FILE, ROWS, Row


@pytest.fixture(scope="module")
def loaded() -> Iterator[tuple[Rollout, list[str]]]:
    with Rollout() as flags:
        yield flags, flags.load_flagd(FLAGS_FILE)


@pytest.fixture(scope="module")
def client(loaded: tuple[Rollout, list[str]]) -> Iterator[OpenFeatureClient]:
    api.set_provider_and_wait(RolloutProvider(loaded[0], status_interval=None), "flagd-testkit")
    try:
        yield api.get_client("flagd-testkit")
    finally:
        api.shutdown()


def test_every_flag_of_the_file_is_loaded(loaded: tuple[Rollout, list[str]]) -> None:
    flags, names = loaded
    assert sorted(names) == sorted(flags.features())
    assert len(names) == 60
    assert "is_ballmer" in flags.rules()


@pytest.mark.parametrize("row", ROWS, ids=lambda row: row.id)
def test_scenario_row(client: OpenFeatureClient, row: Row) -> None:
    assert_row(evaluate(client, row), row)
