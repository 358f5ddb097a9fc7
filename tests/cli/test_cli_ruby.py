"""``rollout import-ruby`` / ``export-ruby`` against a real Redis holding the gem's records.

The records are the golden file's (written by the real gem 2.6.2), put into Redis raw under a
namespace of this test's own, as redis-namespace would (``NS:feature:...``).
"""

from __future__ import annotations

import json
from collections.abc import Callable, Iterator
from pathlib import Path
from typing import Any, NamedTuple

import pytest
import redis

from rollout import Rollout
from rollout.cli import main

from ..redis.redis_fixtures import namespace, redis_url  # noqa: F401  (fixtures)
from ..redis.test_ruby_format import FLAG_RECORDS, RECORDS, STEPS

#: Every key the gem left after the last golden call, and its value.
LAST: dict[str, str] = RECORDS[-1]["keys"]


class Result(NamedTuple):
    status: int
    out: str
    err: str


class Ruby:
    """The gem's Redis under the test's namespace (``ns``), and the CLI run on ``store``."""

    def __init__(self, url: str, ns: str, store: str, capsys: pytest.CaptureFixture[str]):
        self.url, self.ns, self.store = url, ns, store
        self.raw = redis.Redis.from_url(url)  # bytes in, bytes out
        self._capsys = capsys

    def run(self, *args: str) -> Result:
        status = main(list(args))
        captured = self._capsys.readouterr()
        return Result(status, captured.out, captured.err)

    def import_(self, *more: str, ns: str = "", store: str = "") -> Result:
        return self._command("import-ruby", more, ns, store)

    def export(self, *more: str, ns: str = "", store: str = "") -> Result:
        return self._command("export-ruby", more, ns, store)

    def _command(self, command: str, more: tuple[str, ...], ns: str, store: str) -> Result:
        ns, store = ns or self.ns, store or self.store
        return self.run(
            "--store", store, command, "--redis", self.url, "--ruby-namespace", ns, *more
        )

    def put(self, keys: dict[str, str], ns: str = "") -> None:
        self.raw.mset({f"{ns or self.ns}:{key}": value.encode() for key, value in keys.items()})

    def keys(self, ns: str = "") -> dict[str, bytes]:
        prefix = f"{ns or self.ns}:"
        # Only this namespace's own keys, not those of a namespace nested in it (NS:out:...).
        found = sorted(key.decode() for key in self.raw.scan_iter(match=f"{prefix}feature:*"))
        values = self.raw.mget(found) if found else []
        pairs = zip(found, values, strict=True)
        return {key[len(prefix) :]: value for key, value in pairs if isinstance(value, bytes)}

    def flags(self, store: str = "") -> dict[str, dict[str, Any]]:
        with Rollout(store or self.store) as flags:
            return {name: flags.get(name).to_dict() for name in flags.features()}


@pytest.fixture
def ruby(
    redis_url: str,  # noqa: F811
    namespace: str,  # noqa: F811
    tmp_path: Path,
    capsys: pytest.CaptureFixture[str],
    monkeypatch: pytest.MonkeyPatch,
) -> Iterator[Ruby]:
    monkeypatch.delenv("ROLLOUT_STORE", raising=False)
    helper = Ruby(redis_url, namespace, f"sqlite:///{tmp_path / 'flags.db'}", capsys)
    yield helper
    helper.raw.close()


def encoded(keys: dict[str, str]) -> dict[str, bytes]:
    return {key: value.encode() for key, value in keys.items()}


# import-ruby --------------------------------------------------------------------------------


