"""An export is parsed a flag at a time (rollout._core.export_parse), and reads exactly as the
whole document parsed by ``json`` would: the same flags from any spacing, order or encoding,
duplicates as JSON has them, and the same errors, in the same order of precedence."""

from __future__ import annotations

import json
from typing import Any

import pytest

from rollout import Rollout
from rollout._core.codec import decode, decode_flags
from rollout._core.member_runs import run_end, take_run
from rollout.errors import FormatError


@pytest.fixture(scope="module")
def export() -> bytes:
    with Rollout() as flags:
        flags.activate_users("big", range(300))
        flags.deactivate_users("big", range(100, 150))
        flags.exclude_users("big", ["x", 'a "quoted" id', "ünï ✓"])
        flags.activate_percentage("small", 30)
        flags.set_feature_data("small", {"nested": {"list": [1, 2.5, None]}, "s": "a\\b"})
        flags.activate("gone")
        flags.deactivate("gone")
        return flags.export()


def _whole(data: bytes) -> Any:
    """What the document says, parsed whole by json: what every reading must agree with."""
    return decode_flags(json.loads(data)["flags"])


def test_an_export_reads_as_the_whole_document_parsed_by_json(export: bytes) -> None:
    assert decode(export) == _whole(export)
    assert len(decode(export)["big"]) > 300


@pytest.mark.parametrize(
    "reshape",
    [
        lambda doc: json.dumps(doc, indent=2).encode(),  # spaces and newlines everywhere
        lambda doc: json.dumps(doc, indent="\t", sort_keys=True).encode(),
        lambda doc: json.dumps(dict(reversed(doc.items()))).encode(),  # flags last
        lambda doc: ("\r\n " + json.dumps(doc) + " \n").encode(),  # space around the object
        lambda doc: json.dumps(doc).encode("utf-16"),  # json.loads reads UTF-16 and -32 too
        lambda doc: b"\xef\xbb\xbf" + json.dumps(doc, ensure_ascii=False).encode(),  # a BOM
    ],
    ids=["indented", "tabs", "flags-last", "surrounded", "utf-16", "utf-8-bom"],
)
def test_spacing_order_and_encoding_do_not_matter(export: bytes, reshape: Any) -> None:
    assert decode(reshape(json.loads(export))) == _whole(export)


def test_a_flag_named_twice_keeps_its_last_value_as_json_does() -> None:
    first = '{"exists":[1,0,1,true],"user:a":[1,0,1,true]}'
    last = '{"exists":[2,0,1,true],"user:b":[2,0,1,true]}'
    data = f'{{"format":"rollout","version":1,"flags":{{"f":{first},"g":{{}},"f":{last}}}}}'
    assert decode(data.encode()) == _whole(data.encode())
    assert set(decode(data.encode())["f"]) == {"exists", "user:b"}


def test_flags_named_twice_at_the_top_keeps_the_last() -> None:
    data = b'{"flags":{"f":{"exists":[1,0,1,true]}},"format":"rollout","version":1,"flags":{}}'
    assert decode(data) == {}


def _document(flags: str, version: str = "1") -> bytes:
    return f'{{"flags":{flags},"format":"rollout","version":{version}}}'.encode()


@pytest.mark.parametrize(
    ("data", "message"),
    [
        # The format and version are judged before any flag, wherever they sit.
        (_document('{"f":{"bad":[1,0,1,true]}}', version="2"), "version 2 is not supported"),
        (b'{"flags":{"f":[]},"format":"other","version":1}', "'format' field is missing"),
        # Then the first problem in the document's order.
        (_document('{"a":{"exists":[1,0,1,"yes"]},"b":[]}'), "'exists' of flag 'a'"),
        (_document('{"a":{},"b":[]}'), "flag 'b' must map keys to registers"),
        (_document('{"a":{}," b":{},"c":[]}'), "flag name must not begin or end with whitespace"),
        (_document("[]"), "'flags' must be an object"),
        (_document("5"), "'flags' must be an object"),
    ],
)
def test_problems_are_told_in_the_same_order_as_before(data: bytes, message: str) -> None:
    with pytest.raises(FormatError, match=message):
        decode(data)


