"""The ``rollout`` commands of targeting as data (issue 16): flag definitions in flagd's words
(variants, a default variant, a JsonLogic targeting rule, a state), named rules, an evaluation
for a context, and flagd flag-definition files in and out.

A rule or a definition is given as JSON on the command line, or ``@FILE`` (``@-``: stdin). The
library checks it as flagd's schema does before anything is written; a refusal is one line
naming the JSON path (``$.targeting.if[1]``) with exit status 2, as every other error.
"""

from __future__ import annotations

import argparse
import json
import sys
from collections.abc import Callable
from pathlib import Path
from typing import Any

from .._client.rollout import Rollout
from .._core.definition_shapes import (
    definition_shape,
    evaluation_shape,
    flagd_state,
    parse_definition,
    rule_events,
    rule_shape,
)
from .._core.feature import Feature
from .._core.history_words import event_changes
from .._core.targeting import RuleError, parse_flagd
from . import _admin as admin
from . import _cluster as cluster
from . import _table as table
from ._progress import Progress, read_input

__all__ = ["READ_COMMANDS", "REMOVAL_COMMANDS", "add_commands", "json_argument"]

Handler = Callable[[Rollout, argparse.Namespace], int]
AddCommand = Callable[[str, str, Handler], argparse.ArgumentParser]

#: The commands here that only read (they open an existing store, never create one).
READ_COMMANDS = frozenset({"variants", "rules", "rule-history", "evaluate", "export-flagd"})
#: The commands here that change a flag or rule that must exist already.
REMOVAL_COMMANDS = frozenset({"remove-variant", "set-default-variant", "set-targeting"}) | {
    "clear-targeting",
    "enable-flag",
    "disable-flag",
    "remove-rule",
}
#: An import of this many flags or more says how far it got on stderr.
BIG_IMPORT = 1000


def json_argument(text: str, what: str) -> Any:
    """``text`` as JSON, or the JSON of the file ``@FILE`` (``@-``: stdin); ValueError naming
    ``what`` and where the text came from."""
    where = "the command line"
    if text.startswith("@"):
        source = text[1:]
        where = "stdin" if source == "-" else source
        raw = sys.stdin.read() if source == "-" else Path(source).read_text(encoding="utf-8")
    else:
        raw = text

    def refuse(constant: str) -> None:
        raise ValueError(f"{constant} is not JSON")

    try:
        return json.loads(raw, parse_constant=refuse)
    except RecursionError:
        raise ValueError(f"{what} nests too deep to read, from {where}") from None
    except ValueError as exc:
        raise ValueError(f"{what} is not valid JSON ({where}): {exc}") from None


def _json_or_text(text: str) -> Any:
    """A variant's value: JSON when it parses (``true``, ``5``, ``{"a": 1}``), else text."""
    try:
        return json.loads(text, parse_constant=lambda constant: constant)
    except (ValueError, RecursionError):
        return text


def _count(number: int, noun: str) -> str:
    return f"{number} {noun}" if number == 1 else f"{number} {noun}s"


def _compact(value: Any) -> str:
    text = json.dumps(value, ensure_ascii=False, separators=(", ", ": "))
    if text.isprintable():
        return text
    # JSON leaves C1 controls (U+009B is a terminal's CSI) and format characters (U+202E
    # reverses what follows) as they are: a crafted rule must not reach the terminal raw.
    return json.dumps(value, separators=(", ", ": "))


def describe(feature: Feature) -> str:
    """One line for a definition's write: ``chat: variants red, blue (default red), targeting``."""
    if not feature.variants:
        return f"{feature.name}: no variants (an on/off flag)"
    default = feature.default_variant
    parts = [
        f"variants {', '.join(sorted(feature.variants))}",
        f"default {default}" if default is not None else "no default variant",
    ]
    if feature.targeting:
        parts.append("targeting")
    if not feature.enabled:
        parts.append("DISABLED")
    return f"{feature.name}: " + ", ".join(parts)


def _existing(flags: Rollout, name: str) -> Feature:
    if not flags.exists(name):  # get() answers an empty Feature: that would hide a typo
        raise ValueError(f"no flag named {name!r}")
    return flags.get(name)


