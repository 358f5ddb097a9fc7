"""The public surface: what `import rollout` offers, and that importing it stays light."""

from __future__ import annotations

import ast
import os
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
        "PartlyStoredError",
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
    assert issubclass(rollout.PartlyStoredError, rollout.StoreError)
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


#: What `import rollout; rollout.Rollout()` (in memory, no transport) must not load: each is
#: imported where it is first needed (docs/architecture.md, "What loads when").
LOADED_ON_FIRST_USE = {
    "sqlite3": "rollout.SQLiteStore or an sqlite:// URL",
    "rollout.sqlite": "rollout.SQLiteStore or an sqlite:// URL",
    "pathlib": "rollout.SQLiteStore",
    "urllib.parse": "rollout.SQLiteStore",
    "socket": "a transport (the host name comes from os.uname())",
    "selectors": "a transport",
    "ssl": "a transport with TLS",
    "asyncio": "the HTTP API, NATS",
    "logging": "the first message logged",
    "traceback": "the first message logged",
    "hashlib": "a transport's first digest",
    "secrets": "the peer handshake (the node id comes from os.urandom)",
    "hmac": "the peer handshake",
    "rollout._core.redact": "an error about a store URL, stats(), repr()",
    "rollout.memory": "rollout.MemoryStore or a memory:// URL (Rollout() needs no store)",
    "dataclasses": "explain(), history(), the quarantine's first register",
    "inspect": "explain(), history(), degrade or override as a decorator",
    "ast": "explain(), history(), degrade or override as a decorator",
    "datetime": "history()",
    "json": "the first data value checked, register encoded or rule (rollout._core.lazy)",
    # Annotations only: every module's typing names are imported under TYPE_CHECKING, named
    # tuples are collections.namedtuple at run time, protocols exist for the type checker only.
    "typing": "never at run time by rollout's core (degrade or override as a decorator: cast)",
    "re": "a store URL redacted, a rule, the HTTP API (names are checked without a regex)",
    "enum": "an Enum member given as a flag name (the caller loaded enum to make one)",
    "contextlib": "a store, a transport, the HTTP API (write_context is a small class)",
    "rollout._core.explain": "explain(), rollout.Explanation",
    "rollout._core.history_event": "history(), rollout.HistoryEvent",
    "rollout._core.quarantined": "the quarantine's first register, rollout.stores' types",
}


#: How many of rollout's own modules that process loads, at most: 42 when this was written, then
#: three small ones of the write path every Rollout needs (register_merge, own_writes,
#: uncommitted), 44, then the check's C accelerator and the module that chooses it (native), 46,
#: then the register and its merge rule, split from state when that passed 450 lines (register),
#: 47 since. What costs time is the standard library modules above, not these.
ROLLOUT_MODULES_AT_START = 47


def _plain_environment() -> dict[str, str]:
    # Without coverage's variables: under `make test` coverage starts in every subprocess and
    # loads sqlite3, json, inspect... itself, which an application's process never does.
    return {k: v for k, v in os.environ.items() if not k.startswith("COVERAGE_")}


def _loaded(code: str, names: object) -> list[str]:
    """Which of ``names`` are in sys.modules after ``code`` runs in a fresh interpreter."""
    script = f"import sys, rollout\n{code}\nprint(sorted(set({names!r}) & set(sys.modules)))"
    result = subprocess.run(
        [sys.executable, "-c", script],
        capture_output=True,
        text=True,
        check=True,
        timeout=60,
        env=_plain_environment(),
    )
    return list(ast.literal_eval(result.stdout.strip()))


def test_a_rollout_in_memory_loads_nothing_it_does_not_use() -> None:
    # issue 15: `import rollout` took ~60 ms, most of it modules a Rollout in memory never
    # uses. Counted, never timed (bench/import_bench.py times it).
    assert _loaded("rollout.Rollout()", sorted(LOADED_ON_FIRST_USE)) == []
    code = (
        "import rollout; rollout.Rollout(); "
        "print(sum(m == 'rollout' or m.startswith('rollout.') for m in sys.modules))"
    )
    result = subprocess.run(
        [sys.executable, "-c", f"import sys; {code}"],
        capture_output=True,
        text=True,
        check=True,
        timeout=60,
        env=_plain_environment(),
    )
    # A new module on this path is a decision: it costs every process that imports rollout.
    assert int(result.stdout) <= ROLLOUT_MODULES_AT_START


def test_what_loads_on_first_use_does_load_then() -> None:
    # The lazy names and imports still work: the first use loads what it needs.
    first_use = (
        "flags = rollout.Rollout(); flags.define_group('broken', lambda user: 1 / 0); "
        "flags.activate_group('chat', 'broken'); flags.active('chat', 42); "
        "flags.set_feature_data('chat', {'colour': 'blue'}); "
        "assert flags.explain('chat', 42).reason == 'off'; "
        "assert flags.history('chat')[-1].action == 'activate_group'; "
        "rollout.SQLiteStore; repr(flags)"
    )
    wanted = [
        "dataclasses",
        "datetime",
        "json",
        "logging",
        "rollout._core.explain",
        "rollout._core.history_event",
        "rollout._core.redact",
        "rollout.sqlite",
        "sqlite3",
    ]
    assert _loaded(first_use, wanted) == wanted


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


def test_replication_loads_no_decimal_arithmetic() -> None:
    # A replicating process holds every module it loads: statistics (for one median of a few
    # clock offsets) loaded decimal and fractions, about 0.75 MB of RSS (bench/cluster.py).
    assert _loaded("import rollout.peer", ["decimal", "fractions", "statistics"]) == []
