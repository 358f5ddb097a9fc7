"""An export is parsed a flag at a time (rollout._core.export_parse), and reads exactly as the
whole document parsed by ``json`` would: the same flags from any spacing, order or encoding,
duplicates as JSON has them, and the same errors, in the same order of precedence."""

from __future__ import annotations

import json
from typing import Any

import pytest

from rollout import Rollout
from rollout._core.codec import decode, decode_flags
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