# Reading ----------------------------------------------------------------------------------------


def cmd_variants(flags: Rollout, args: argparse.Namespace) -> int:
    feature = _existing(flags, args.name)
    if args.json:
        print(json.dumps(definition_shape(feature), indent=2))
        return 0
    rows = [
        [variant, _compact(value), "default" if variant == feature.default_variant else ""]
        for variant, value in sorted(feature.variants.items())
    ]
    print(table.format_table(["VARIANT", "VALUE", ""], rows) if rows else describe(feature))
    print(f"state: {flagd_state(feature.enabled)}")
    if feature.variants and feature.default_variant is None:
        print("default: none (the caller's default is answered when no rule decides)")
    print(f"targeting: {_compact(feature.targeting) if feature.targeting else 'none'}")
    return 0


def cmd_rules(flags: Rollout, args: argparse.Namespace) -> int:
    rules = flags.rules()
    if args.rule is not None:
        if args.rule not in rules:
            raise ValueError(f"no rule named {args.rule!r}")
        rules = {args.rule: rules[args.rule]}
    if args.json:
        shapes = [rule_shape(name, logic) for name, logic in sorted(rules.items())]
        print(json.dumps(shapes[0] if args.rule is not None else shapes, indent=2))
    elif not rules:
        print("no rules")
    else:
        rows = [[name, _compact(logic)] for name, logic in sorted(rules.items())]
        print(table.format_table(["RULE", "LOGIC"], rows))
    return 0


def cmd_rule_history(flags: Rollout, args: argparse.Namespace) -> int:
    events = rule_events(flags.rule_history(), args.rule)[: args.limit]
    if not events and args.rule not in flags.rules():
        raise ValueError(f"no rule named {args.rule!r} and no history for it")
    if args.json:
        print(json.dumps(events, indent=2))
        return 0
    rows = [
        [
            e["at"],
            e["node"],
            e["actor"] or "-",
            e["action"],
            ", ".join(event_changes(e["before"], e["after"])),
            e["reason"] or "",
        ]
        for e in events
    ]
    print(table.format_table(["WHEN (UTC)", "NODE", "ACTOR", "ACTION", "CHANGE", "REASON"], rows))
    return 0


def _context(args: argparse.Namespace) -> dict[str, Any]:
    context = {} if args.context is None else json_argument(args.context, "--context")
    if not isinstance(context, dict):
        raise ValueError(f"--context must be a JSON object, got {_compact(context)[:80]}")
    if args.targeting_key is not None:
        context["targetingKey"] = args.targeting_key
    return context


def cmd_evaluate(flags: Rollout, args: argparse.Namespace) -> int:
    resolution = flags.evaluate(args.name, _context(args))
    if resolution.error_code == "FLAG_NOT_FOUND":  # a typo must fail a script, as `show` does
        raise ValueError(f"no flag named {args.name!r}")
    if args.json:
        print(json.dumps(evaluation_shape(args.name, resolution), indent=2))
        return 0
    rows = [
        ["value", _compact(resolution.value)],
        ["variant", resolution.variant or "-"],
        ["reason", resolution.reason],
    ]
    if resolution.error_code is not None:
        rows.append(["error", f"{resolution.error_code}: {resolution.error_message or ''}"])
    print(table.format_table(["FIELD", "VALUE"], rows))
    return 0


def cmd_export_flagd(flags: Rollout, args: argparse.Namespace) -> int:
    document = flags.export_flagd()
    text = json.dumps(document, indent=2, ensure_ascii=False) + "\n"
    if args.file in (None, "-"):
        sys.stdout.write(text)
    else:
        Path(args.file).write_text(text, encoding="utf-8")
        flags_written = _count(len(document["flags"]), "flag")
        rules = _count(len(document.get("$evaluators", {})), "rule")
        print(f"exported {flags_written} and {rules} to {args.file}")
    return 0


# Writing ----------------------------------------------------------------------------------------


