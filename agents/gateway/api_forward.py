"""`/v1/files` and `/v1/batches` at the gateway: forwarded to the control plane, which owns them, with the
caller's own key, so one OpenAI `base_url` serves real-time calls and the Batch API alike.

The key is checked locally first (cheap, and an unknown key never reaches the control plane); the control
plane checks it again and scopes everything to the key's team. Its RFC 9457 problems come back as
OpenAI-style error bodies, keeping the list of bad lines (`error.errors`) of a rejected input file.
"""

from __future__ import annotations

from typing import Any

import httpx
import orjson
from starlette.requests import Request
from starlette.responses import Response

from agents.gateway.errors import openai_error

FORWARDED_REQUEST_HEADERS = ("authorization", "content-type", "accept", "idempotency-key")
FORWARDED_RESPONSE_HEADERS = ("content-type", "retry-after", "www-authenticate", "etag")
TIMEOUT = httpx.Timeout(120.0, connect=5.0)  # uploads are validated line by line before the answer


def _problem_to_openai(status: int, body: bytes, headers: dict[str, str]) -> Response:
    try:
        problem: Any = orjson.loads(body)
    except orjson.JSONDecodeError:
        problem = {}
    if not isinstance(problem, dict):
        problem = {}
    detail = str(problem.get("detail") or problem.get("title") or f"the control plane answered {status}")
    kind = str(problem.get("type", "")).rstrip("/").rsplit("/", 1)[-1] or None
    errors = problem.get("errors") if isinstance(problem.get("errors"), list) else None
    param = None
    if errors and isinstance(errors[0], dict):
        param = errors[0].get("field") or None
    response = openai_error(status, detail, type_="invalid_request_error" if status < 500 else "server_error",
                            code=kind, param=param, headers=headers)
    if errors is not None:
        wrapped = orjson.loads(response.body)
        wrapped["error"]["errors"] = errors
        response = Response(orjson.dumps(wrapped), status_code=status, media_type="application/json",
                            headers=headers)
    return response


async def forward(client: httpx.AsyncClient, api_url: str, request: Request, body: bytes) -> Response:
    headers = {name: value for name in FORWARDED_REQUEST_HEADERS if (value := request.headers.get(name))}
    url = f"{api_url.rstrip('/')}{request.url.path}"
    try:
        upstream = await client.request(request.method, url, params=request.query_params, content=body or None,
                                        headers=headers, timeout=TIMEOUT)
    except httpx.HTTPError as error:
        return openai_error(503, f"the control plane is unreachable ({type(error).__name__})", type_="server_error",
                            code="service_unavailable", headers={"Retry-After": "1"})
    out_headers = {name: value for name in FORWARDED_RESPONSE_HEADERS if (value := upstream.headers.get(name))}
    if upstream.status_code >= 400 and "json" in upstream.headers.get("content-type", ""):
        out_headers.pop("content-type", None)
        return _problem_to_openai(upstream.status_code, upstream.content, out_headers)
    return Response(upstream.content, status_code=upstream.status_code, headers=out_headers)
