"""The register-key schema (rollout._core.keys): the generated SQL, run by SQLite, and the
generated Lua, run by Redis, agree with the Python predicates on every kind of key.

The stores drop hidden registers with these predicates (SQLite in SQL, Redis in Lua) while each
replica drops them in Python; a key on which they disagreed would be visible in one place and
gone in another. The Redis part runs on the suite's Redis (tests/redis/redis_fixtures.py): it
skips without one locally and fails under ``CI=true``.
"""

from __future__ import annotations

import sqlite3
from collections.abc import Callable, Iterator

import pytest
import redis
from hypothesis import example, given
from hypothesis import strategies as st

from rollout._core import keys
from rollout._core.clock import Timestamp
from rollout._core.keys import (
    DATA,
    EXCLUDE,
    GROUP,
    HISTORY,
    MEMBER_PREFIXES,
    PLAIN_KEYS,
    PREFIXES,
    SEPARATOR,
    USER,
    history_key,
    is_data,
    is_definition,
    is_history,
    is_targeting,
    member_key,
    split_key,
    valid_history_key,
)

from ..redis.redis_fixtures import redis_url  # noqa: F401  (fixture)

#: The Python predicates, by name; the SQL and Lua generators of the same name must agree.
PREDICATES: dict[str, Callable[[str], bool]] = {
    "targeting": is_targeting,
    "data": is_data,
    "definition": is_definition,
    "history": is_history,
}
SQL = {
    "targeting": keys.sql_is_targeting,
    "data": keys.sql_is_data,
    "definition": keys.sql_is_definition,
    "history": keys.sql_is_history,
}
LUA = {
    "targeting": keys.lua_is_targeting,
    "data": keys.lua_is_data,
    "definition": keys.lua_is_definition,
    "history": keys.lua_is_history,
}

# Characters that break hand-written SQL or Lua: the separator, LIKE's and GLOB's wildcards,
# quotes and escapes, multi-byte UTF-8 (Lua counts bytes, SQLite characters), NUL.
TRICKY = [":", "%", "_", "*", "?", "[", "'", '"', "\\", "é", "用", "😀", "\x00", " ", "\n"]

texts = st.text(
    st.one_of(st.sampled_from(TRICKY), st.characters(exclude_categories=["Cs"])), max_size=12
)
timestamps = st.builds(
    Timestamp,
    st.integers(0, 10**16 - 1),
    st.integers(0, 10**10 - 1),
    st.integers(0, 2**63 - 1),
)
# Keys that look almost like ours: a prefix without its separator, in capitals, one character
# short or long, with a space in front.
_NAMES = sorted(PLAIN_KEYS | set(PREFIXES))
NEAR_MISSES = sorted(
    {
        variant
        for name in _NAMES
        for variant in (name[:-1], name[1:], name.upper(), name + "s", " " + name, name + SEPARATOR)
    }
    - set(_NAMES)
)
register_keys = st.one_of(
    st.sampled_from(_NAMES),
    st.builds(lambda prefix, member: prefix + member, st.sampled_from(PREFIXES), texts),
    st.builds(history_key, timestamps),
    st.builds(lambda near, rest: near + rest, st.sampled_from(NEAR_MISSES), texts),
    texts,
)
#: One of every kind, always tried.
EVERY_KIND = [
    *_NAMES,
    *(prefix + member for prefix in PREFIXES for member in ("42", "a:b", "%_'\"é用户")),
    history_key(Timestamp(1_700_000_000_000, 3, 2**63 - 1)),
    *NEAR_MISSES,
    "",
]


def expected(key: str) -> dict[str, bool]:
    return {name: predicate(key) for name, predicate in PREDICATES.items()}


# The schema itself ----------------------------------------------------------------------------


def test_prefixes_end_at_their_only_separator_and_plain_keys_have_none() -> None:
    # split_key relies on this: the text up to the first separator is the whole prefix.
    for prefix in PREFIXES:
        assert prefix.endswith(SEPARATOR), prefix
        assert prefix.count(SEPARATOR) == 1, prefix
    for key in PLAIN_KEYS:
        assert SEPARATOR not in key, key
    names = [*PLAIN_KEYS, *PREFIXES]
    assert len(set(names)) == len(names)


