"""The gateway's ASGI app: OpenAI-compatible endpoints, /metrics and /healthz.

Everything stateful (routing source, balancer, limits, HTTP client, metrics, clocks, rng) is built by the
caller and injected, so tests can run several gateways in one process with fake clocks or transports.
"""

from __future__ import annotations

import random
import time
from collections.abc import AsyncIterator, Callable, Mapping
from dataclasses import dataclass, field
from typing import Any

import orjson
from prometheus_client import CONTENT_TYPE_LATEST, generate_latest
from starlette.applications import Starlette
from starlette.requests import Request
from starlette.responses import Response
from starlette.routing import Route as HttpRoute

from agents.gateway import api_forward
from agents.gateway.auth import AuthFailure, authenticate
from agents.gateway.config import GatewayConfig
from agents.gateway.errors import error_answer
from agents.gateway.limits import Limits
from agents.gateway.messages import Answer, Incoming
from agents.gateway.metrics import GatewayMetrics
from agents.gateway.affinity import affinity_key
from agents.gateway.proxy import Call, Proxy
from agents.gateway.relay import StreamRelay
from agents.gateway.snapshot import KeyInfo
from agents.gateway.splits import PINNED, Assignment, assign, bucket
from agents.gateway.table import RoutingSource

REGION_HEADER = "x-llmfleet-client-region"
USER_HEADER = "x-llmfleet-user"
SESSION_HEADER = "x-llmfleet-session"
PRIORITY_HEADER = "x-llmfleet-priority"  # `batch`: below real-time traffic (see GatewayConfig)


