"""One example under each command's ``--help``: what a user types, for the common case."""

from __future__ import annotations

import argparse

__all__ = ["EXAMPLES", "add_example"]

#: command -> example command lines (shown under "example:" in its --help)
EXAMPLES: dict[str, tuple[str, ...]] = {
    "list": ("rollout list --store sqlite:///flags.db",),
    "show": ("rollout show chat --limit 10",),
    "check": ("rollout check chat --user 42 --why",),
    "activate": ("rollout activate signup --reason 'launch day'",),
    "deactivate": ("rollout deactivate chat --as alice --reason 'errors at 20%'",),
    "activate-user": ("rollout activate-user chat 42 7",),
    "deactivate-user": ("rollout deactivate-user chat 42",),
    "exclude-user": ("rollout exclude-user chat 13",),
    "include-user": ("rollout include-user chat 13",),
    "activate-group": ("rollout activate-group chat admins",),
    "deactivate-group": ("rollout deactivate-group chat admins",),
    "percentage": ("rollout percentage chat 20 --as alice --reason 'step 1'",),
    "percentage-of-time": ("rollout percentage-of-time chat 5",),
    "data": ("rollout data chat owner=web limit=5",),
    "clear-data": ("rollout clear-data chat",),
    "delete": ("rollout delete old_banner",),
    "export": ("rollout export flags.export",),
    "import": ("rollout import flags.export --store sqlite:///other.db",),
    "variants": ("rollout variants checkout --json",),
    "define-flag": (
        'rollout define-flag color \'{"variants": {"red": "#f00", "blue": "#00f"}, '
        '"defaultVariant": "red"}\'',
        "rollout define-flag color @color.json --reason 'new palette'",
    ),
    "set-variant": ("rollout set-variant color green '\"#0f0\"'",),
    "remove-variant": ("rollout remove-variant color green",),
    "set-default-variant": ("rollout set-default-variant color blue",),
    "set-targeting": (
        'rollout set-targeting color \'{"if": [{"$ref": "pro"}, "blue", null]}\'',
        "rollout set-targeting color @targeting.json",
    ),
    "clear-targeting": ("rollout clear-targeting color",),
    "enable-flag": ("rollout enable-flag color",),
    "disable-flag": ("rollout disable-flag color --reason 'INC-7'",),
    "rules": ("rollout rules", "rollout rules pro --json"),
    "define-rule": (
        'rollout define-rule pro \'{"in": [{"var": "plan"}, ["pro", "enterprise"]]}\'',
    ),
    "remove-rule": ("rollout remove-rule pro",),
    "rule-history": ("rollout rule-history pro --limit 5",),
    "evaluate": ('rollout evaluate color --targeting-key 42 --context \'{"plan": "pro"}\'',),
    "import-flagd": ("rollout import-flagd flags.flagd.json --reason 'from flagd'",),
    "export-flagd": ("rollout export-flagd flags.flagd.json",),
    "members": (
        "rollout members --store memory:// --peers 127.0.0.1:7946",
        "rollout members --url http://127.0.0.1:8080",
    ),
    "serve": ("rollout serve --http 127.0.0.1:8080 --listen 127.0.0.1:7946",),
    "history": ("rollout history chat --limit 20",),
    "quarantine": (
        "rollout quarantine --url http://127.0.0.1:8080",
        "rollout quarantine accept chat user:42 --url http://127.0.0.1:8080",
    ),
    "import-ruby": ("rollout import-ruby --redis redis://localhost:6379/0",),
    "export-ruby": ("rollout export-ruby --redis redis://localhost:6379/0",),
    "check-on": ("rollout check-on checkout chat --url http://127.0.0.1:8080 -w 90: -c 50:",),
    "secret": ("export ROLLOUT_SECRET=$(rollout secret)",),
    "token": ("export ROLLOUT_TOKEN=alice=$(rollout token)",),
    "completion": ("source <(rollout completion bash)    # in ~/.bashrc",),
}


def add_example(command: argparse.ArgumentParser, name: str) -> None:
    """Put ``name``'s example under its help (kept as written: one command a line)."""
    lines = EXAMPLES.get(name)
    if lines is None:
        raise ValueError(f"rollout {name}: no example in cli/_help.py's EXAMPLES")
    command.epilog = "example:\n" + "\n".join(f"  {line}" for line in lines)
    command.formatter_class = _Formatter


class _Formatter(argparse.HelpFormatter):
    """argparse's, but the example is kept as written (a command line must not be rewrapped);
    the description still wraps."""

    def _fill_text(self, text: str, width: int, indent: str) -> str:
        if text.startswith("example:\n"):
            return "".join(indent + line for line in text.splitlines(keepends=True))
        return super()._fill_text(text, width, indent)