def test_each_kind_of_key_is_hidden_by_the_watermark_of_the_table() -> None:
    assert sorted(k for k in PLAIN_KEYS if is_targeting(k)) == ["percentage", "percentage_of_time"]
    assert not any(is_data(k) or is_history(k) for k in PLAIN_KEYS)
    for prefix in (USER, EXCLUDE, GROUP):
        assert is_targeting(prefix + "x")
        assert not is_data(prefix + "x")
    assert is_data(DATA + "x")
    assert not is_targeting(DATA + "x")
    for key in (*keys.WATERMARKS, keys.EXISTS, history_key(Timestamp(1, 2, 3))):
        assert not is_targeting(key)
        assert not is_data(key)
        assert not is_definition(key)


def test_definition_registers_are_hidden_by_definition_reset_alone() -> None:
    definition = [keys.DEFAULT_VARIANT, keys.TARGETING_RULE, keys.DISABLED, keys.VARIANT + "on"]
    assert sorted(k for k in PLAIN_KEYS if is_definition(k)) == sorted(definition[:3])
    for key in definition:
        assert is_definition(key)
        assert not is_targeting(key)
        assert not is_data(key)
        assert not is_history(key)
    # Named rules are never hidden: removing one writes null to its own register.
    rule = keys.RULE + "beta-testers"
    assert [p(rule) for p in (is_definition, is_targeting, is_data, is_history)] == [False] * 4


def test_the_rules_entity_is_a_name_no_flag_can_take() -> None:
    from rollout._core.validate import flag_name, name_problem

    assert name_problem(keys.RULES_ENTITY) is not None
    with pytest.raises(ValueError, match="whitespace"):
        flag_name(keys.RULES_ENTITY)
    assert keys.RULES_ENTITY.isprintable()


@given(st.sampled_from(MEMBER_PREFIXES), texts)
def test_member_keys_split_back_into_prefix_and_member(prefix: str, member: str) -> None:
    assert split_key(member_key(prefix, member)) == (prefix, member)


def test_member_key_refuses_what_is_not_a_member_prefix() -> None:
    for prefix in (HISTORY, "user", "users:", keys.EXISTS):
        with pytest.raises(ValueError, match="not a member prefix"):
            member_key(prefix, "42")


@given(register_keys)
@example("user")
@example("history")
@example(":user:")
def test_split_key_finds_exactly_the_keys_that_start_with_a_prefix(key: str) -> None:
    starts = [prefix for prefix in PREFIXES if key.startswith(prefix)]
    split = split_key(key)
    if starts:
        assert split == (starts[0], key[len(starts[0]) :])
    else:
        assert split is None


@given(st.lists(timestamps, min_size=2, max_size=10))
def test_history_keys_sort_as_their_timestamps_and_are_valid(stamps: list[Timestamp]) -> None:
    assert sorted(history_key(ts) for ts in stamps) == [history_key(ts) for ts in sorted(stamps)]
    for ts in stamps:
        assert valid_history_key(history_key(ts))
        assert is_history(history_key(ts))
    assert not valid_history_key(HISTORY + "1")
    assert not valid_history_key(history_key(stamps[0])[:-1] + "x")


# SQL, in SQLite --------------------------------------------------------------------------------


@pytest.fixture(scope="module")
def sqlite() -> Iterator[sqlite3.Connection]:
    connection = sqlite3.connect(":memory:", isolation_level=None)
    # The store's table: the history predicate must work on its primary key.
    connection.execute(
        "CREATE TABLE registers (flag TEXT NOT NULL, key TEXT NOT NULL, PRIMARY KEY (flag, key))"
        " WITHOUT ROWID"
    )
    try:
        yield connection
    finally:
        connection.close()


def sql_answers(connection: sqlite3.Connection, sample: list[str]) -> dict[str, dict[str, bool]]:
    """Each key's answer from each generated predicate, as SQLite computes them in a WHERE."""
    connection.execute("DELETE FROM registers")
    connection.executemany("INSERT INTO registers VALUES ('f', ?)", [(k,) for k in set(sample)])
    answers: dict[str, dict[str, bool]] = {key: {} for key in sample}
    for name, generate in SQL.items():
        query = f"SELECT r.key FROM registers AS r WHERE r.flag = 'f' AND {generate('r.key')}"
        chosen = {row[0] for row in connection.execute(query)}
        for key in sample:
            answers[key][name] = key in chosen
    return answers


