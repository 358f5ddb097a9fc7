"""The ``rollout`` commands of targeting as data, on real SQLite files: flagd files in and out,
a flag's variants and targeting, named rules, and evaluations; a refused rule or file is one
line naming the JSON path, exit status 2, and nothing written."""

from __future__ import annotations

import io
import json
from pathlib import Path
from typing import Any

import pytest

from rollout import Rollout

from .test_cli import Cli, url

PRO = {"in": [{"var": "plan"}, ["pro", "enterprise"]]}
DOCUMENT: dict[str, Any] = {
    "$schema": "https://flagd.dev/schema/v0/flags.json",
    "flags": {
        "color": {
            "state": "ENABLED",
            "variants": {"red": "#f00", "blue": "#00f"},
            "defaultVariant": "red",
            "targeting": {"if": [{"$ref": "pro"}, "blue", None]},
        },
        "banner": {
            "state": "DISABLED",
            "variants": {"on": True, "off": False},
            "defaultVariant": "on",
        },
    },
    "$evaluators": {"pro": PRO},
}


@pytest.fixture(autouse=True)
def _no_store_env(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.delenv("ROLLOUT_STORE", raising=False)


@pytest.fixture
def cli(tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> Cli:
    return Cli(url(tmp_path / "flags.db"), capsys)


@pytest.fixture
def flagd_file(tmp_path: Path) -> Path:
    path = tmp_path / "flags.flagd.json"
    path.write_text("\n" + json.dumps(DOCUMENT, indent=2))  # as editors leave files
    return path


def test_import_flagd_prints_a_line_per_flag_and_rule_and_evaluates_as_flagd(
    cli: Cli, flagd_file: Path, tmp_path: Path
) -> None:
    out = cli.ok("import-flagd", str(flagd_file), "--as", "alice", "--reason", "from flagd")
    assert out.splitlines() == [
        "loaded banner: variants off, on, default on, DISABLED",
        "loaded color: variants blue, red, default red, targeting",
        "loaded rule pro",
    ]
    pro = cli.json("evaluate", "color", "--targeting-key", "42", "--context", '{"plan": "pro"}')
    assert pro == {
        "flag": "color",
        "value": "#00f",
        "variant": "blue",
        "reason": "TARGETING_MATCH",
        "error_code": None,
        "error_message": None,
    }
    table = cli.ok("evaluate", "color", "--context", '{"plan": "free"}')
    assert table.splitlines()[1:] == ['value    "#f00"', "variant  red", "reason   DEFAULT"]
    disabled = cli.json("evaluate", "banner")
    assert (disabled["value"], disabled["reason"]) == (None, "DISABLED")
    with Rollout(url(tmp_path / "flags.db")) as flags:
        event = flags.history("color")[0]
        assert (event.actor, event.reason) == ("alice", "from flagd")

    # Out again: the same definitions and rules, to stdout or a file.
    exported = json.loads(cli.ok("export-flagd"))
    assert exported["flags"]["color"]["targeting"] == DOCUMENT["flags"]["color"]["targeting"]
    assert exported["$evaluators"] == {"pro": PRO}
    target = tmp_path / "out.json"
    assert cli.ok("export-flagd", str(target)) == f"exported 2 flags and 1 rule to {target}\n"
    assert json.loads(target.read_text()) == exported


def test_an_invalid_flagd_file_names_the_json_path_and_writes_nothing(
    cli: Cli, tmp_path: Path
) -> None:
    bad = json.loads(json.dumps(DOCUMENT))
    bad["flags"]["color"]["targeting"] = {"if": [{"==": [{"var": "plan"}]}, "blue", None]}
    path = tmp_path / "bad.json"
    path.write_text(json.dumps(bad))
    result = cli("import-flagd", str(path))
    assert result.status == 2
    assert result.err.startswith(f"rollout: error: {path}: $.flags.color.targeting.if[0]")
    assert result.err.rstrip().endswith("nothing was imported")
    path.write_text('{"flags": {')
    result = cli("import-flagd", str(path))
    assert (result.status, result.out) == (2, "")
    assert "not JSON" in result.err
    assert json.loads(cli.ok("export-flagd"))["flags"] == {}
    assert cli.json("list") == []


def test_variants_targeting_and_state_from_the_command_line(cli: Cli, tmp_path: Path) -> None:
    definition = {"variants": {"red": "#f00", "blue": "#00f"}, "defaultVariant": "red"}
    assert cli.ok("define-flag", "color", json.dumps(definition)) == (
        "color: variants blue, red, default red\n"
    )
    assert cli.ok("set-variant", "color", "green", '"#0f0"') == (
        "color: variants blue, green, red, default red\n"
    )
    assert cli.ok("set-default-variant", "color", "green").endswith("default green\n")
    rule = tmp_path / "targeting.json"
    rule.write_text(json.dumps({"if": [{"==": [{"var": "plan"}, "pro"]}, "blue", None]}))
    assert cli.ok("set-targeting", "color", f"@{rule}").endswith("default green, targeting\n")
    assert cli.json("evaluate", "color", "--context", '{"plan": "pro"}')["variant"] == "blue"
    shown = cli.ok("variants", "color").splitlines()
    assert shown[0].split() == ["VARIANT", "VALUE"]
    assert shown[2].split() == ["green", '"#0f0"', "default"]  # by name: blue, green, red
    assert shown[4:] == [
        "state: ENABLED",
        'targeting: {"if": [{"==": [{"var": "plan"}, "pro"]}, "blue", null]}',
    ]
    # `show` has it too, after the on/off fields (which do not decide while it has variants).
    assert cli.ok("show", "color").splitlines()[-6:] == [
        'variants            blue = "#00f"',
        '                    green = "#0f0"',
        '                    red = "#f00"',
        "default variant     green",
        'targeting           {"if": [{"==": [{"var": "plan"}, "pro"]}, "blue", null]}',
        "flagd state         ENABLED",
    ]
    assert cli.ok("clear-targeting", "color") == "color: variants blue, green, red, default green\n"
    assert cli.ok("disable-flag", "color").endswith("DISABLED\n")
    assert cli.json("variants", "color")["state"] == "DISABLED"
    assert cli.ok("enable-flag", "color").endswith("default green\n")
    assert (
        cli.ok("remove-variant", "color", "red") == "color: variants blue, green, default green\n"
    )
    assert cli.ok("set-default-variant", "color", "--none").endswith("no default variant\n")
    assert cli.json("evaluate", "color")["reason"] == "DEFAULT"


def test_named_rules_from_the_command_line(cli: Cli) -> None:
    cli.ok("activate", "chat")  # the store exists: `rules` reads it
    assert cli.ok("rules") == "no rules\n"
    assert cli.ok("define-rule", "pro", json.dumps(PRO), "--reason", "plans") == (
        "rule pro: defined\n"
    )
    assert cli.json("rules") == [{"rule": "pro", "logic": PRO}]
    assert cli.json("rules", "pro") == {"rule": "pro", "logic": PRO}
    assert cli.ok("rules").splitlines() == [
        "RULE  LOGIC",
        'pro   {"in": [{"var": "plan"}, ["pro", "enterprise"]]}',
    ]
    refused = cli("define-rule", "beta", '{"in": [{"var": "email"}]}')
    assert refused.status == 2
    assert refused.err.startswith("rollout: error: $.in"), refused.err
    assert "beta" not in cli.ok("rules")
    assert cli.ok("remove-rule", "pro") == "rule pro: removed\n"
    history = cli.json("rule-history", "pro")
    assert [(e["action"], e["reason"]) for e in history] == [
        ("remove_rule", None),
        ("define_rule", "plans"),
    ]
    lines = cli.ok("rule-history", "pro", "--limit", "1").splitlines()
    assert len(lines) == 2
    assert "remove_rule" in lines[1]
    assert f"removed rule pro (was {json.dumps(PRO)})" in lines[1]
    missing = cli("remove-rule", "pro")
    assert (missing.status, missing.err) == (
        2,
        "rollout: error: no rule named 'pro' (nothing was changed)\n",
    )


def test_bad_json_arguments_are_one_line_naming_them(cli: Cli) -> None:
    cli.ok("define-flag", "color", '{"variants": {"red": "#f00"}, "defaultVariant": "red"}')
    for args, named in (
        (("set-targeting", "color", "{if"), "the targeting rule is not valid JSON"),
        (("define-rule", "pro", "@/nonexistent/rule.json"), "/nonexistent/rule.json"),
        (("evaluate", "color", "--context", "[1]"), "--context must be a JSON object"),
        (("evaluate", "colour"), "no flag named 'colour'"),  # a typo fails a script
    ):
        result = cli(*args)
        assert result.status == 2, args
        assert result.err.startswith("rollout: error: "), result.err
        assert named in result.err, result.err
        assert result.err.count("\n") == 1


def test_a_big_flagd_file_says_how_far_it_got_on_stderr(cli: Cli, tmp_path: Path) -> None:
    boolean = {"state": "ENABLED", "variants": {"on": True, "off": False}, "defaultVariant": "off"}
    path = tmp_path / "big.json"
    path.write_text(json.dumps({"flags": {f"f{n:04}": boolean for n in range(1000)}}))
    result = cli("import-flagd", str(path))
    assert result.status == 0, result.err
    assert result.err == f"rollout import-flagd: checked 1000 flags from {path}; loading them\n"
    lines = result.out.splitlines()
    assert len(lines) == 1000
    assert lines[0] == "loaded f0000: variants off, on, default off"


def test_import_flagd_reads_stdin(cli: Cli, monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setattr("sys.stdin", io.TextIOWrapper(io.BytesIO(json.dumps(DOCUMENT).encode())))
    assert cli.json("import-flagd", "-") == {"flags": ["banner", "color"], "rules": ["pro"]}


def test_a_crafted_flagd_file_cannot_write_terminal_controls_through_variants(
    cli: Cli, tmp_path: Path
) -> None:
    # A rule's strings are any JSON text: U+009B is the 8-bit CSI (a terminal reads what
    # follows as a command, here "clear the screen"), U+202E reverses the text shown after it.
    hostile = "\u009b2J\u202epro"
    document = {
        "flags": {
            "color": {
                "state": "ENABLED",
                "variants": {"red": "#f00", "blue": "#00f"},
                "defaultVariant": "red",
                "targeting": {"if": [{"==": [{"var": "plan"}, hostile]}, "blue", None]},
            }
        }
    }
    path = tmp_path / "crafted.json"
    path.write_text(json.dumps(document))
    cli.ok("import-flagd", str(path))
    shown = cli.ok("variants", "color")
    assert all(line.isprintable() for line in shown.splitlines())
    assert "\\u009b2J\\u202epro" in shown  # escaped, still readable as the rule's JSON