def cmd_import_flagd(flags: Rollout, args: argparse.Namespace) -> int:
    source = "stdin" if args.file in (None, "-") else args.file
    progress = Progress("rollout import-flagd")
    try:
        # The text, not the path, is loaded: flagd reads "$ref"s in the text itself. Leading
        # space (or a byte order mark) would make load_flagd take it for a path.
        text = read_input(args.file, progress).decode("utf-8-sig").lstrip()
        try:
            # Checked whole first: the JSON path of the first problem, and nothing written.
            document = parse_flagd(text)
        except RuleError as exc:
            raise ValueError(f"{source}: {exc}; nothing was imported") from None
        if len(document.flags) >= BIG_IMPORT:
            progress.step(f"checked {len(document.flags)} flags from {source}; loading them")
        loaded = flags.load_flagd(text)
    except UnicodeDecodeError as exc:
        raise ValueError(f"{source}: not UTF-8 ({exc}); nothing was imported") from None
    finally:
        progress.end()
    cluster.leave(flags, args)
    rules = sorted(document.evaluators)
    if args.json:
        print(json.dumps({"flags": loaded, "rules": rules}, indent=2))
        return 0
    for name in loaded:
        print(f"loaded {describe(flags.get(name))}")
    for name in rules:
        print(f"loaded rule {name}")
    if not loaded and not rules:
        print(f"{source}: no flags and no rules")
    return 0


def _define_flag(flags: Rollout, args: argparse.Namespace) -> None:
    entry = json_argument(args.definition, "the definition")
    if not isinstance(entry, dict):
        raise ValueError(f"the definition must be a JSON object, got {_compact(entry)[:80]}")
    definition = parse_definition(entry)
    flags.define_flag(
        args.name,
        dict(definition.variants),
        default_variant=definition.default_variant,
        targeting=definition.targeting,
        enabled=definition.enabled,
        # Left out: the flag's data (its metadata) stays as it is.
        metadata=dict(definition.metadata) if "metadata" in entry else None,
    )


def _targeting(args: argparse.Namespace) -> Any:
    rule = json_argument(args.targeting, "the targeting rule")
    return rule or None  # null and {} (flagd's "no targeting") remove it


def _flag_write(flags: Rollout, args: argparse.Namespace) -> int:
    args.apply(flags, args)
    cluster.leave(flags, args)
    feature = flags.get(args.name)
    if args.json:
        print(json.dumps(definition_shape(feature), indent=2))
    else:
        print(describe(feature))
    return 0


def _rule_write(flags: Rollout, args: argparse.Namespace) -> int:
    removing = args.command == "remove-rule"
    if removing:
        if args.rule not in flags.rules():
            raise ValueError(f"no rule named {args.rule!r} (nothing was changed)")
        flags.remove_rule(args.rule)
    else:
        flags.define_rule(args.rule, json_argument(args.logic, "the rule"))
    cluster.leave(flags, args)
    if args.json:
        rules = flags.rules()
        shape = {"deleted": args.rule} if removing else rule_shape(args.rule, rules[args.rule])
        print(json.dumps(shape, indent=2))
    else:
        print(f"rule {args.rule}: {'removed' if removing else 'defined'}")
    return 0


_JSON_HELP = "JSON, or @FILE to read it from FILE (@- from stdin)"
_VARIANT = ("variant", {"metavar": "VARIANT", "help": "a variant name"})

