"""The public surface: what `import rollout` offers, and that importing it stays light."""

from __future__ import annotations

import subprocess
import sys

import rollout
import rollout.errors


def test_all_is_pinned() -> None:
    # Adding a name here is a decision: it becomes API that must be kept.
    assert sorted(rollout.__all__) == [
        "ClockSkewError",
        "ClosedError",
        "Explanation",
        "Feature",
        "FormatError",
        "HistoryEvent",
        "MemoryStore",
        "MissingExtraError",
        "Rollout",
        "RolloutError",
        "SQLiteStore",
        "Store",
        "StoreError",
        "StoreOutcomeUnknownError",
        "StoreUnavailableError",
        "Timestamp",
    ]
    for name in rollout.__all__:
        assert getattr(rollout, name) is not None


def test_every_error_derives_from_the_root_error() -> None:
    for name in rollout.errors.__all__:
        assert issubclass(getattr(rollout.errors, name), rollout.RolloutError)
    assert issubclass(rollout.FormatError, ValueError)
    assert issubclass(rollout.StoreUnavailableError, rollout.StoreError)
    assert issubclass(rollout.StoreOutcomeUnknownError, rollout.StoreError)
    assert not issubclass(rollout.StoreOutcomeUnknownError, rollout.StoreUnavailableError)
    assert issubclass(rollout.MissingExtraError, ImportError)  # `except ImportError` still works


def test_importing_rollout_pulls_in_no_optional_dependency() -> None:
    code = (
        "import sys, rollout; "
        "heavy = {'redis', 'starlette', 'uvicorn', 'jinja2', 'prometheus_client', "
        "'hypothesis', 'asyncio', 'openfeature', 'rollout.memory._transport', "
        "'rollout.peer', 'rollout.redis', 'psycopg', 'rollout.postgres'}; "
        "print(sorted(heavy & set(sys.modules)))"
    )
    result = subprocess.run(
        [sys.executable, "-c", code], capture_output=True, text=True, check=True, timeout=60
    )
    assert result.stdout.strip() == "[]"


def test_the_package_ships_type_information() -> None:
    from importlib.resources import files

    assert files("rollout").joinpath("py.typed").is_file()
