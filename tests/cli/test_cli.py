"""The ``rollout`` command, on real SQLite files: in-process ``main()`` for most cases, and a
few end-to-end runs of the installed command (``python -m rollout`` and the console script)."""

from __future__ import annotations

import json
import os
import subprocess
import sys
from pathlib import Path
from typing import Any, NamedTuple

import pytest

from rollout import Rollout
from rollout.cli import main

SCRIPT = Path(sys.executable).parent / "rollout"


class Result(NamedTuple):
    status: int
    out: str
    err: str


class Cli:
    """Runs ``main(["--store", store, *args])`` in this process and captures its output."""

    def __init__(self, store: str, capsys: pytest.CaptureFixture[str]) -> None:
        self.store = store
        self._capsys = capsys

    def __call__(self, *args: str) -> Result:
        status = main(["--store", self.store, *args])
        captured = self._capsys.readouterr()
        return Result(status, captured.out, captured.err)

    def ok(self, *args: str) -> str:
        result = self(*args)
        assert (result.status, result.err) == (0, ""), result
        return result.out

    def json(self, *args: str) -> Any:
        return json.loads(self.ok("--json", *args))


@pytest.fixture(autouse=True)
def _no_store_env(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.delenv("ROLLOUT_STORE", raising=False)


def url(path: Path) -> str:
    return f"sqlite:///{path}"  # an absolute path gives the four-slash form


@pytest.fixture
def cli(tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> Cli:
    return Cli(url(tmp_path / "flags.db"), capsys)


def snapshot(store: str) -> bytes:
    with Rollout(store) as flags:
        return flags.export()


def assert_one_error_line(result: Result, needle: str) -> None:
    assert result.status == 2
    assert result.out == ""
    lines = result.err.splitlines()
    assert len(lines) == 1, result.err
    assert lines[0].startswith("rollout: error: ")
    assert needle in lines[0]
    assert "Traceback" not in result.err


def run(
    *args: str, tmp_path: Path, env: dict[str, str] | None = None, stdin: bytes = b""
) -> subprocess.CompletedProcess[bytes]:
    environ = {k: v for k, v in os.environ.items() if k != "ROLLOUT_STORE"}
    return subprocess.run(
        args,
        input=stdin,
        capture_output=True,
        cwd=tmp_path,
        env={**environ, **(env or {})},
        timeout=60,
        check=False,
    )


# Users, groups, percentages ----------------------------------------------------------------


def test_activate_user_then_check(cli: Cli) -> None:
    assert cli.ok("activate-user", "f", "42", "7") == "f: on for 2 users\n"
    assert cli("check", "f", "--user", "42") == Result(0, "on\n", "")
    assert cli("check", "f", "--user", "7").status == 0
    assert cli("check", "f", "--user", "8") == Result(1, "off\n", "")
    assert cli("check", "f").status == 1
    assert cli.json("show", "f")["users"] == ["7", "42"]  # 7 before 42, as the table
    assert cli.json("check", "f", "--user", "42") == {
        "flag": "f",
        "user": "42",
        "active": True,
        "state": "partial",
    }


def test_deactivate_user(cli: Cli) -> None:
    cli.ok("activate-user", "f", "1", "2", "3")
    assert cli.json("deactivate-user", "f", "1", "3")["users"] == ["2"]
    assert cli("check", "f", "--user", "1").status == 1


def test_exclude_and_include_user(cli: Cli) -> None:
    cli.ok("activate", "f")
    out = cli.ok("exclude-user", "f", "9", "10")
    assert out == "f: on for everybody except 2 excluded users\n"
    assert cli("check", "f", "--user", "9").status == 1
    assert cli("check", "f", "--user", "11").status == 0
    assert cli.json("include-user", "f", "9")["excluded_users"] == ["10"]
    assert cli("check", "f", "--user", "9").status == 0


def test_groups(cli: Cli) -> None:
    assert cli.ok("activate-group", "f", "all") == "f: on for group all\n"
    assert cli("check", "f", "--user", "anyone").status == 0
    cli.ok("deactivate-group", "f", "all")
    assert cli("check", "f", "--user", "anyone").status == 1
    assert cli.json("show", "f")["groups"] == []


def test_percentages(cli: Cli) -> None:
    assert cli.ok("percentage", "f", "20") == "f: on for 20% of users\n"
    assert cli.json("show", "f")["percentage"] == 20.0
    assert cli.ok("percentage-of-time", "f", "12.5") == (
        "f: on for 20% of users, 12.5% of the time\n"
    )
    cli.ok("percentage", "g", "0")
    cli.ok("percentage-of-time", "g", "100")
    assert cli("check", "g").status == 0  # 100% of checks: no chance involved


def test_activate_deactivate_keeps_data(cli: Cli) -> None:
    cli.ok("data", "f", "owner=web")
    cli.ok("activate-user", "f", "42")
    assert cli.ok("activate", "f") == "f: on for everybody\n"
    assert cli.json("list")[0]["state"] == "on"
    assert cli.ok("deactivate", "f") == "f: off\n"
    [flag] = cli.json("list")
    assert (flag["state"], flag["counts"]["users"], flag["data_keys"]) == ("off", 0, ["owner"])


def test_list_json_is_summaries_with_three_states_and_the_last_change(cli: Cli) -> None:
    cli.ok("activate-user", "partial", *map(str, range(1000)))
    cli.ok("activate", "on")
    cli.ok("data", "off", "description=Old search")
    listed = {flag["flag"]: flag for flag in cli.json("list")}
    assert {name: flag["state"] for name, flag in listed.items()} == {
        "off": "off",
        "on": "on",
        "partial": "partial",
    }
    partial = listed["partial"]
    assert "users" not in partial  # counts, not the members
    assert partial["counts"] == {"users": 1000, "excluded_users": 0, "groups": 0}
    assert listed["off"]["description"] == "Old search"
    assert partial["last_changed"].endswith("Z")
    assert listed["on"]["on_since"] == listed["on"]["last_changed"]
    assert (partial["on_since"], partial["last_checked"], partial["checks"]) == (None, None, None)


def test_data_values_are_json_when_they_parse(cli: Cli) -> None:
    out = cli.ok("data", "f", "owner=web", "limit=5", "tags=[1, 2]", "on=true", "n=NaN", "e=")
    assert out.startswith("f: data {")
    expected = {"owner": "web", "limit": 5, "tags": [1, 2], "on": True, "n": "NaN", "e": ""}
    assert cli.json("show", "f")["data"] == expected
    cli.ok("data", "f", "limit=6")
    assert cli.json("show", "f")["data"]["limit"] == 6  # other keys stay
    assert cli.ok("clear-data", "f") == "f: data cleared\n"
    assert cli.json("show", "f")["data"] == {}


def test_delete(cli: Cli) -> None:
    cli.ok("activate", "f")
    cli.ok("activate", "g")
    assert cli.ok("delete", "f") == "f: deleted\n"
    assert [flag["flag"] for flag in cli.json("list")] == ["g"]
    assert_one_error_line(cli("show", "f"), "'f'")


def test_write_json_is_the_flag_in_full_as_show_and_the_api_give_it(cli: Cli) -> None:
    written = cli.json("percentage", "f", "20")
    assert written["last_changed"].endswith("Z")
    assert isinstance(written["last_changed_by"], str)  # the system user running the command
    changed = ("last_changed", "last_changed_by")
    assert {key: value for key, value in written.items() if key not in changed} == {
        "flag": "f",
        "state": "partial",
        "percentage": 20.0,
        "percentage_of_time": 0.0,
        "users": [],
        "excluded_users": [],
        "groups": [],
        "data": {},
        "counts": {"users": 0, "excluded_users": 0, "groups": 0},
        "on_since": None,
        "last_checked": None,
        "checks": None,
    }
    assert cli.json("show", "f") == written


# Tables ------------------------------------------------------------------------------------


def test_list_table(cli: Cli) -> None:
    Rollout(cli.store).close()  # an empty store: `list` opens existing stores only
    assert cli.ok("list").splitlines() == ["NAME  STATE  PERCENTAGE  OF TIME  USERS  GROUPS"]
    cli.ok("percentage", "chat", "20")
    cli.ok("activate-user", "chat", "1", "2")
    cli.ok("activate-group", "chat", "admins")
    cli.ok("activate", "beta")
    cli.ok("exclude-user", "gamma", "3")
    header, *rows = cli.ok("list").splitlines()
    assert header.split() == ["NAME", "STATE", "PERCENTAGE", "OF", "TIME", "USERS", "GROUPS"]
    assert [row.split() for row in rows] == [
        ["beta", "on", "100%", "0%", "0"],
        ["chat", "partial", "20%", "0%", "2", "admins"],
        ["gamma", "off", "0%", "0%", "0"],
    ]
    # Aligned: every column starts where its header does.
    assert rows[1].index("partial") == header.index("STATE")
    assert rows[1].index("admins") == header.index("GROUPS")


def test_show_table_lists_users(cli: Cli) -> None:
    cli.ok("activate-user", "f", "42", "7")
    cli.ok("data", "f", "owner=web")
    rows = [line.split(maxsplit=1) for line in cli.ok("show", "f").splitlines()]
    assert rows[0] == ["FIELD", "VALUE"]
    assert ["name", "f"] in rows
    assert ["state", "partial"] in rows
    users = rows.index(["users", "7"])
    assert rows[users + 1] == ["42"]  # numeric ids by value
    assert ["data", 'owner = "web"'] in rows


# Global options and the store ---------------------------------------------------------------


def test_global_options_before_or_after_the_command(
    cli: Cli, capsys: pytest.CaptureFixture[str]
) -> None:
    cli.ok("activate", "f")
    assert main(["--json", "--store", cli.store, "list"]) == 0
    before = capsys.readouterr().out
    assert main(["list", "--store", cli.store, "--json"]) == 0
    assert capsys.readouterr().out == before
    assert json.loads(before)[0]["flag"] == "f"


def test_store_env_and_default(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch, capsys: pytest.CaptureFixture[str]
) -> None:
    monkeypatch.chdir(tmp_path)
    assert main(["activate", "default"]) == 0
    assert (tmp_path / "rollout.db").is_file()
    monkeypatch.setenv("ROLLOUT_STORE", url(tmp_path / "env.db"))
    assert main(["activate", "from-env"]) == 0
    with Rollout(url(tmp_path / "env.db")) as flags:
        assert flags.features() == ["from-env"]
    assert main(["--store", url(tmp_path / "other.db"), "activate", "x"]) == 0  # beats the env
    with Rollout(url(tmp_path / "env.db")) as flags:
        assert flags.features() == ["from-env"]


def test_export_then_import(cli: Cli, tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    cli.ok("activate-user", "f", "42")
    cli.ok("percentage", "g", "30")
    cli.ok("data", "g", "owner=web")
    exported = tmp_path / "export.json"
    assert cli.ok("export", str(exported)) == f"exported 2 flags to {exported}\n"
    other = Cli(url(tmp_path / "other.db"), capsys)
    header, *rows = other.ok("import", str(exported)).splitlines()
    assert header.startswith("NAME")
    assert [row.split()[0] for row in rows] == ["f", "g"]
    assert other.json("list") == cli.json("list")
    assert other.ok("import", str(exported)) == "no flags changed\n"
    cli.ok("delete", "f")
    assert cli.ok("export") == snapshot(cli.store).decode()  # stdout: the exact bytes
    cli.ok("export", str(exported))
    assert other.json("import", str(exported)) == {"changed": ["f"]}
    assert other.json("list") == cli.json("list")


# Errors ------------------------------------------------------------------------------------


@pytest.mark.parametrize(
    ("args", "needle"),
    [
        (["percentage", "f", "150"], "150"),
        (["percentage", "f", "NaN"], "nan"),
        (["percentage-of-time", "f", "-1"], "-1"),
        (["percentage", "f", "abc"], "'abc'"),
        (["activate", ""], "''"),
        (["activate-user", "a" * 300, "1"], "300"),
        (["data", "f", "owner"], "'owner'"),
        (["data", "f", "=5"], "''"),
        (["show", "missing"], "'missing'"),
        # Deep nesting: 33 levels, and 1,000 (past the JSON parser's own limit).
        (["data", "f", "k=" + "[" * 33 + "]" * 33], "data['k'] nests more than 32 levels"),
        (["data", "f", "k=" + "[" * 1000 + "]" * 1000], "data['k'] nests more than 32 levels"),
        # Text that is not Unicode: a JSON escape, and bytes not UTF-8 (as argv decodes them).
        (["data", "f", 'k="x\\ud800"'], "lone surrogate"),
        (["data", "f", "k\udcff=1"], "data key holds a lone surrogate"),
        (["activate", "x\udcff"], "name holds a lone surrogate"),
        (["activate-user", "f", "u\udcff"], "id holds a lone surrogate"),
        (["activate-group", "f", "g\udcff"], "group holds a lone surrogate"),
        (["activate", "f", "--reason", "r\udcff"], "reason holds a lone surrogate"),
        # The naming rule.
        (["activate", " f"], "whitespace"),
        (["activate", ".."], "'.' or '..'"),
    ],
)
def test_bad_values_are_one_error_line(cli: Cli, args: list[str], needle: str) -> None:
    cli.ok("percentage", "f", "20")
    before = snapshot(cli.store)
    assert_one_error_line(cli(*args), needle)
    assert snapshot(cli.store) == before


@pytest.mark.parametrize(
    "content",
    [
        b"\x00garbage\xff",
        b'{"format": "other"}',
        b"",
        b'{"format":"rollout","version":1,"flags":' + b"[" * 100_000 + b"]" * 100_000 + b"}",
        b'{"format":"rollout","version":1,"flags":{"x\\ud800":{}}}',
        b'{"format":"rollout","version":1,"flags":{"f":{"data:k":[1,0,1,"x\\udfff"]}}}',
        b'{"format":"rollout","version":1,"flags":{"f":{"data:k":[1,0,1,'
        + b"[" * 40
        + b"]" * 40
        + b"]}}}",
    ],
    ids=["garbage", "other format", "empty", "100,000 deep", "name", "data", "data 40 deep"],
)
def test_corrupt_import_changes_nothing(cli: Cli, tmp_path: Path, content: bytes) -> None:
    cli.ok("activate", "f")
    before = snapshot(cli.store)
    corrupt = tmp_path / "corrupt.json"
    corrupt.write_bytes(content)
    assert_one_error_line(cli("import", str(corrupt)), "rollout export")
    assert_one_error_line(cli("import", str(tmp_path / "missing.json")), "missing.json")
    assert snapshot(cli.store) == before


def test_unusable_stores(tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    directory = tmp_path / "dir.db"
    directory.mkdir()
    garbage = tmp_path / "garbage.db"
    garbage.write_bytes(b"this is not an SQLite database, just bytes\x00\xff" * 100)
    for path in (directory, garbage):
        result = Cli(url(path), capsys)("activate", "f")
        assert_one_error_line(result, str(path))
    assert list(directory.iterdir()) == []
    assert garbage.read_bytes() == b"this is not an SQLite database, just bytes\x00\xff" * 100
    assert_one_error_line(Cli("mysql://x", capsys)("list"), "'mysql'")
    refused = Cli("postgresql://postgres@127.0.0.1:1/test", capsys)("list")
    assert_one_error_line(refused, "cannot open PostgreSQL store")
    assert_one_error_line(Cli("redis://127.0.0.1:1/0", capsys)("list"), "cannot read Redis")


def test_usage_errors_and_help(capsys: pytest.CaptureFixture[str]) -> None:
    assert main([]) == 2
    assert main(["percentage", "f"]) == 2
    assert main(["no-such-command"]) == 2
    assert main(["--help"]) == 0
    commands = ["list", "show", "check", "activate", "deactivate", "activate-user"]
    commands += ["deactivate-user", "exclude-user", "include-user", "activate-group"]
    commands += ["deactivate-group", "percentage", "percentage-of-time", "data", "clear-data"]
    commands += ["delete", "export", "import"]
    overview = capsys.readouterr().out
    for command in commands:
        assert f"    {command}" in overview
        assert main([command, "--help"]) == 0
        text = capsys.readouterr().out
        assert f"usage: rollout {command}" in text
        assert "--store URL" in text


# End to end: the installed command ---------------------------------------------------------


def test_module_end_to_end_with_store_env(tmp_path: Path) -> None:
    env = {"ROLLOUT_STORE": url(tmp_path / "e2e.db")}
    rollout = [sys.executable, "-m", "rollout"]
    activated = run(*rollout, "activate-user", "f", "42", tmp_path=tmp_path, env=env)
    assert (activated.returncode, activated.stdout) == (0, b"f: on for 1 user\n")
    assert run(*rollout, "check", "f", "--user", "42", tmp_path=tmp_path, env=env).returncode == 0
    off = run(*rollout, "check", "f", "--user", "7", tmp_path=tmp_path, env=env)
    assert (off.returncode, off.stdout) == (1, b"off\n")


def test_script_export_pipes_into_import(tmp_path: Path) -> None:
    first, second = url(tmp_path / "a.db"), url(tmp_path / "b.db")
    run(str(SCRIPT), "--store", first, "percentage", "f", "25", tmp_path=tmp_path)
    exported = run(str(SCRIPT), "export", "--store", first, tmp_path=tmp_path)
    imported = run(
        str(SCRIPT), "import", "--store", second, tmp_path=tmp_path, stdin=exported.stdout
    )
    assert imported.returncode == 0
    lists = [
        run(str(SCRIPT), "list", "--json", "--store", s, tmp_path=tmp_path) for s in (first, second)
    ]
    assert lists[0].stdout == lists[1].stdout
    assert json.loads(lists[0].stdout)[0]["percentage"] == 25.0


@pytest.mark.parametrize(
    "args",
    [
        ["percentage", "f", "150"],
        ["import"],  # stdin is a corrupt file
        ["--store", "sqlite:///garbage.db", "list"],
        ["data", "f", "k=" + "[" * 1000 + "]" * 1000],
        ["activate", "x\udcff"],  # the byte 0xff, not UTF-8, given on the command line
    ],
)
def test_errors_end_to_end_have_no_traceback(tmp_path: Path, args: list[str]) -> None:
    (tmp_path / "garbage.db").write_bytes(b"\xde\xad\xbe\xef" * 1000)
    env = {"ROLLOUT_STORE": url(tmp_path / "e2e.db")}
    result = run(sys.executable, "-m", "rollout", *args, tmp_path=tmp_path, env=env, stdin=b"{[")
    assert result.returncode == 2
    assert result.stdout == b""
    [line] = result.stderr.decode().splitlines()
    assert line.startswith("rollout: error: ")


@pytest.mark.parametrize("command", [["members"], ["quarantine"]])
@pytest.mark.parametrize("seconds", ["1e308", "86401", "inf", "nan", "0"])
def test_a_url_commands_timeout_out_of_range_is_one_line(
    command: list[str], seconds: str, tmp_path: Path
) -> None:
    """A huge --timeout reached the socket and raised OverflowError (a traceback, exit 1)."""
    from ..admin.serve_process import clean_env, rollout

    url = "http://127.0.0.1:9"  # never asked: the value is refused first
    result = rollout(*command, "--url", url, "--timeout", seconds, cwd=tmp_path, env=clean_env())
    assert result.returncode == 2, result.stderr
    assert result.stderr.startswith("rollout: error: --timeout must be"), result.stderr
    assert len(result.stderr.splitlines()) == 1, result.stderr
    assert "at most 86400" in result.stderr


@pytest.mark.parametrize(
    "args",
    [
        ["--secret", "x" * 43, "--peers", "127.0.0.1:9", "list"],
        ["serve", "--http", "0.0.0.0:0", "--token", "y" * 43],
    ],
    ids=["secret", "token"],
)
def test_a_one_letter_secret_is_about_0_bits_not_minus_0(args: list[str], tmp_path: Path) -> None:
    from ..admin.serve_process import clean_env, rollout

    result = rollout("--store", "memory://", *args, cwd=tmp_path, env=clean_env())
    assert result.returncode == 2, result.stderr
    assert "about 0 bits" in result.stderr, result.stderr


def test_a_bad_id_among_many_is_named_by_its_place_as_the_api_names_it(cli: Cli) -> None:
    # The API answers users[1] for {"users": ["42", ""]}; the CLI said "users item id".
    cli.ok("activate", "f")
    for command in ("activate-user", "exclude-user", "deactivate-user", "include-user"):
        refused = cli(command, "f", "42", "")
        assert refused == Result(2, "", "rollout: error: users[1] id must not be empty, got ''\n")
    assert cli.json("show", "f")["counts"] == {"users": 0, "excluded_users": 0, "groups": 0}