def test_sql_predicates_agree_on_every_kind_of_key(sqlite: sqlite3.Connection) -> None:
    answers = sql_answers(sqlite, EVERY_KIND)
    assert answers == {key: expected(key) for key in EVERY_KIND}


@given(st.lists(register_keys, max_size=30))
def test_sql_predicates_agree_with_python(sqlite: sqlite3.Connection, sample: list[str]) -> None:
    assert sql_answers(sqlite, sample) == {key: expected(key) for key in sample}


def test_the_sql_history_predicate_searches_the_primary_key(sqlite: sqlite3.Connection) -> None:
    # Why it is a key range: pruning a flag's history must not read all its users.
    query = f"SELECT key FROM registers WHERE flag = 'f' AND {keys.sql_is_history('key')}"
    plan = " ".join(row[-1] for row in sqlite.execute(f"EXPLAIN QUERY PLAN {query}"))
    assert "SEARCH registers USING PRIMARY KEY (flag=? AND key>? AND key<?)" in plan


def test_sql_prefix_lengths_are_computed_from_the_prefixes() -> None:
    text = keys.sql_is_targeting("k")
    for prefix in (USER, EXCLUDE, GROUP):
        assert f"substr(k, 1, {len(prefix)}) = '{prefix}'" in text


@given(texts.filter(lambda text: "\x00" not in text))
def test_sql_literals_read_back_as_the_text(sqlite: sqlite3.Connection, text: str) -> None:
    assert sqlite.execute(f"SELECT {keys.sql_literal(text)}").fetchone() == (text,)


def test_sql_literal_refuses_nul() -> None:
    with pytest.raises(ValueError, match="NUL"):
        keys.sql_literal("a\x00b")


# Lua, in Redis ---------------------------------------------------------------------------------

# One bit per predicate, for every key in ARGV.
_LUA_SCRIPT = "\n".join(
    [
        "local out = {}",
        "for i, field in ipairs(ARGV) do",
        "  local bits = 0",
        *(
            f"  if {generate('field')} then bits = bits + {2**n} end"
            for n, generate in enumerate(LUA.values())
        ),
        "  out[i] = bits",
        "end",
        "return out",
    ]
)


@pytest.fixture(scope="module")
def redis_client(redis_url: str) -> Iterator[redis.Redis]:  # noqa: F811
    client = redis.Redis.from_url(redis_url, socket_timeout=10)
    try:
        yield client
    finally:
        client.close()


@pytest.fixture(scope="module")
def lua_answers(redis_client: redis.Redis) -> Callable[[list[str]], dict[str, dict[str, bool]]]:
    script = redis_client.register_script(_LUA_SCRIPT)

    def answers(sample: list[str]) -> dict[str, dict[str, bool]]:
        bits = script(keys=[], args=sample) if sample else []
        return {
            key: {name: bool(b & 2**n) for n, name in enumerate(LUA)}
            for key, b in zip(sample, bits, strict=True)
        }

    return answers


def test_lua_predicates_agree_on_every_kind_of_key(
    lua_answers: Callable[[list[str]], dict[str, dict[str, bool]]],
) -> None:
    assert lua_answers(EVERY_KIND) == {key: expected(key) for key in EVERY_KIND}


@given(st.lists(register_keys, max_size=30))
def test_lua_predicates_agree_with_python(
    lua_answers: Callable[[list[str]], dict[str, dict[str, bool]]], sample: list[str]
) -> None:
    assert lua_answers(sample) == {key: expected(key) for key in sample}


def test_lua_prefix_lengths_are_computed_in_bytes() -> None:
    text = keys.lua_is_targeting("f")
    for prefix in (USER, EXCLUDE, GROUP):
        assert f"string.sub(f, 1, {len(prefix.encode())}) == '{prefix}'" in text


@given(texts)
def test_lua_literals_read_back_as_the_text(redis_client: redis.Redis, text: str) -> None:
    literal = keys.lua_literal(text)
    assert literal.isascii()
    assert redis_client.eval(f"return {literal}", 0) == text.encode()