def test_import_copies_the_gem_records_into_the_store(ruby: Ruby) -> None:
    ruby.put(LAST)
    result = ruby.import_()
    assert (result.status, result.err) == (0, "")
    assert result.out.splitlines() == [
        "NAME    PERCENTAGE  USERS  GROUPS",
        "chat    20%         2      caretakers",
        "signup  0%          0",
    ]
    flags = ruby.flags()
    assert sorted(flags) == ["chat", "signup"]
    assert flags["chat"]["percentage"] == 20.0
    assert flags["chat"]["users"] == ["7", "user-9"]
    assert flags["chat"]["groups"] == ["caretakers"]
    assert flags["chat"]["data"] == {"description": "Chat v2", "owner": "a|b"}
    signup = flags["signup"]
    assert (signup["percentage"], signup["users"], signup["groups"], signup["data"]) == (
        0.0,
        [],
        [],
        {},
    )


def test_import_json_lists_the_imported_flags(ruby: Ruby) -> None:
    ruby.put(LAST)
    result = ruby.import_("--json")
    assert (result.status, result.err) == (0, "")
    assert json.loads(result.out) == list(ruby.flags().values())


def test_import_with_no_gem_flags_imports_nothing(ruby: Ruby) -> None:
    assert ruby.import_() == (0, f"no flags listed under {ruby.ns}:feature:__features__\n", "")
    assert ruby.flags() == {}


@pytest.mark.parametrize(
    ("value", "complaint"),
    [
        ("abc|||{}", "percentage 'abc' is not a number"),
        ("20|||[1]", "data is not a JSON object"),
        ("20||ok,tab\there|{}", "control characters"),  # the gem takes it; we do not
        ('20|||{"k":' + "[" * 1000 + "]" * 1000 + "}", "data is not JSON"),  # past the parser
        ('20|||{"k":' + "[" * 40 + "]" * 40 + "}", "nests more than 32 levels"),
        ('20|||{"k":"x\\ud800"}', "lone surrogate"),
        ("20||admins |{}", "whitespace"),
    ],
)
def test_a_malformed_record_imports_nothing(ruby: Ruby, value: str, complaint: str) -> None:
    # The good flags come first in the list: they must not be written either.
    ruby.put({**LAST, "feature:__features__": "chat,signup,bad", "feature:bad": value})
    with Rollout(ruby.store) as flags:
        flags.activate("existing")
    result = ruby.import_()
    assert (result.status, result.out) == (2, "")
    assert result.err.count("\n") == 1
    assert result.err.startswith(f"rollout: error: {ruby.ns}:feature:bad: ")
    assert complaint in result.err
    assert result.err.endswith("; nothing was imported\n")
    assert sorted(ruby.flags()) == ["existing"]


def test_an_unreachable_redis_is_one_line(ruby: Ruby) -> None:
    result = ruby.run("--store", ruby.store, "import-ruby", "--redis", "redis://127.0.0.1:1/0")
    assert (result.status, result.out) == (2, "")
    assert result.err.startswith("rollout: error: Ruby rollout Redis: ")
    assert result.err.count("\n") == 1


# export-ruby --------------------------------------------------------------------------------


def test_export_of_the_golden_calls_writes_the_gem_bytes(ruby: Ruby) -> None:
    with Rollout(ruby.store) as flags:
        for step in STEPS:
            step.call(flags)
    result = ruby.export()
    assert result == (0, f"exported 2 flags to Redis (namespace {ruby.ns})\n", "")
    assert ruby.keys() == encoded(LAST)


def test_export_keeps_other_gem_flags_and_their_place(ruby: Ruby) -> None:
    ruby.put({"feature:__features__": "legacy,signup", "feature:legacy": "5|||{}"})
    with Rollout(ruby.store) as flags:
        flags.activate("chat")
        flags.activate("signup")
    result = ruby.export("--json")
    assert (result.status, result.err) == (0, "")
    assert json.loads(result.out) == {"exported": ["chat", "signup"]}
    assert ruby.keys() == {
        "feature:__features__": b"legacy,signup,chat",
        "feature:legacy": b"5|||{}",
        "feature:chat": b"100|||{}",
        "feature:signup": b"100|||{}",
    }