@dataclass(slots=True)
class Gateway:
    config: GatewayConfig
    source: RoutingSource
    proxy: Proxy
    limits: Limits
    metrics: GatewayMetrics
    clock: Callable[[], float] = time.monotonic
    rng: random.Random = field(default_factory=random.Random)

    # ---- shared steps -------------------------------------------------------------------------

    def _key(self, headers: Mapping[str, str]) -> KeyInfo | Answer:
        result = authenticate(headers.get("authorization"), self.source.snapshot, self.clock(),
                              self.config.auth_max_staleness_s)
        if isinstance(result, AuthFailure):
            self.metrics.rejected.labels(result.code).inc()
            type_ = "invalid_request_error" if result.status == 401 else "server_error"
            headers_ = {"WWW-Authenticate": "Bearer"} if result.status == 401 else {"Retry-After": "1"}
            return error_answer(result.status, result.message, type_=type_, code=result.code, headers=headers_)
        return result

    def too_large(self) -> Answer:
        self.metrics.rejected.labels("too_large").inc()
        return error_answer(413, f"request body over {self.config.max_body_bytes} bytes", code="request_too_large")

    # ---- inference (server-neutral: the lean server and the ASGI adapter both call this) -----------

    async def inference(self, request: Incoming) -> Answer | StreamRelay:
        started = self.clock()
        key = self._key(request.headers)
        if isinstance(key, Answer):
            return key
        verdict = await self.limits.admit(key.key_id, key.requests_per_minute, key.tokens_per_minute)
        if not verdict.allowed:
            self.metrics.rejected.labels("rate_limited").inc()
            return error_answer(429, verdict.reason, type_="requests", code="rate_limit_exceeded",
                                headers={"Retry-After": str(verdict.retry_after_s)})
        raw = request.body
        if raw is None:
            return self.too_large()
        try:
            body = orjson.loads(raw)
        except orjson.JSONDecodeError:
            return error_answer(400, "the request body is not valid JSON")
        if not isinstance(body, dict) or not isinstance(body.get("model"), str):
            return error_answer(400, "`model` is required and must be a string", param="model")
        call = self._call(request, key, body, raw, started)
        if isinstance(call, Answer):
            return call
        return await self.proxy.forward(call)

    def _call(self, request: Incoming, key: KeyInfo, body: dict[str, Any], raw: bytes, started: float
              ) -> Call | Answer:
        snapshot = self.source.snapshot
        assert snapshot is not None  # authentication needed one
        model: str = body["model"]
        name, _, ref = model.partition("@")
        route = snapshot.routes.get(name)
        if route is None or not key.may_use(route):
            self.metrics.rejected.labels("model_not_found").inc()
            return error_answer(404, f"The model `{model}` does not exist or you do not have access to it.",
                                param="model", code="model_not_found")
        headers = request.headers
        if ref:
            version = route.resolve(ref)
            if version is None:
                return error_answer(404, f"The model `{model}` does not exist: no version or alias {ref!r}.",
                                    param="model", code="model_not_found")
            assignment = Assignment(PINNED, version)
        else:
            user = body.get("user") if isinstance(body.get("user"), str) else headers.get(USER_HEADER)
            point = bucket(route.name, user) if user else self.rng.random() * 100.0
            assignment = assign(route, point)
        payload = raw if model == route.name else orjson.dumps({**body, "model": route.name})
        path = request.path
        return Call(
            path=path, payload=payload, stream=bool(body.get("stream")) and not path.endswith("embeddings"),
            route=route, assignment=assignment,
            client_region=self._region(headers, snapshot.regions),
            affinity=affinity_key(body, headers.get(SESSION_HEADER), self.config.prefix_affinity_chars),
            key_id=key.key_id, started_at=started,
            prompt_estimate=len(raw) // 4, batch=headers.get(PRIORITY_HEADER, "").lower() == "batch",
        )

    def _region(self, headers: Mapping[str, str], known: frozenset[str]) -> str:
        # Only regions the routing table knows: the header is client-controlled and becomes a metric label.
        region = headers.get(REGION_HEADER)
        return region if region is not None and region in known else self.config.region

    # ---- the other endpoints (ASGI: off the hot path) ----------------------------------------------

    async def _asgi_key(self, request: Request) -> KeyInfo | Response:
        key = self._key(request.headers)
        return as_response(key) if isinstance(key, Answer) else key

    async def _asgi_body(self, request: Request) -> bytes | Response:
        body = await read_limited(request.headers, request.stream(), self.config.max_body_bytes)
        return as_response(self.too_large()) if body is None else body

    async def batch_api(self, request: Request) -> Response:
        """Files and batches belong to the control plane: check the key here, forward with it there."""
        key = await self._asgi_key(request)
        if isinstance(key, Response):
            return key
        raw = await self._asgi_body(request)
        if isinstance(raw, Response):
            return raw
        return await api_forward.forward(self.source.client, self.source.api_url, request, raw)

    async def models(self, request: Request) -> Response:
        key = await self._asgi_key(request)
        if isinstance(key, Response):
            return key
        snapshot = self.source.snapshot
        assert snapshot is not None
        data = []
        for route in sorted(snapshot.routes.values(), key=lambda r: r.name):
            if key.may_use(route):
                data.append({"id": route.name, "object": "model", "created": 0, "owned_by": route.team})
                for version in sorted({r.version for r in route.replicas}):
                    data.append({"id": f"{route.name}@{version}", "object": "model", "created": 0,
                                 "owned_by": route.team, "parent": route.name})
        return Response(orjson.dumps({"object": "list", "data": data}), media_type="application/json")

    async def _post_only(self, request: Request) -> Response:  # pragma: no cover - the server takes POSTs
        return Response(status_code=405)

    async def metrics_endpoint(self, request: Request) -> Response:
        snapshot = self.source.snapshot
        if snapshot is not None:
            self.metrics.table_age.set(self.clock() - snapshot.fetched_at)
        return Response(generate_latest(self.metrics.registry), media_type=CONTENT_TYPE_LATEST)

    async def healthz(self, request: Request) -> Response:
        ready = self.source.snapshot is not None
        return Response(orjson.dumps({"ready": ready, "region": self.config.region}),
                        status_code=200 if ready else 503, media_type="application/json")

    def asgi(self) -> Starlette:
        """Every path but inference, which the lean server (`server.py`) answers itself."""
        return Starlette(routes=[
            *(HttpRoute(path, self._post_only, methods=["POST"]) for path in sorted(INFERENCE_PATHS)),
            HttpRoute("/v1/models", self.models, methods=["GET"]),
            HttpRoute("/v1/files", self.batch_api, methods=["GET", "POST"]),
            HttpRoute("/v1/files/{file_id}", self.batch_api, methods=["GET", "DELETE"]),
            HttpRoute("/v1/files/{file_id}/content", self.batch_api, methods=["GET"]),
            HttpRoute("/v1/batches", self.batch_api, methods=["GET", "POST"]),
            HttpRoute("/v1/batches/{batch_id}", self.batch_api, methods=["GET"]),
            HttpRoute("/v1/batches/{batch_id}/cancel", self.batch_api, methods=["POST"]),
            HttpRoute("/metrics", self.metrics_endpoint, methods=["GET"]),
            HttpRoute("/healthz", self.healthz, methods=["GET"]),
        ])


INFERENCE_PATHS = frozenset({"/v1/chat/completions", "/v1/completions", "/v1/embeddings"})


def as_response(answer: Answer) -> Response:
    response = Response(answer.body, status_code=answer.status)
    response.raw_headers = [h for h in response.raw_headers if h[0] == b"content-length"] + answer.headers
    return response


async def read_limited(headers: Mapping[str, str], chunks: AsyncIterator[bytes], limit: int) -> bytes | None:
    """The whole body, or None as soon as it is known to exceed `limit` (the rest is not read)."""
    length = headers.get("content-length")
    if length is not None and (not length.isdigit() or int(length) > limit):
        return None
    parts: list[bytes] = []
    size = 0
    async for chunk in chunks:
        size += len(chunk)
        if size > limit:
            return None
        parts.append(chunk)
    return b"".join(parts)
