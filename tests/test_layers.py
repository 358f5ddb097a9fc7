"""The package's layers, read from its import statements: no cycles, a pure core, one direction.

Every import counts, including those under ``TYPE_CHECKING`` and those inside functions (a lazy
import is still a dependency; it only loads later). The layers, lowest first:

    0  core       rollout._core, rollout.errors: pure (the standard library minus I/O)
    1  ports      rollout.stores._base, rollout.sync: the store and transport interfaces
    2  backends   rollout.memory, rollout.sqlite, rollout.redis, rollout.postgres, rollout.peer,
                  rollout.nats
    3  client     rollout._client, the ``rollout`` package itself (the facade) and
                  ``rollout.stores`` (the catalogue of stores: the interface, the built-in
                  stores and ``open_store`` for a URL)
    4  surfaces   rollout.admin, rollout.cli, rollout.openfeature, rollout.integrations,
                  rollout.testing

A module may import its own layer and the layers below, never above: a backend reaches the
client only through the ports (``SyncHost``, write hooks), never by importing it.
"""

from __future__ import annotations

import ast
import sys
from collections.abc import Iterator
from pathlib import Path

import pytest

import rollout

PACKAGE = Path(rollout.__file__).parent

LAYERS: dict[str, int] = {
    "rollout._core": 0,
    "rollout.errors": 0,
    "rollout.stores._base": 1,
    "rollout.stores": 3,
    "rollout.sync": 1,
    "rollout.memory": 2,
    "rollout.sqlite": 2,
    "rollout.redis": 2,
    "rollout.postgres": 2,
    "rollout.peer": 2,
    "rollout.nats": 2,
    "rollout._client": 3,
    "rollout": 3,
    "rollout._moved": 3,
    "rollout.__main__": 4,
    "rollout.admin": 4,
    "rollout.cli": 4,
    "rollout.openfeature": 4,
    "rollout.integrations": 4,
    "rollout.testing": 4,
}
# Old import paths kept for one release (rollout._moved): each re-exports its new home, wherever
# that is, so they stand outside the layers.
SHIMS = {
    "rollout._moved",
    "rollout.compat",
    "rollout.compat.ruby",
    "rollout.compat.ruby_mirror",
    "rollout.stores.memory",
    "rollout.stores.sqlite",
    "rollout.stores.redis",
    "rollout.sync.peer",
    "rollout.sync.redis",
    "rollout.testing_cluster",
    "rollout.testing_proxy",
}
# Standard-library modules that do I/O or run concurrently: the core may not use them.
IO_MODULES = {
    "asyncio",
    "concurrent",
    "http",
    "io",
    "logging",
    "multiprocessing",
    "pathlib",
    "select",
    "selectors",
    "shutil",
    "socket",
    "socketserver",
    "sqlite3",
    "ssl",
    "subprocess",
    "tempfile",
    "urllib",
}


def module_name(path: Path) -> str:
    parts = ["rollout", *path.relative_to(PACKAGE).with_suffix("").parts]
    return ".".join(parts[:-1] if parts[-1] == "__init__" else parts)


MODULES = {module_name(path): path for path in sorted(PACKAGE.rglob("*.py"))}


def imports_of(name: str) -> Iterator[tuple[str, int]]:
    """Every module ``name`` imports, as an absolute name, with the line it is imported on."""
    path = MODULES[name]
    is_package = path.name == "__init__.py"
    for node in ast.walk(ast.parse(path.read_text(), str(path))):
        if isinstance(node, ast.Import):
            for alias in node.names:
                yield alias.name, node.lineno
        elif isinstance(node, ast.ImportFrom):
            if node.level:
                base = name.split(".") if is_package else name.split(".")[:-1]
                base = base[: len(base) - (node.level - 1)]
                target = ".".join([*base, *([node.module] if node.module else [])])
            else:
                target = node.module or ""
            submodules = [
                f"{target}.{a.name}" for a in node.names if f"{target}.{a.name}" in MODULES
            ]
            # `from . import _x` imports the module rollout._x, not what the package defines.
            if len(submodules) < len(node.names):
                yield target, node.lineno
            for submodule in submodules:
                yield submodule, node.lineno


