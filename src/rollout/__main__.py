"""``python -m rollout``: the same command as the ``rollout`` script."""

from __future__ import annotations

import sys

from .cli import main

if __name__ == "__main__":
    sys.exit(main())
