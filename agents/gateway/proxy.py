"""Forwarding one inference request: pick a replica, retry on another before the first byte, then relay.

A request is retried when its replica refuses the connection, resets it, answers 5xx or 429, or dies
before the first byte of the answer; after the first byte reached the client nothing can be retried, so
a mid-stream failure ends the stream with an SSE error event. Non-streaming answers are read in full
before the client sees anything, so they are always retryable.
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass

import orjson
from agents.gateway.balancer import Balancer
from agents.gateway.errors import error_answer
from agents.gateway.limits import Limits
from agents.gateway.messages import Answer
from agents.gateway.metrics import GatewayMetrics
from agents.gateway.relay import StreamOutcome, StreamRelay
from agents.gateway.snapshot import Route, Upstream
from agents.gateway.splits import PINNED, Assignment
from agents.gateway.upstream import UpstreamClient, UpstreamError


@dataclass(frozen=True, slots=True)
class Call:
    """One client request, parsed and authorised, ready to route."""

    path: str  # /v1/chat/completions, /v1/completions, /v1/embeddings
    payload: bytes  # what the replica gets (model rewritten to the deployment name if needed)
    stream: bool
    route: Route
    assignment: Assignment
    client_region: str
    affinity: str | None
    key_id: str
    started_at: float
    prompt_estimate: int  # for token limits when the answer carries no usage (streams)
    batch: bool = False  # `x-llmfleet-priority: batch`: only spare capacity, else 429 (see GatewayConfig)


@dataclass(slots=True)
class Proxy:
    client: UpstreamClient
    balancer: Balancer
    metrics: GatewayMetrics
    limits: Limits
    clock: Callable[[], float]
    max_attempts: int = 3
    batch_max_outstanding: float = 4.0
    batch_retry_after_s: int = 2

    async def forward(self, call: Call) -> Answer | StreamRelay:
        tried: set[str] = set()
        last_problem = "no ready replica"
        max_load = self.batch_max_outstanding if call.batch else None
        for attempt in range(self.max_attempts):
            pick = self.balancer.pick(call.route, call.assignment.version, call.client_region, tried, call.affinity,
                                      max_load)
            if pick is None and call.assignment.arm != PINNED:
                # The chosen arm's version has no usable replica (a canary not up yet, or all failing):
                # serving another version beats failing the request.
                pick = self.balancer.pick(call.route, None, call.client_region, tried, call.affinity, max_load)
            if pick is None:
                if call.batch and not attempt:
                    return self._defer_batch(call)
                break
            upstream = pick.upstream
            tried.add(upstream.endpoint)
            if attempt:
                self.metrics.retries.labels(call.route.name, last_problem.split(":")[0]).inc()
            if pick.spilled:
                self.metrics.spillovers.labels(call.route.name, call.client_region, upstream.region).inc()
            result = await self._attempt(call, upstream)
            if isinstance(result, str):
                last_problem = result
                continue
            return result
        self._count(call, call.assignment.version, 503, None, None, 0, 0)
        return error_answer(503, f"no replica could serve {call.route.name!r} ({last_problem})",
                            type_="server_error", code="service_unavailable", headers={"Retry-After": "1"})

    def _defer_batch(self, call: Call) -> Answer:
        """No replica has spare capacity for batch work: the caller backs off, real-time traffic keeps it."""
        self.metrics.rejected.labels("batch_deferred").inc()
        return error_answer(429, "no spare capacity for batch-priority requests; retry later", type_="requests",
                            code="batch_capacity_busy", headers={"Retry-After": str(self.batch_retry_after_s)})

    async def _attempt(self, call: Call, upstream: Upstream) -> Answer | StreamRelay | str:
        """The answer, or a short reason string when this replica failed before the first byte."""
        try:
            response = await self.client.post(upstream.endpoint + call.path, call.payload)
        except UpstreamError as error:
            self.balancer.release(upstream, ok=False)
            return f"connect: {error}"
        status = response.status
        if status >= 500 or status == 429:
            await response.close()
            self.balancer.release(upstream, ok=False if status >= 500 else None)
            return f"status_{status}: replica answered {status}"
        if not call.stream or status != 200:
            try:
                body = await response.read()
            except UpstreamError as error:
                self.balancer.release(upstream, ok=False)
                return f"read: {error}"
            finally:
                await response.close()
            self.balancer.release(upstream, ok=True)
            return await self._buffered(call, upstream, status, body, response.content_type)
        rest = response.chunks()
        try:
            first = await rest.__anext__()
        except (UpstreamError, StopAsyncIteration) as error:
            await response.close()
            self.balancer.release(upstream, ok=False)
            return f"first_byte: {type(error).__name__}"
        first_at = self.clock()

        async def done(outcome: StreamOutcome) -> None:
            self.balancer.release(upstream, ok=outcome.ok)
            completion = max(0, outcome.events - 2)  # minus the role event and [DONE]
            code = 200 if outcome.ok is not False else 502
            self._count(call, upstream.version, code, outcome.first_at, outcome.last_at, call.prompt_estimate,
                        completion)
            await self.limits.charge_tokens(call.key_id, call.prompt_estimate + completion)

        return StreamRelay(first=first, rest=rest, upstream=response, headers=self._headers(call, upstream,
                           response.content_type or "text/event-stream"),
                           clock=self.clock, first_at=first_at, done=done)

    async def _buffered(
        self, call: Call, upstream: Upstream, status: int, body: bytes, content_type: str | None
    ) -> Answer:
        now = self.clock()
        prompt = completion = 0
        if status == 200:
            try:
                usage = orjson.loads(body).get("usage") or {}
                prompt = int(usage.get("prompt_tokens") or 0)
                completion = int(usage.get("completion_tokens") or 0)
            except (orjson.JSONDecodeError, AttributeError, TypeError, ValueError):
                pass
            await self.limits.charge_tokens(call.key_id, prompt + completion)
        self._count(call, upstream.version, status, now, now, prompt, completion)
        headers = self._headers(call, upstream, None)
        headers.append((b"content-type", (content_type or "application/json").encode("latin-1")))
        return Answer(status, body, headers)

    @staticmethod
    def _headers(call: Call, upstream: Upstream, content_type: str | None) -> list[tuple[bytes, bytes]]:
        headers = [
            (b"x-llmfleet-replica", upstream.name.encode()),
            (b"x-llmfleet-version", upstream.version.encode()),
            (b"x-llmfleet-arm", call.assignment.arm.encode()),
        ]
        if content_type is not None:
            headers += [(b"content-type", content_type.encode()), (b"cache-control", b"no-cache")]
        return headers

    def _count(
        self, call: Call, version: str, status: int, first_at: float | None, last_at: float | None,
        prompt: int, completion: int,
    ) -> None:
        series = self.metrics.series(call.route.name, version, call.assignment.arm, call.client_region, str(status))
        series.requests.inc()
        series.e2e.observe(self.clock() - call.started_at)
        if first_at is not None:
            series.ttft.observe(first_at - call.started_at)
            if last_at is not None and completion > 1:
                series.tpot.observe(max(0.0, last_at - first_at) / (completion - 1))
        if prompt:
            series.prompt_tokens.inc(prompt)
        if completion:
            series.completion_tokens.inc(completion)