def internal_imports(name: str) -> set[str]:
    return {target for target, _ in imports_of(name) if target in MODULES}


def layer_of(name: str) -> int:
    # "rollout" itself is the package's __init__ only: a new top-level module must be placed in
    # a layer here on purpose, not fall into the facade's by its prefix.
    matches = [p for p in LAYERS if name == p or (p != "rollout" and name.startswith(p + "."))]
    if not matches:
        raise AssertionError(f"{name} is in no layer: add it to LAYERS in tests/test_layers.py")
    return LAYERS[max(matches, key=len)]


def test_every_module_is_in_a_layer_or_a_shim() -> None:
    for name in MODULES:
        if name not in SHIMS:
            layer_of(name)


def test_there_are_no_import_cycles() -> None:
    graph = {name: internal_imports(name) for name in MODULES if name not in SHIMS}
    # Tarjan's strongly connected components: any component of two or more is a cycle.
    index: dict[str, int] = {}
    low: dict[str, int] = {}
    stack: list[str] = []
    on_stack: set[str] = set()
    cycles: list[list[str]] = []

    def visit(node: str) -> None:
        index[node] = low[node] = len(index)
        stack.append(node)
        on_stack.add(node)
        for target in graph.get(node, ()):
            if target in SHIMS:
                continue
            if target not in index:
                visit(target)
                low[node] = min(low[node], low[target])
            elif target in on_stack:
                low[node] = min(low[node], index[target])
        if low[node] == index[node]:
            component = []
            while True:
                member = stack.pop()
                on_stack.discard(member)
                component.append(member)
                if member == node:
                    break
            if len(component) > 1:
                cycles.append(sorted(component))

    # Put back after: a limit left raised changes what later tests in this process see (JSON
    # nested 1,000 deep then parses, and tests/cli/test_cli_ruby.py expects it not to).
    limit = sys.getrecursionlimit()
    sys.setrecursionlimit(max(limit, 10_000))
    try:
        for node in graph:
            if node not in index:
                visit(node)
    finally:
        sys.setrecursionlimit(limit)
    assert cycles == [], "\n".join(" <-> ".join(c) for c in cycles)


@pytest.mark.parametrize("name", sorted(n for n in MODULES if n not in SHIMS and layer_of(n) == 0))
def test_the_core_is_pure(name: str) -> None:
    for target, line in imports_of(name):
        top = target.split(".")[0]
        where = f"{MODULES[name]}:{line} imports {target}"
        if top == "rollout":
            assert layer_of(target) == 0, where
        elif top != "__future__":
            assert top in sys.stdlib_module_names, f"{where}, which is not the standard library"
            assert top not in IO_MODULES, f"{where}, which does I/O"


@pytest.mark.parametrize("name", sorted(n for n in MODULES if n not in SHIMS))
def test_imports_point_down_the_layers(name: str) -> None:
    for target, line in imports_of(name):
        if target in MODULES and target not in SHIMS:
            assert layer_of(target) <= layer_of(name), (
                f"{MODULES[name]}:{line}: {name} (layer {layer_of(name)}) imports {target} "
                f"(layer {layer_of(target)})"
            )


def test_nothing_in_the_package_imports_an_old_path() -> None:
    for name, path in MODULES.items():
        if name in SHIMS:
            continue
        for target, line in imports_of(name):
            assert target not in SHIMS - {"rollout._moved"}, f"{path}:{line}: {target}"


# Modules are split at seams, not at a line count; a long module is allowed where one concept is
# long, and is named here with the reason. One past the threshold and not named fails, which is a
# prompt to look for a seam.
SIZE_THRESHOLD = 450
LONG_MODULES = {
    "rollout._client.rollout": "the facade: every public method in one place, each a few lines "
    "over the parts it is composed of",
}


def test_long_modules_are_few_and_named() -> None:
    long = {
        name
        for name, path in MODULES.items()
        if len(path.read_text().splitlines()) > SIZE_THRESHOLD
    }
    assert long <= set(LONG_MODULES), (
        f"past {SIZE_THRESHOLD} lines: {sorted(long - set(LONG_MODULES))}"
    )
    assert set(LONG_MODULES) <= set(MODULES), "a named long module no longer exists"
