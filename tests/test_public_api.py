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
        "Resolution",
        "Rollout",
        "RolloutError",
        "RuleError",
        "SQLiteStore",
        "Store",
        "StoreError",
        "StoreOutcomeUnknownError",
        "StoreUnavailableError",
        "Timestamp",
        "UnknownFlagError",
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
    assert issubclass(rollout.UnknownFlagError, LookupError)


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


def test_the_targeting_engine_loads_only_when_a_rule_is_used() -> None:
    # A process with no flag definition and no named rule never imports the rule compiler,
    # its generated code or flagd's operators (a third of `import rollout` when they were eager).
    engine = "rollout._core.targeting."
    code = (
        "import sys, rollout; flags = rollout.Rollout(); flags.activate('chat'); "
        f"before = sorted(m for m in sys.modules if m.startswith({engine!r})); "
        "flags.define_flag('f', {'a': 1}, default_variant='a', targeting={'if': [True, 'a']}); "
        f"after = sorted(m for m in sys.modules if m.startswith({engine!r})); "
        "print(before); print(flags.evaluate('f').variant, 'compiler' in str(after))"
    )
    result = subprocess.run(
        [sys.executable, "-c", code], capture_output=True, text=True, check=True, timeout=60
    )
    before, after = result.stdout.splitlines()
    light = [engine + name for name in ("bounds", "errors", "resolution")]
    assert before == repr(light)
    assert after == "a True"


def test_the_package_ships_type_information() -> None:
    from importlib.resources import files

    assert files("rollout").joinpath("py.typed").is_file()


def test_rollout_stores_offers_what_a_store_of_ones_own_needs() -> None:
    # docs/stores.md: a store written with these alone passes StoreConformance
    # (tests/stores/test_custom_store.py).
    import rollout.stores

    assert sorted(rollout.stores.__all__) == [
        "Delta",
        "Judged",
        "MemoryStore",
        "QuarantineState",
        "QuarantinedRegister",
        "Register",
        "SQLiteStore",
        "Store",
        "Timestamp",
        "decode_registers",
        "discard_delta",
        "encode_registers",
        "merge_delta",
        "merge_registers",
        "open_store",
    ]
    for name in rollout.stores.__all__:
        assert getattr(rollout.stores, name) is not None
    assert rollout.stores.Timestamp is rollout.Timestamp
    assert rollout.stores.Store is rollout.Store
