"""One call wires observability into the API app: the cost and targets routes, request-latency metrics and
`GET /metrics` with the registry-backed series. Idempotent, so tests may call it on any app."""

from __future__ import annotations

from fastapi import FastAPI, Response
from prometheus_client import CONTENT_TYPE_LATEST, CollectorRegistry, generate_latest

from control_plane.deps import AppState
from control_plane.observability import targets
from control_plane.observability.api_metrics import ApiMetricsMiddleware, request_histogram
from control_plane.observability.registry_metrics import RegistryCollector
from control_plane.routes import costs


def install_observability(app: FastAPI) -> None:
    if getattr(app.state, "llmfleet_metrics", None) is not None:
        return
    state: AppState = app.state.llmfleet
    # A registry per app, never the global default: several apps share a test process.
    registry = CollectorRegistry()
    app.state.llmfleet_metrics = registry
    registry.register(RegistryCollector(state.sessions))
    app.add_middleware(ApiMetricsMiddleware, histogram=request_histogram(registry))
    app.include_router(costs.router)
    app.include_router(targets.router)

    @app.get("/metrics", include_in_schema=False)
    def metrics() -> Response:
        return Response(generate_latest(registry), media_type=CONTENT_TYPE_LATEST)
