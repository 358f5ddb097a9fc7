"""Print the lowest version every user-facing dependency range in pyproject.toml allows, as pins.

`make lock` resolves requirements/lowest.txt with these as constraints: the project's own
dependencies and extras at their floors, the test tools at whatever fits beside them. A floor
that no longer works then fails `make test-lowest` instead of a user's install.
"""

import re
import sys
import tomllib
from pathlib import Path

# Extras that are tooling for this repository, not something a user installs with the library.
TOOLING_EXTRAS = {"dev", "bench"}


def floors(pyproject: Path) -> list[str]:
    project = tomllib.loads(pyproject.read_text())["project"]
    ranges = list(project.get("dependencies", []))
    for extra, requirements in project.get("optional-dependencies", {}).items():
        if extra not in TOOLING_EXTRAS:
            ranges.extend(requirements)
    pins = {}
    for requirement in ranges:
        # name, optional [extras] (pinned as the name alone), then the floor
        match = re.fullmatch(
            r"([A-Za-z0-9_.\-]+)(?:\[[A-Za-z0-9_,\s]*\])?\s*>=\s*([0-9][^,;\s]*)",
            requirement.strip(),
        )
        if match is None:
            sys.exit(f"floors.py: {requirement!r} has no plain '>=' floor to pin")
        pins[match.group(1).lower()] = match.group(2)
    return [f"{name}=={version}" for name, version in sorted(pins.items())]


if __name__ == "__main__":
    print("\n".join(floors(Path(sys.argv[1] if len(sys.argv) > 1 else "pyproject.toml"))))
