"""The register keys of a flag: the schema, in one place.

A flag's state (:mod:`rollout._core.state`) is a map of last-writer-wins registers under string
keys. These are all the keys there are:

=======================  ===================  ===========================================
key                      value                hidden by (dropped when older than it)
=======================  ===================  ===========================================
``exists``               true / false         never (``delete`` writes false)
``reset``                none: a watermark    never
``data_reset``           none: a watermark    never
``percentage``           number 0 to 100      ``reset``
``percentage_of_time``   number 0 to 100      ``reset``
``user:<id>``            true / false         ``reset``
``exclude:<id>``         true / false         ``reset``
``group:<name>``         true / false         ``reset``
``data:<key>``           any JSON value       ``data_reset``
``definition_reset``     none: a watermark    never
``variant:<name>``       a JSON value; null:  ``definition_reset``
                         the variant removed
``default_variant``      a variant name, or   ``definition_reset``
                         null (none)
``targeting``            a JsonLogic rule, or ``definition_reset``
                         null (none)
``disabled``             true / false         ``definition_reset``
``rule:<name>``          a JsonLogic rule;    never (only on the rules entity, below)
                         null: removed
``history:<timestamp>``  an event object      never (only the newest N are kept)
=======================  ===================  ===========================================

The keys ``reset`` hides are the *targeting* registers: everything that decides who gets an
on/off flag. The keys ``definition_reset`` hides are the *definition* registers: a flag's
variants, default variant, JsonLogic targeting rule and state, in flagd's terms (a flag "has a
definition" when it has a variant). ``delete`` and ``define_flag`` (which replaces a whole
definition) write that watermark; each variant is its own register, so two processes that
change two different variants at once both keep their change.

Named rules (flagd's ``$evaluators``, also groups of on/off flags) are the ``rule:<name>``
registers of one reserved entity, :data:`RULES_ENTITY`, stored and replicated like a flag. Its
name is one the naming rule refuses for a flag (it begins with a space), so no flag can take
it, and it holds nothing but rules and their history: it never exists as a flag.

A prefixed key is its prefix followed by a member, which may be any non-empty text,
``:`` included: only the first ``:`` ends the prefix, since no prefix holds another one.

The hiding rule is applied in three languages: in Python by every replica (and the memory
store), in SQL by the SQLite store (it prunes inside its write transaction) and in Lua by the
Redis store (it merges inside one script). All three must agree on every key, or a store keeps
what every replica drops, or drops what they keep. So the SQL and Lua predicates are generated
here from the same constants, with prefix lengths computed rather than typed: renaming a prefix,
or adding a targeting key, then changes all three at once, and no ``substr(key, 1, 8)`` can
drift from its ``'exclude:'``. tests/core/test_keys.py runs the generated text in real SQLite
and a real Redis against the Python predicates.
"""

from __future__ import annotations

from .clock import Timestamp

__all__ = [
    "DATA",
    "DATA_RESET",
    "DEFAULT_VARIANT",
    "DEFINITION_RESET",
    "DEFINITION_SCALARS",
    "DISABLED",
    "EXCLUDE",
    "EXISTS",
    "GROUP",
    "HISTORY",
    "MEMBER_PREFIXES",
    "PERCENTAGE",
    "PLAIN_KEYS",
    "PREFIXES",
    "RESET",
    "RULE",
    "RULES_ENTITY",
    "SEPARATOR",
    "TARGETING_PREFIXES",
    "TARGETING_RULE",
    "TARGETING_SCALARS",
    "TIME",
    "USER",
    "VARIANT",
    "WATERMARKS",
    "history_key",
    "is_data",
    "is_definition",
    "is_history",
    "is_targeting",
    "lua_is_data",
    "lua_is_definition",
    "lua_is_history",
    "lua_is_targeting",
    "lua_literal",
    "member_key",
    "split_key",
    "sql_is_data",
    "sql_is_definition",
    "sql_is_history",
    "sql_is_targeting",
    "sql_literal",
    "valid_history_key",
]

# The keys ------------------------------------------------------------------------------------

EXISTS = "exists"
RESET = "reset"
DATA_RESET = "data_reset"
PERCENTAGE = "percentage"
TIME = "percentage_of_time"
DEFINITION_RESET = "definition_reset"
DEFAULT_VARIANT = "default_variant"
#: The flag's JsonLogic rule (a *definition* register, unlike the on/off targeting registers).
TARGETING_RULE = "targeting"
DISABLED = "disabled"