@pytest.mark.parametrize(
    "data",
    [
        b"",
        b"[]",
        b'{"flags":{}} trailing',
        b'{"flags":{},"format":"rollout","version":1',  # cut short
        b'{"flags":{"f":{"exists":[1,0,1,true]}}',
        b'{"flags":{"f":{"exists":[NaN,0,1,true]}},"format":"rollout","version":1}',
        b'{"flags":{"f" {}},"format":"rollout","version":1}',
        b'{"flags":{"f":{},},"format":"rollout","version":1}',
        b"\xff\xfe\xfd",
    ],
    ids=repr,
)
def test_text_that_is_no_export_is_refused(data: bytes) -> None:
    with pytest.raises(FormatError, match="not a rollout export"):
        decode(data)


def test_nesting_too_deep_is_refused() -> None:
    deep = "[" * 100_000 + "]" * 100_000
    with pytest.raises(FormatError, match="nested too deeply"):
        decode(_document(f'{{"f":{{"data:x":[1,0,1,{deep}]}}}}'))


@pytest.mark.parametrize(
    "second",
    ["[5,0,1,1]", "[5.0,0,1,true]", "[5,false,1,true]", "[5,0,true,true]", "[5,0,1,true,0]"],
)
def test_a_register_equal_in_numbers_to_the_one_before_is_still_checked(second: str) -> None:
    """1 == 1.0 == True in Python: a register that equals the previous one (a bulk write's
    next user, decoded without checking it all again) is still refused when it is not exactly
    a [wall, counter, node, true|false] of integers."""
    flags = f'{{"f":{{"user:a":[5,0,1,true],"user:b":{second}}}}}'
    with pytest.raises(FormatError, match="'user:b' of flag 'f'"):
        decode(_document(flags))


# A big flag's runs of member registers are cut from the text in bulk (rollout._core.member_runs)
# and read exactly as json reads them, or left to json: whatever a run holds.


def _members(count: int, start: int = 0) -> str:
    """Compact member registers as export() writes them: three bulk writes, true and false."""
    stamps = ["[1700000000000,0,7,true]", "[1700000000001,2,7,false]", "[1700000000002,0,9,true]"]
    return ",".join(f'"user:{i}":{stamps[i % 3]}' for i in range(start, start + count))


def _flag(middle: str, rules: bool = False) -> bytes:
    """A flag whose run of 300 users has ``middle`` after its first 150, and other registers
    before, between more members and after."""
    registers = (
        '{"exists":[1,0,1,true],"exclude:x":[1,0,1,true],'
        f'{_members(150)},{middle},{_members(150, 150)},"percentage":[1,0,1,50],'
        f"{_members(200, 1000).replace('user:', 'group:')}}}"
    )
    return _document(f'{{"a":{{}},"{" rules" if rules else "f"}":{registers},"z":{{}}}}')


def _refuse(constant: str) -> Any:
    raise ValueError(f"{constant} is no JSON")


def _as_json_reads_it(data: bytes) -> Any:
    """The flags, or the FormatError's message, of ``data`` parsed whole by json."""
    try:
        document = json.loads(data, parse_constant=_refuse)
    except ValueError:
        return "not a rollout export"
    try:
        return decode_flags(document["flags"])
    except FormatError as exc:
        return str(exc)


def _as_decoded(data: bytes) -> Any:
    try:
        return decode(data)
    except FormatError as exc:
        return "not a rollout export" if "not a rollout export" in str(exc) else str(exc)


def test_a_run_of_members_is_taken_in_bulk_and_reads_as_json_reads_it() -> None:
    data = _flag(_members(3, 500))
    text = data.decode()
    at = text.index('"user:0"')
    assert take_run(text, at, run_end(text, at)) is not None  # the bulk path is taken
    decoded = decode(data)
    assert decoded == _as_json_reads_it(data)
    assert list(decoded["f"]) == list(_as_json_reads_it(data)["f"])  # in the document's order
    assert decoded["f"]["user:1"].value is False
    assert len(decoded["f"]) == 506


