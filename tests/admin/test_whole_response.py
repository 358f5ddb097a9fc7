"""A response the serve writes whole is h11's response, to the byte.

``rollout serve`` makes the bytes of an answer given in one body message itself, where uvicorn
has h11 make them (see ``_whole_response.py``). These tests hold the two equal: for any status,
headers and body, what ``whole_response`` makes is what h11 sends after a keep-alive request,
and whatever h11 refuses to send (a header outside its grammar, a Content-Length that is not
the body's) or frames otherwise is left to h11 (None).
"""

from __future__ import annotations

import h11
import pytest
from hypothesis import example, given
from hypothesis import strategies as st

from rollout.admin._whole_response import NO_BODY_STATUSES, REASONS, keeps_alive, whole_response

TOKEN_CHARS = "-!#$%&'*+.^_`|~0123456789abcdefghijklmnopqrstuvwxyzABCDEFGHIJKLMNOPQRSTUVWXYZ"


def h11_sends(
    status: int, headers: list[tuple[bytes, bytes]], body: bytes, method: bytes = b"GET"
) -> bytes | None:
    """What uvicorn has h11 send for this answer to a keep-alive HTTP/1.1 request, or None when
    h11 refuses it or ends the connection after it."""
    conn = h11.Connection(h11.SERVER)
    conn.receive_data(method + b" / HTTP/1.1\r\nHost: example\r\n\r\n")
    assert type(conn.next_event()) is h11.Request
    assert type(conn.next_event()) is h11.EndOfMessage
    try:
        out = conn.send(h11.Response(status_code=status, headers=headers, reason=REASONS[status]))
        out += conn.send(h11.Data(data=b"" if method == b"HEAD" else body))
        out += conn.send(h11.EndOfMessage())
    except h11.LocalProtocolError:
        return None
    assert out is not None
    if conn.our_state is not h11.DONE:  # the connection would close after it
        return None
    return out


JSON_HEADERS = [(b"content-type", b"application/json")]

field_names = st.one_of(
    st.text(TOKEN_CHARS, min_size=1, max_size=12).map(str.encode),
    st.sampled_from([b"Content-Length", b"content-length", b"Connection", b"Transfer-Encoding"]),
    st.binary(max_size=6),  # mostly outside the grammar
)
field_values = st.one_of(
    st.text("abc XYZ019;=,/\t", max_size=16).map(str.encode),
    st.binary(max_size=8),  # control characters, CR and LF, obs-text
)


@given(
    status=st.sampled_from(sorted(REASONS)),
    headers=st.lists(st.tuples(field_names, field_values), max_size=4),
    body=st.binary(max_size=40),
    with_length=st.sampled_from(["right", "wrong", "none"]),
    head=st.booleans(),
)
@example(status=200, headers=[(b"x-a", b"b\r\nset-cookie: x=1")], body=b"{}",
         with_length="right", head=False)  # fmt: skip
@example(status=200, headers=[(b"x-a", b" padded ")], body=b"{}", with_length="right", head=False)
def test_a_response_made_whole_is_the_one_h11_sends(
    status: int, headers: list[tuple[bytes, bytes]], body: bytes, with_length: str, head: bool
) -> None:
    if with_length == "right":
        headers = [(b"content-length", b"%d" % len(body)), *headers]
    elif with_length == "wrong":
        headers = [(b"content-length", b"%d" % (len(body) + 1)), *headers]
    made = whole_response(status, headers, body, head_only=head)
    sent = h11_sends(status, headers, body, b"HEAD" if head else b"GET")
    if made is not None:
        assert made == sent


@pytest.mark.parametrize("status", [200, 201, 302, 400, 401, 403, 404, 409, 422, 429, 500, 503])
@pytest.mark.parametrize("method", [b"GET", b"HEAD", b"POST"])
def test_an_answer_of_known_length_is_made_whole(status: int, method: bytes) -> None:
    body = b'{"flag":"chat","user":"42","active":true,"state":"partial"}'
    headers = [
        (b"date", b"Sun, 06 Dec 2026 22:00:00 GMT"),
        (b"content-length", b"%d" % len(body)),
        *JSON_HEADERS,
    ]
    made = whole_response(status, headers, body, head_only=method == b"HEAD")
    assert made is not None
    assert made == h11_sends(status, headers, body, method)


@pytest.mark.parametrize(
    ("status", "headers", "body"),
    [
        (200, JSON_HEADERS, b"{}"),  # no Content-Length: h11 chunks it
        (200, [(b"content-length", b"3"), *JSON_HEADERS], b"{}"),  # not the body's length
        (200, [(b"content-length", b"2"), (b"content-length", b"2")], b"{}"),
        (200, [(b"content-length", b"+2")], b"{}"),
        (200, [(b"content-length", b"2"), (b"connection", b"close")], b"{}"),
        (200, [(b"content-length", b"2"), (b"transfer-encoding", b"chunked")], b"{}"),
        (200, [(b"content-length", b"2"), (b"x-a", b"b\r\nset-cookie: x=1")], b"{}"),
        (200, [(b"content-length", b"2"), (b"x a", b"b")], b"{}"),
        (200, [(b"content-length", b"2"), (b"x-a", b"caf\xc3\xa9\x00")], b"{}"),
        (200, [(b"content-length", b"2"), ("x-a", "b")], b"{}"),  # str, not bytes
        (200, [[b"content-length", b"2"]], b"{}"),  # a list (ASGI allows it): h11's
        (200, [(b"content-length", b"2"), (b"x-a", bytearray(b"b"))], b"{}"),
        (200, [(b"content-length", b"2"), (b"x-a", b"b", b"c")], b"{}"),
        (200, [(b"content-length", b"2"), (b"Host", b"example")], b"{}"),  # h11 writes it first
        (204, [(b"content-length", b"0")], b""),
        (304, [(b"content-length", b"0")], b""),
        (101, [(b"content-length", b"0")], b""),
        (299, [(b"content-length", b"0")], b""),  # no reason phrase known
        ("200", [(b"content-length", b"0")], b""),
    ],
)
def test_what_h11_must_decide_is_left_to_it(status: object, headers: object, body: bytes) -> None:
    assert whole_response(status, headers, body, head_only=False) is None  # type: ignore[arg-type]


def test_no_body_statuses_are_h11s() -> None:
    assert {204, 304} <= NO_BODY_STATUSES


@pytest.mark.parametrize(
    ("version", "headers", "alive"),
    [
        ("1.1", [], True),
        ("1.1", [(b"connection", b"keep-alive")], True),
        ("1.1", [(b"connection", b"close")], False),
        ("1.1", [(b"connection", b"Keep-Alive, CLOSE")], False),
        ("1.1", [(b"x-connection", b"close")], True),
        ("1.0", [], False),
        ("1.0", [(b"connection", b"keep-alive")], False),
    ],
)
def test_keeps_alive_reads_the_request_as_h11_does(
    version: str, headers: list[tuple[bytes, bytes]], alive: bool
) -> None:
    assert keeps_alive({"http_version": version, "headers": headers}) is alive
    # h11's own verdict on the same request: its server state after a response.
    conn = h11.Connection(h11.SERVER)
    head = b"".join(b"%s: %s\r\n" % pair for pair in headers)
    conn.receive_data(b"GET / HTTP/%s\r\nHost: x\r\n%s\r\n" % (version.encode(), head))
    conn.next_event()
    conn.next_event()
    conn.send(h11.Response(status_code=200, headers=[(b"content-length", b"0")]))
    conn.send(h11.EndOfMessage())
    assert (conn.our_state is h11.DONE) is alive