SEPARATOR = ":"
USER = "user" + SEPARATOR
EXCLUDE = "exclude" + SEPARATOR
GROUP = "group" + SEPARATOR
DATA = "data" + SEPARATOR
HISTORY = "history" + SEPARATOR
VARIANT = "variant" + SEPARATOR
RULE = "rule" + SEPARATOR

#: The reserved entity that holds the named rules (``rule:<name>``). Its leading space makes it
#: a name no flag can take (rollout._core.validate.name_problem refuses it), while every store
#: keeps it as it keeps a flag (no control character, no NUL).
RULES_ENTITY = " rules"

#: The keys that are a name alone, without a member.
PLAIN_KEYS = frozenset(
    {EXISTS, RESET, DATA_RESET, PERCENTAGE, TIME, DEFINITION_RESET, DEFAULT_VARIANT}
    | {TARGETING_RULE, DISABLED}
)
#: The registers without a value: they only carry their timestamp.
WATERMARKS = frozenset({RESET, DATA_RESET, DEFINITION_RESET})
#: The targeting registers that are a name alone (hidden by ``reset``).
TARGETING_SCALARS = (PERCENTAGE, TIME)
#: The prefixes of targeting registers (hidden by ``reset``); their values are true or false.
TARGETING_PREFIXES = (USER, EXCLUDE, GROUP)
#: The definition registers that are a name alone (hidden by ``definition_reset``).
DEFINITION_SCALARS = (DEFAULT_VARIANT, TARGETING_RULE, DISABLED)
#: The prefixes of the keys that name a member of the flag's visible state.
MEMBER_PREFIXES = (*TARGETING_PREFIXES, DATA)
#: Every prefix.
PREFIXES = (*MEMBER_PREFIXES, VARIANT, RULE, HISTORY)

# Found by the text before the first separator, so that splitting a key costs one dict lookup
# however many prefixes there are (a flag of 100,000 users is rebuilt key by key).
_BY_HEAD = {prefix[: -len(SEPARATOR)]: prefix for prefix in PREFIXES}

# The history key's timestamp: wall ms, counter, node, zero-padded so that keys sort as their
# timestamps do (the stores trim the oldest events by key order).
_HISTORY_DIGITS = (16, 10, 19)
_HISTORY_KEY_LENGTH = len(HISTORY) + sum(_HISTORY_DIGITS)
# As a %-format of the timestamp's three fields: an f-string whose widths are names parses its
# format specs on every call, twice the instructions (every write makes a history key).
_HISTORY_FORMAT = HISTORY.replace("%", "%%") + "".join(f"%0{n}d" for n in _HISTORY_DIGITS)


# In Python -----------------------------------------------------------------------------------


def is_targeting(key: str) -> bool:
    """Whether ``key`` decides who gets the flag, and so is hidden by ``reset``."""
    return key in TARGETING_SCALARS or key.startswith(TARGETING_PREFIXES)


def is_data(key: str) -> bool:
    """Whether ``key`` is a data register, hidden by ``data_reset``."""
    return key.startswith(DATA)


def is_definition(key: str) -> bool:
    """Whether ``key`` is part of a flag's definition, and so is hidden by ``definition_reset``."""
    return key in DEFINITION_SCALARS or key.startswith(VARIANT)


def is_history(key: str) -> bool:
    """Whether ``key`` is a history event (never hidden)."""
    return key.startswith(HISTORY)


def member_key(prefix: str, member: str) -> str:
    """``member_key(USER, "42")`` is ``"user:42"``."""
    if prefix not in MEMBER_PREFIXES:
        raise ValueError(f"{prefix!r} is not a member prefix (one of {MEMBER_PREFIXES})")
    return prefix + member


def split_key(key: str) -> tuple[str, str] | None:
    """``(prefix, rest)`` of a prefixed key (``("user:", "42")``), None for any other key.

    ``rest`` may be empty (``"user:"``): the codec refuses such a key from elsewhere.
    """
    head, separator, rest = key.partition(SEPARATOR)
    prefix = _BY_HEAD.get(head) if separator else None
    return None if prefix is None else (prefix, rest)


def history_key(ts: Timestamp) -> str:
    return _HISTORY_FORMAT % ts