# command -> (help, extra positional arguments, the write)
_FLAG_WRITES: dict[str, tuple[str, tuple[tuple[str, dict[str, Any]], ...], Any]] = {
    "define-flag": (
        "make a flag's definition exactly this flagd flag definition (variants, "
        "defaultVariant, targeting, state, metadata), in one write",
        (("definition", {"metavar": "JSON", "help": _JSON_HELP}),),
        _define_flag,
    ),
    "set-variant": (
        "add a variant to a flag, or change its value (VALUE is JSON if it parses, else text)",
        (_VARIANT, ("value", {"metavar": "VALUE", "help": "JSON if it parses, else text"})),
        lambda f, a: f.set_variant(a.name, a.variant, _json_or_text(a.value)),
    ),
    "remove-variant": (
        "remove a variant from a flag",
        (_VARIANT,),
        lambda f, a: f.remove_variant(a.name, a.variant),
    ),
    "set-default-variant": (
        "the variant a flag answers when no rule decides (--none: the caller's default)",
        (("variant", {"metavar": "VARIANT", "nargs": "?", "help": "a variant name"}),),
        lambda f, a: f.set_default_variant(a.name, _default_variant(a)),
    ),
    "set-targeting": (
        "a flag's JsonLogic targeting rule, choosing a variant by name (null or {}: none)",
        (("targeting", {"metavar": "JSON", "help": _JSON_HELP}),),
        lambda f, a: f.set_targeting(a.name, _targeting(a)),
    ),
    "clear-targeting": (
        "remove a flag's targeting rule (its default variant answers)",
        (),
        lambda f, a: f.set_targeting(a.name, None),
    ),
    "enable-flag": (
        "flagd's state ENABLED: the flag's definition answers again",
        (),
        lambda f, a: f.enable_flag(a.name),
    ),
    "disable-flag": (
        "flagd's state DISABLED: evaluations answer the caller's default (reason DISABLED)",
        (),
        lambda f, a: f.disable_flag(a.name),
    ),
}


def _default_variant(args: argparse.Namespace) -> str | None:
    if args.none == (args.variant is not None):
        raise ValueError("set-default-variant takes a VARIANT or --none (one of the two)")
    return None if args.none else str(args.variant)


def add_commands(add: AddCommand) -> None:
    """Register the commands with ``cli.build_parser``'s ``add``."""
    variants = add(
        "variants", "show a flag's variants, default variant, state and targeting", cmd_variants
    )
    variants.add_argument("name", metavar="NAME", help="flag name")
    for name, (help_text, arguments, apply) in _FLAG_WRITES.items():
        sub = add(name, help_text, _flag_write)
        sub.add_argument("name", metavar="NAME", help="flag name")
        for dest, options in arguments:
            sub.add_argument(dest, **options)
        if name == "set-default-variant":
            sub.add_argument("--none", action="store_true", help="no default variant")
        admin.add_actor_options(sub)
        sub.set_defaults(apply=apply)

    rules = add("rules", "list the named rules (flagd's $evaluators), or show one", cmd_rules)
    rules.add_argument("rule", metavar="RULE", nargs="?", help="only this rule")
    define = add(
        "define-rule",
        "define a named rule, or change it (flags referring to it with $ref follow; an on/off "
        "flag's group of that name uses it)",
        _rule_write,
    )
    define.add_argument("rule", metavar="RULE", help="the rule's name")
    define.add_argument("logic", metavar="JSON", help=f"the JsonLogic: {_JSON_HELP}")
    remove = add("remove-rule", "forget a named rule", _rule_write)
    remove.add_argument("rule", metavar="RULE", help="the rule's name")
    for sub in (define, remove):
        admin.add_actor_options(sub)
    history = add(
        "rule-history", "show a named rule's recorded changes, newest first", cmd_rule_history
    )
    history.add_argument("rule", metavar="RULE", help="the rule's name (removed rules too)")
    history.add_argument("--limit", metavar="N", type=int, help="at most N events")

    evaluate = add(
        "evaluate",
        "evaluate a flag for a context: print its value, variant and reason (flagd's)",
        cmd_evaluate,
    )
    evaluate.add_argument("name", metavar="NAME", help="flag name")
    evaluate.add_argument(
        "--context", metavar="JSON", help=f"the evaluation context, an object: {_JSON_HELP}"
    )
    evaluate.add_argument(
        "--targeting-key", metavar="KEY", help="the context's targetingKey (the user id)"
    )

    importing = add(
        "import-flagd",
        "load a flagd flag-definition file (checked whole first); print each flag loaded",
        cmd_import_flagd,
    )
    importing.add_argument("file", metavar="FILE", nargs="?", help="default: stdin")
    admin.add_actor_options(importing)
    exporting = add(
        "export-flagd",
        "write every flag with a definition, and every rule, as a flagd file to FILE or stdout",
        cmd_export_flagd,
    )
    exporting.add_argument("file", metavar="FILE", nargs="?", help="default: stdout")