@pytest.mark.parametrize(
    "middle",
    [
        '"user:5":[9,0,1,false]',  # given twice: the last value, in the first place
        '"user:5": [9,0,1,false]',  # twice, and the second not compact
        '"exists":[9,0,1,false]',  # a register that is no member, inside the run
        '"user:a],b":[1,0,1,true]',  # a key holding "],"
        '"user:sp":[1, 0, 1, true]',  # spaces inside the register
        '"user:ws":[1,\t0,\n1,\rtrue]',  # whitespace json reads there
        '"user:c":[1,0,1,\x01true]',  # a control character json refuses
        '"user:\\u0041":[1,0,1,true]',  # an escape
        '"user:\u00e9":[1,0,1,true]',  # beyond ASCII
        '"user:\tx":[1,0,1,true]',  # a control character json refuses
        '"user:\nx":[1,0,1,true]',  # a line break, which joins a run's keys
        '"user:":[1,0,1,true]',  # no member
        '"user:q":["x"]',  # a quote inside the register
        '"user:q":[1,0,"x",true]',
        '"user:q":[1,0,1,"true"]',
        '"user:q":[1,0,1,1]',
        '"user:q":[1.0,0,1,true]',
        '"user:q":[01,0,1,true]',  # no JSON number
        '"user:q":[NaN,0,1,true]',
        '"user:q":[9223372036854775808,0,1,true]',  # past int64
        '"user:q":[1,0,1,true,0]',
        '"user:q":[1,0,1]',
        '"user:q":[[1],0,1,true]',
    ],
)
def test_whatever_a_run_holds_it_reads_as_json_reads_it(middle: str) -> None:
    data = _flag(middle)
    assert _as_decoded(data) == _as_json_reads_it(data)


def test_the_rules_entity_holds_no_run_of_members() -> None:
    data = _flag(_members(3, 500), rules=True)
    assert "unknown register key" in _as_decoded(data)
    assert _as_decoded(data) == _as_json_reads_it(data)


@pytest.mark.parametrize(
    "name", ["", " padded ", "..", "a\x1b[31mred", "x" * 1000, "\\ud800"], ids=repr
)
def test_a_big_flag_s_name_is_checked_as_a_small_one_s(name: str) -> None:
    # A flag whose registers are read in bulk had its name taken unchecked: any name merged.
    quoted = json.dumps(name) if name != "\\ud800" else '"\\ud800"'  # a lone surrogate
    registers = '{"exists":[1,0,1,true],' + _members(500) + "}"
    data = _document(f'{{"a":{{}},{quoted}:{registers}}}')
    assert "flag name" in _as_decoded(data)
    assert _as_decoded(data) == _as_json_reads_it(data)
    with Rollout() as flags, pytest.raises(FormatError, match="flag name"):
        flags.merge(data)
    with Rollout() as flags:
        assert flags.features() == []


def test_short_runs_before_a_long_register_are_scanned_once(
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    # Each member of a short run was the start of a new scan to the end of what follows: 170
    # of them before one huge key read that key 170 times (a hostile export cost ~40x json's).
    from rollout._core import export_parse

    scans: list[int] = []
    real_run_end = run_end  # what export_parse calls, by its name there

    def counted(text: str, at: int) -> int:
        scans.append(at)
        return real_run_end(text, at)

    monkeypatch.setattr(export_parse, "run_end", counted)
    short = ",".join(f'"user:{i}":[1,0,1,true]' for i in range(170))  # under MIN_RUN
    huge = '"user:' + "k" * 100_000 + '":[1,0,1,true]'
    data = _document('{"f":{' + short + "," + huge + "}}")
    assert _as_decoded(data) == _as_json_reads_it(data)
    assert len(scans) <= 2  # the short run once, the huge member once
