"""OpenAI-style error bodies: {"error": {"message", "type", "param", "code"}}, so the official client raises
the matching exception class (AuthenticationError, NotFoundError, RateLimitError, ...)."""

from __future__ import annotations

import orjson
from starlette.responses import Response


def openai_error(
    status: int, message: str, *, type_: str = "invalid_request_error", code: str | None = None,
    param: str | None = None, headers: dict[str, str] | None = None,
) -> Response:
    body = {"error": {"message": message, "type": type_, "param": param, "code": code}}
    return Response(orjson.dumps(body), status_code=status, media_type="application/json", headers=headers)


def sse_error(message: str, code: str = "upstream_error") -> bytes:
    """What a stream ends with when its replica fails mid-way (headers are gone: no status code left)."""
    body = {"error": {"message": message, "type": "server_error", "param": None, "code": code}}
    return b"data: " + orjson.dumps(body) + b"\n\n"