def valid_history_key(key: str) -> bool:
    """Whether ``key`` is a history key as :func:`history_key` writes it."""
    return (
        len(key) == _HISTORY_KEY_LENGTH
        and key.startswith(HISTORY)
        and key[len(HISTORY) :].isdigit()
    )


# In SQL (SQLite) -----------------------------------------------------------------------------
#
# ``column`` is an SQL expression written in code (``"r.key"``), put in as it is. Prefixes are
# tested with substr and =, never LIKE (case-insensitive for ASCII, and '_' and '%' in it are
# wildcards) nor GLOB ('*', '?' and '[' are). SQLite's substr counts characters (code points) in
# TEXT, as Python's len does.


def sql_literal(text: str) -> str:
    """``text`` as an SQL string literal."""
    if "\0" in text:
        raise ValueError(f"an SQL statement cannot hold a NUL character: {text!r}")
    return "'" + text.replace("'", "''") + "'"


def _sql_starts_with(column: str, prefix: str) -> str:
    return f"substr({column}, 1, {len(prefix)}) = {sql_literal(prefix)}"


def sql_is_targeting(column: str) -> str:
    """SQL that is true where :func:`is_targeting` is."""
    scalars = ", ".join(sql_literal(key) for key in TARGETING_SCALARS)
    prefixes = " OR ".join(_sql_starts_with(column, prefix) for prefix in TARGETING_PREFIXES)
    return f"({column} IN ({scalars}) OR {prefixes})"


def sql_is_data(column: str) -> str:
    """SQL that is true where :func:`is_data` is."""
    return f"({_sql_starts_with(column, DATA)})"


def sql_is_definition(column: str) -> str:
    """SQL that is true where :func:`is_definition` is."""
    scalars = ", ".join(sql_literal(key) for key in DEFINITION_SCALARS)
    return f"({column} IN ({scalars}) OR {_sql_starts_with(column, VARIANT)})"


def sql_is_history(column: str) -> str:
    """SQL that is true where :func:`is_history` is, as a key range.

    A range, unlike substr, can use an index on ``column``: pruning a flag's history then reads
    only its events, never its users. Keys that start with the prefix are exactly those from
    the prefix up to (not including) the prefix with its last character raised by one, under
    SQLite's default BINARY collation (byte order of UTF-8, which is code point order).
    """
    end = HISTORY[:-1] + chr(ord(HISTORY[-1]) + 1)
    return f"({column} >= {sql_literal(HISTORY)} AND {column} < {sql_literal(end)})"


# In Lua (Redis scripts) ----------------------------------------------------------------------
#
# ``var`` is a Lua expression written in code (``"field"``), put in as it is. Lua strings are
# bytes, so string.sub's length is the prefix's length in UTF-8 bytes (redis-py sends text as
# UTF-8).


def lua_literal(text: str) -> str:
    """``text`` as a Lua string literal, in plain ASCII whatever the text.

    Every byte outside printable ASCII, and the quote and backslash, is a three-digit decimal
    escape (Lua 5.1, Redis's, has no hex escapes; three digits, so a digit after it is not read
    into it).
    """
    out = []
    for byte in text.encode():
        char = chr(byte)
        out.append(char if 32 <= byte < 127 and char not in "'\\" else f"\\{byte:03d}")
    return "'" + "".join(out) + "'"


def _lua_starts_with(var: str, prefix: str) -> str:
    return f"string.sub({var}, 1, {len(prefix.encode())}) == {lua_literal(prefix)}"


def lua_is_targeting(var: str) -> str:
    """Lua that is true where :func:`is_targeting` is."""
    parts = [f"{var} == {lua_literal(key)}" for key in TARGETING_SCALARS]
    parts += [_lua_starts_with(var, prefix) for prefix in TARGETING_PREFIXES]
    return f"({' or '.join(parts)})"


def lua_is_data(var: str) -> str:
    """Lua that is true where :func:`is_data` is."""
    return f"({_lua_starts_with(var, DATA)})"


def lua_is_definition(var: str) -> str:
    """Lua that is true where :func:`is_definition` is."""
    parts = [f"{var} == {lua_literal(key)}" for key in DEFINITION_SCALARS]
    parts.append(_lua_starts_with(var, VARIANT))
    return f"({' or '.join(parts)})"


def lua_is_history(var: str) -> str:
    """Lua that is true where :func:`is_history` is."""
    return f"({_lua_starts_with(var, HISTORY)})"
