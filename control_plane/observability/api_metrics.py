"""API request latency by route template, as a pure ASGI middleware (no body buffering, streaming intact)."""

from __future__ import annotations

import time
from collections.abc import Callable

from prometheus_client import CollectorRegistry, Histogram
from starlette.types import ASGIApp, Message, Receive, Scope, Send

LATENCY_BUCKETS = (0.001, 0.0025, 0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1.0, 2.5, 5.0, 10.0)
UNMATCHED = "<unmatched>"  # paths no route knows: one label value, so scanners cannot blow up cardinality


def request_histogram(registry: CollectorRegistry) -> Histogram:
    return Histogram("llmfleet_api_request_duration_seconds", "Control-plane API requests, by route template",
                     ("method", "route", "status"), buckets=LATENCY_BUCKETS, registry=registry)


class ApiMetricsMiddleware:
    def __init__(self, app: ASGIApp, histogram: Histogram, clock: Callable[[], float] = time.perf_counter) -> None:
        self.app = app
        self.histogram = histogram
        self.clock = clock

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        if scope["type"] != "http":
            await self.app(scope, receive, send)
            return
        started = self.clock()
        status = 500  # an exception that escapes before a response means the server failed

        async def send_and_note(message: Message) -> None:
            nonlocal status
            if message["type"] == "http.response.start":
                status = int(message["status"])
            await send(message)

        try:
            await self.app(scope, receive, send_and_note)
        finally:
            # The router stores the matched route in the (shared) scope; its path is the template.
            route = scope.get("route")
            template = getattr(route, "path", None) or UNMATCHED
            self.histogram.labels(scope["method"], template, str(status)).observe(self.clock() - started)
