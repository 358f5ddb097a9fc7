"""The import paths of 0.1 that moved keep working for one release, and say where to go."""

from __future__ import annotations

import importlib
import subprocess
import sys

import pytest

from rollout._moved import REMOVED_IN

# old path -> (new path, names both must give, as the same objects)
MOVED = {
    "rollout.stores.memory": ("rollout.memory", ["MemoryStore"]),
    "rollout.stores.sqlite": ("rollout.sqlite", ["SQLiteStore"]),
    "rollout.stores.redis": ("rollout.redis", ["RedisStore"]),
    "rollout.sync.redis": ("rollout.redis", ["RedisTransport"]),
    "rollout.sync.peer": ("rollout.peer", ["PeerTransport"]),
    "rollout.compat.ruby": ("rollout.redis.ruby", ["RubyRecord", "parse_record", "feature_key"]),
    "rollout.compat.ruby_mirror": ("rollout.redis._ruby_mirror", ["RubyMirror"]),
    "rollout.testing_cluster": ("rollout.testing.cluster", ["Cluster", "Node", "free_port"]),
    "rollout.testing_proxy": ("rollout.testing.proxy", ["FaultProxy", "LinkTable"]),
}


@pytest.mark.parametrize("old", sorted(MOVED))
def test_an_old_path_warns_and_gives_the_same_objects(old: str) -> None:
    new, names = MOVED[old]
    sys.modules.pop(old, None)  # warn again even if another test imported it first
    where = "rollout.redis" if old == "rollout.compat.ruby_mirror" else new
    with pytest.warns(DeprecationWarning, match=rf"{old} moved to {where}.*{REMOVED_IN}"):
        module = importlib.import_module(old)
    current = importlib.import_module(new)
    for name in names:
        assert getattr(module, name) is getattr(current, name), name
    assert set(names) <= set(module.__all__)


def test_the_old_cluster_node_command_still_runs() -> None:
    # `python -m rollout.testing_cluster` was how node processes were started in 0.1.
    result = subprocess.run(
        [sys.executable, "-W", "error::DeprecationWarning", "-m", "rollout.testing_cluster", "-h"],
        capture_output=True,
        text=True,
        timeout=60,
        check=False,
    )
    assert result.returncode != 0  # the warning, made an error, proves it is given
    assert "moved to rollout.testing.cluster" in result.stderr
    plain = subprocess.run(
        [sys.executable, "-m", "rollout.testing_cluster", "-h"],
        capture_output=True,
        text=True,
        timeout=60,
        check=True,
    )
    assert "--listen" in plain.stdout


def test_the_fixture_is_still_importable_from_rollout_testing() -> None:
    # 0.1's rollout.testing was the plugin module itself; a conftest may import the fixture.
    from rollout.testing import flags
    from rollout.testing.plugin import flags as plugin_flags

    assert flags is plugin_flags
