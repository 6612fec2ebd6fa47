"""OpenTelemetry traces of the gateway: a SERVER span per request (continuing the client's `traceparent`)
and (agents/gateway/replica_pool.py) a CLIENT span per attempt on a replica, whose context goes to the
replica in `traceparent`, so a trace shows retries and which replica answered.

Nothing is installed unless OTLP is configured (`LLMFLEET_OTLP_ENDPOINT`, `OTEL_EXPORTER_OTLP_ENDPOINT` or
`OTEL_EXPORTER_OTLP_TRACES_ENDPOINT`): the gateway's hot path pays for tracing only when someone asked.
Agents may not import the control plane, hence this module's own provider setup.
"""

from __future__ import annotations

import os
from collections.abc import Mapping

from opentelemetry.propagate import extract
from opentelemetry.sdk.resources import SERVICE_NAME, Resource
from opentelemetry.sdk.trace import TracerProvider
from opentelemetry.sdk.trace.export import BatchSpanProcessor, SimpleSpanProcessor, SpanExporter
from opentelemetry.trace import SpanKind, Status, StatusCode, Tracer
from starlette.types import ASGIApp, Message, Receive, Scope, Send

TRACER_NAME = "llmfleet.gateway"
ENDPOINT_VARS = ("LLMFLEET_OTLP_ENDPOINT", "OTEL_EXPORTER_OTLP_TRACES_ENDPOINT", "OTEL_EXPORTER_OTLP_ENDPOINT")


def tracer_from_env(service_name: str = "llmfleet-gateway", *, exporter: SpanExporter | None = None,
                    environ: Mapping[str, str] = os.environ) -> Tracer | None:
    """A tracer exporting to `exporter` (tests), else over OTLP/HTTP when configured, else None."""
    ours = environ.get("LLMFLEET_OTLP_ENDPOINT")
    if exporter is None and not any(environ.get(name) for name in ENDPOINT_VARS):
        return None
    provider = TracerProvider(resource=Resource.create({SERVICE_NAME: service_name}))
    if exporter is not None:
        provider.add_span_processor(SimpleSpanProcessor(exporter))
    else:
        from opentelemetry.exporter.otlp.proto.http.trace_exporter import OTLPSpanExporter

        otlp = OTLPSpanExporter(endpoint=f"{ours.rstrip('/')}/v1/traces") if ours else OTLPSpanExporter()
        provider.add_span_processor(BatchSpanProcessor(otlp))
    return provider.get_tracer(TRACER_NAME)


class GatewayTracing:
    """Pure ASGI wrapper around the gateway's other paths: one SERVER span per HTTP request."""

    def __init__(self, app: ASGIApp, tracer: Tracer) -> None:
        self.app = app
        self.tracer = tracer

    def __getattr__(self, name: str) -> object:
        return getattr(self.app, name)

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        if scope["type"] != "http":
            await self.app(scope, receive, send)
            return
        carrier = {k.decode("latin-1"): v.decode("latin-1") for k, v in scope.get("headers", [])}
        method, path = scope["method"], scope["path"]
        with self.tracer.start_as_current_span(
            f"{method} {path}", context=extract(carrier), kind=SpanKind.SERVER,
            attributes={"http.request.method": method, "url.path": path},
        ) as span:

            async def send_and_note(message: Message) -> None:
                if message["type"] == "http.response.start":
                    status = int(message["status"])
                    span.set_attribute("http.response.status_code", status)
                    if status >= 500:
                        span.set_status(Status(StatusCode.ERROR))
                    replica = dict(message.get("headers", [])).get(b"x-llmfleet-replica")
                    if replica is not None:
                        span.set_attribute("llmfleet.replica", replica.decode("latin-1"))
                await send(message)

            await self.app(scope, receive, send_and_note)
