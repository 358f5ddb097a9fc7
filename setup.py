"""The build's one part pyproject.toml cannot say: the optional C accelerator of the flag check.

``rollout._core._speedups`` (docs/accelerator.md) is optional twice over: a build where it does not
compile (no C compiler, no Python headers) still installs, without it (``optional=True``), and
``ROLLOUT_BUILD_PURE=1`` leaves it out on purpose, for the pure-Python wheel (``py3-none-any``)
that pip takes on a platform no binary wheel is built for. Either way rollout runs the same
checks in Python (rollout._core.native).
"""

import os

from setuptools import Extension, setup

speedups = Extension(
    "rollout._core._speedups",
    sources=["src/rollout/_core/_speedups.c"],
    optional=True,
)

setup(ext_modules=[] if os.environ.get("ROLLOUT_BUILD_PURE") == "1" else [speedups])
