"""OpenTelemetry traces of the API: one server span per request (named by route template, continuing a W3C
`traceparent` the caller sent), under which the Temporal client's `StartWorkflow` span (from
temporalio.contrib.opentelemetry's interceptor) is recorded, so a trace runs from the API call to the workflow.

Exported over OTLP/HTTP only when an endpoint is configured (`LLMFLEET_OTLP_ENDPOINT`, or the standard
`OTEL_EXPORTER_OTLP_ENDPOINT` / `OTEL_EXPORTER_OTLP_TRACES_ENDPOINT`); otherwise `tracer_provider` returns None
and nothing is installed (no per-request cost at all).
"""

from __future__ import annotations

import os
from collections.abc import Mapping

from opentelemetry import trace
from opentelemetry.propagate import extract
from opentelemetry.sdk.resources import SERVICE_NAME, Resource
from opentelemetry.sdk.trace import TracerProvider
from opentelemetry.sdk.trace.export import BatchSpanProcessor, SimpleSpanProcessor, SpanExporter
from opentelemetry.trace import SpanKind, Status, StatusCode, Tracer
from starlette.types import ASGIApp, Message, Receive, Scope, Send

TRACER_NAME = "llmfleet.control_plane"
OTEL_ENDPOINT_VARS = ("OTEL_EXPORTER_OTLP_TRACES_ENDPOINT", "OTEL_EXPORTER_OTLP_ENDPOINT")


def otlp_configured(endpoint: str | None, environ: Mapping[str, str] = os.environ) -> bool:
    return bool(endpoint) or any(environ.get(name) for name in OTEL_ENDPOINT_VARS)


def tracer_provider(service_name: str, endpoint: str | None = None, *, exporter: SpanExporter | None = None,
                    environ: Mapping[str, str] = os.environ) -> TracerProvider | None:
    """A provider exporting to `exporter` (tests: synchronously), else over OTLP/HTTP when configured, else
    None. `endpoint` is the collector's base URL (spans go to `{endpoint}/v1/traces`)."""
    if exporter is None and not otlp_configured(endpoint, environ):
        return None
    provider = TracerProvider(resource=Resource.create({SERVICE_NAME: service_name}))
    if exporter is not None:
        provider.add_span_processor(SimpleSpanProcessor(exporter))
        return provider
    from opentelemetry.exporter.otlp.proto.http.trace_exporter import OTLPSpanExporter

    # Without an explicit endpoint the exporter reads the standard OTEL_* variables itself.
    otlp = OTLPSpanExporter(endpoint=f"{endpoint.rstrip('/')}/v1/traces") if endpoint else OTLPSpanExporter()
    provider.add_span_processor(BatchSpanProcessor(otlp))
    return provider


class TracingMiddleware:
    """Pure ASGI: a SERVER span around each HTTP request, current while the handler (and its background
    tasks, such as starting a workflow) run."""

    def __init__(self, app: ASGIApp, tracer: Tracer) -> None:
        self.app = app
        self.tracer = tracer

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        if scope["type"] != "http":
            await self.app(scope, receive, send)
            return
        carrier = {k.decode("latin-1"): v.decode("latin-1") for k, v in scope.get("headers", [])}
        method = scope["method"]
        with self.tracer.start_as_current_span(
            method, context=extract(carrier), kind=SpanKind.SERVER,
            attributes={"http.request.method": method, "url.path": scope["path"]},
        ) as span:

            async def send_and_note(message: Message) -> None:
                if message["type"] == "http.response.start":
                    status = int(message["status"])
                    span.set_attribute("http.response.status_code", status)
                    if status >= 500:
                        span.set_status(Status(StatusCode.ERROR))
                await send(message)

            try:
                await self.app(scope, receive, send_and_note)
            finally:
                route = getattr(scope.get("route"), "path", None)
                if route is not None:  # the template is known only once the router matched
                    span.set_attribute("http.route", route)
                    span.update_name(f"{method} {route}")


def install_tracing(app: object, provider: TracerProvider | None) -> None:
    """Add the middleware to a FastAPI/Starlette app when tracing is configured (provider not None)."""
    if provider is None:
        return
    app.add_middleware(TracingMiddleware, tracer=provider.get_tracer(TRACER_NAME))  # type: ignore[attr-defined]


def use_globally(provider: TracerProvider | None) -> None:
    """Make `provider` the process' global one, which temporalio.contrib.opentelemetry.TracingInterceptor
    uses by default (call once per process, at start)."""
    if provider is not None:
        trace.set_tracer_provider(provider)
