"""JSON in: a request body read within its limit; and JSON out, as :class:`JsonAnswer` (what the
answers hold is rollout._core.shapes)."""

from __future__ import annotations

import json
import json.encoder
from collections.abc import Mapping
from typing import Any, Final

from starlette.requests import Request
from starlette.responses import JSONResponse
from starlette.types import Send

from ._errors import ApiError

__all__ = ["JsonAnswer", "read_json", "send_json"]

#: Starlette's JSONResponse encoding (compact, UTF-8, no NaN), one encoder for every answer:
#: json.dumps with arguments builds a new encoder on each call.
_ENCODER: Final = json.JSONEncoder(ensure_ascii=False, allow_nan=False, separators=(",", ":"))
_ENCODE: Final = _ENCODER.encode
#: The same encoding as the C encoder json's encode makes for each call (after two Python
#: calls), made once: an answer sent directly is encoded by one call. Without the circular
#: reference check (answers are trees; a cycle would be a RecursionError, a 500 all the same).
_MAKE_C_ENCODER: Any = getattr(json.encoder, "c_make_encoder", None)
_C_ENCODE: Final[Any] = (
    None
    if _MAKE_C_ENCODER is None
    else _MAKE_C_ENCODER(
        None, _ENCODER.default, json.encoder.encode_basestring, None, ":", ",", False, False, False
    )
)
_JSON_TYPE: Final = (b"content-type", b"application/json")


class JsonAnswer(JSONResponse):
    """A :class:`~starlette.responses.JSONResponse`, the same bytes and headers, made with less
    work: the encoder is built once, and the headers of an answer that adds none are written
    directly. The check and OFREP's evaluation answer with it on every request."""

    def render(self, content: Any) -> bytes:
        return _ENCODE(content).encode("utf-8")

    def init_headers(self, headers: Mapping[str, str] | None = None) -> None:
        if headers is None and self.status_code >= 200 and self.status_code not in (204, 304):
            self.raw_headers = [(b"content-length", str(len(self.body)).encode()), _JSON_TYPE]
        else:
            super().init_headers(headers)


async def send_json(send: Send, content: Any, status_code: int = 200) -> None:
    """What ``JsonAnswer(content, status_code)`` sends (a status without a body aside), without
    making the response object: for the answers sent directly (``_api_call.direct``)."""
    text = _ENCODE(content) if _C_ENCODE is None else "".join(_C_ENCODE(content, 0))
    body = text.encode("utf-8")
    headers = [(b"content-length", str(len(body)).encode()), _JSON_TYPE]
    await send({"type": "http.response.start", "status": status_code, "headers": headers})
    await send({"type": "http.response.body", "body": body})


def _is_json(media_type: str) -> bool:
    return media_type == "application/json" or (
        media_type.startswith("application/") and media_type.endswith("+json")
    )


def _no_constants(name: str) -> Any:
    # Python's json accepts NaN and Infinity, which are not JSON; a client that sends them
    # is told so rather than having them stored.
    raise ValueError(f"{name} is not valid JSON")


async def read_json(request: Request, max_body: int) -> Any:
    """The request body parsed as JSON, or an :class:`ApiError` (415, 413 or 400).

    The body is read at most ``max_body + 1`` bytes far, whatever Content-Length claims.
    """
    content_type = request.headers.get("content-type", "")
    if not _is_json(content_type.partition(";")[0].strip().lower()):
        raise ApiError(
            "unsupported_media_type",
            f"the body must be JSON sent as Content-Type: application/json, "
            f"got {content_type or 'no Content-Type'!r}",
        )
    declared = request.headers.get("content-length", "")
    if declared.isascii() and declared.isdigit() and int(declared) > max_body:
        raise _too_large(max_body)
    chunks: list[bytes] = []
    size = 0
    async for chunk in request.stream():
        size += len(chunk)
        if size > max_body:
            raise _too_large(max_body)
        chunks.append(chunk)
    raw = b"".join(chunks)
    if not raw.strip():
        raise ApiError("malformed_json", "the body is empty; it must be a JSON object")
    try:
        return json.loads(raw, parse_constant=_no_constants)
    except RecursionError:
        raise ApiError("malformed_json", "the body is nested too deeply") from None
    except ValueError as exc:  # JSONDecodeError, bad UTF-8, a 5,000-digit number
        raise ApiError("malformed_json", f"the body is not valid JSON: {exc}") from None


def _too_large(max_body: int) -> ApiError:
    return ApiError("too_large", f"the body is larger than the limit of {max_body} bytes")