@pytest.mark.parametrize(
    ("kind", "write"),
    [
        ("user id 'a,b'", lambda f: f.activate_users("chat", ["ok", "a,b"])),
        ("group name 'a|b'", lambda f: f.activate_group("chat", "a|b")),
        ("flag name 'a,b'", lambda f: f.activate("a,b")),
        ("flag name '__features__'", lambda f: f.activate("__features__")),
    ],
)
def test_what_the_format_cannot_hold_is_refused_and_nothing_written(
    ruby: Ruby, kind: str, write: Callable[[Rollout], None]
) -> None:
    with Rollout(ruby.store) as flags:
        flags.activate("alpha")  # representable, and still not written
        write(flags)
    result = ruby.export()
    assert (result.status, result.out) == (2, "")
    assert result.err.count("\n") == 1
    assert kind in result.err
    assert result.err.endswith("; nothing was exported\n")
    assert ruby.keys() == {}


def test_what_the_format_leaves_out_is_noted(ruby: Ruby) -> None:
    with Rollout(ruby.store) as flags:
        flags.activate("chat")
        flags.exclude_user("chat", "9")
        flags.activate("other")
    result = ruby.export()
    assert result.status == 0
    assert result.err == (
        "rollout: note: chat: excluded users and percentage of time have no place in the Ruby "
        "format and were left out\n"
    )
    assert ruby.keys()["feature:chat"].split(b"|") == [b"100.0", b"", b"", b"{}"]


# Round trips: gem record -> import -> export -> the same bytes ------------------------------

#: Besides the golden records, what our state cannot hold in order by itself: ids and data keys
#: out of order, a Float percentage and nothing else, an Integer percentage set last.
ROUND_TRIP = sorted(
    {
        *FLAG_RECORDS,
        "20|user-9,7,10|b,a|{}",
        '0.0|||{"z":1,"a":[2.5,1.0e+20],"m":"Zoë"}',
        "0.0|||{}",
        "20.0|||{}",
        "0|||{}",
        "100|x|g|{}",
        '33.3|1,2,3|all|{"k":null}',
    }
)


@pytest.mark.parametrize("record", ROUND_TRIP)
def test_a_gem_record_comes_back_byte_for_byte(ruby: Ruby, record: str) -> None:
    ruby.put({"feature:__features__": "f", "feature:f": record})
    assert ruby.import_().status == 0
    out = f"{ruby.ns}:out"
    assert ruby.export(ns=out).status == 0
    assert ruby.keys(out) == encoded({"feature:__features__": "f", "feature:f": record})


def test_every_golden_step_comes_back_byte_for_byte(ruby: Ruby, tmp_path: Path) -> None:
    for number, golden in enumerate(RECORDS):
        source, out = f"{ruby.ns}:in{number}", f"{ruby.ns}:out{number}"
        store = f"sqlite:///{tmp_path / f'{number}.db'}"
        ruby.put(golden["keys"], ns=source)
        assert ruby.import_(ns=source, store=store).status == 0
        assert ruby.export(ns=out, store=store).status == 0
        assert ruby.keys(out) == encoded(golden["keys"]), golden["after"]


def test_the_feature_list_order_comes_back(ruby: Ruby) -> None:
    keys = {
        "feature:__features__": "zeta,alpha,mid",
        "feature:zeta": "5|||{}",
        "feature:alpha": "0.0||g|{}",
        "feature:mid": "100|||{}",
    }
    ruby.put(keys)
    assert ruby.import_().status == 0
    assert ruby.export(ns=f"{ruby.ns}:out").status == 0
    assert ruby.keys(f"{ruby.ns}:out") == encoded(keys)


def test_exporting_over_the_records_it_came_from_changes_nothing(ruby: Ruby) -> None:
    ruby.put(LAST)
    assert ruby.import_().status == 0
    assert ruby.export().status == 0
    assert ruby.keys() == encoded(LAST)
