"""OpenAI-style error bodies: {"error": {"message", "type", "param", "code"}}, so the official client raises
the matching exception class (AuthenticationError, NotFoundError, RateLimitError, ...)."""

from __future__ import annotations

import orjson
from starlette.responses import Response

from agents.gateway.messages import Answer

JSON = (b"content-type", b"application/json")


def _body(message: str, type_: str, code: str | None, param: str | None) -> bytes:
    return orjson.dumps({"error": {"message": message, "type": type_, "param": param, "code": code}})


def error_answer(
    status: int, message: str, *, type_: str = "invalid_request_error", code: str | None = None,
    param: str | None = None, headers: dict[str, str] | None = None,
) -> Answer:
    extra = [(k.lower().encode("latin-1"), v.encode("latin-1")) for k, v in (headers or {}).items()]
    return Answer(status, _body(message, type_, code, param), [JSON, *extra])


def openai_error(
    status: int, message: str, *, type_: str = "invalid_request_error", code: str | None = None,
    param: str | None = None, headers: dict[str, str] | None = None,
) -> Response:
    """The same body as a Starlette response (the ASGI routes: files, batches)."""
    return Response(_body(message, type_, code, param), status_code=status, media_type="application/json",
                    headers=headers)


def sse_error(message: str, code: str = "upstream_error") -> bytes:
    """What a stream ends with when its replica fails mid-way (headers are gone: no status code left)."""
    return b"data: " + _body(message, "server_error", code, None) + b"\n\n"
