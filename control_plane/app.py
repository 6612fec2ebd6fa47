"""The FastAPI application factory."""

from __future__ import annotations

from collections.abc import Awaitable, Callable

from fastapi import FastAPI, Request, Response
from opentelemetry.sdk.trace import TracerProvider
from sqlalchemy import Engine

from control_plane import problems
from control_plane.deps import AppState
from control_plane.observability.install import install_observability
from control_plane.rate_limit import RateLimiter
from control_plane.routes import (
    agent_api, audit, batches, clusters, deployments, health, keys, models, plans, rollouts, routing,
)
from control_plane.settings import Settings
from control_plane.tracing import install_tracing, tracer_provider
from registry.db import make_engine, session_factory, upgrade_to_head

API_DESCRIPTION = """
llmfleet's control plane: register models and clusters, ask for deployments with a latency SLO and demand,
and follow what the fleet does. Authenticate with `Authorization: Bearer lf_...`. Errors are RFC 9457
problem details.
"""


def create_app(
    settings: Settings | None = None,
    *,
    engine: Engine | None = None,
    limiter: RateLimiter | None = None,
    migrate: bool = True,
    tracing: TracerProvider | None = None,
) -> FastAPI:
    """`tracing`: the process' provider when the caller made one (`llmfleet serve`); otherwise one is made
    from the settings (None when no OTLP endpoint is configured)."""
    settings = settings or Settings()
    engine = engine or make_engine(settings.database_url)
    if migrate:
        upgrade_to_head(engine)
    app = FastAPI(title="llmfleet control plane", version="0.1.0", description=API_DESCRIPTION)
    app.state.llmfleet = AppState(
        settings=settings,
        engine=engine,
        sessions=session_factory(engine),
        limiter=limiter or RateLimiter(settings.mutation_rate_limit_per_minute),
    )
    problems.install(app)
    # Workflows run only when a Temporal address is configured; without one the API writes desired state
    # itself, as before. Imported lazily: an API without Temporal does not load the SDK.
    app.state.temporal = None
    if settings.temporal_address:
        from workflows.client import TemporalLink

        app.state.temporal = TemporalLink(settings.temporal_address, settings.temporal_namespace,
                                          settings.temporal_task_queue, settings.temporal_ui_url)
    for module in (health, models, clusters, deployments, keys, audit, agent_api, routing, rollouts, batches, plans):
        app.include_router(module.router)
    install_observability(app)  # /metrics, costs, Prometheus targets, request latency
    install_tracing(app, tracing or tracer_provider("llmfleet-api", settings.otlp_endpoint))

    @app.middleware("http")
    async def _limit_body(request: Request, call_next: Callable[[Request], Awaitable[Response]]) -> Response:
        length = request.headers.get("content-length")
        # Batch input files have their own, larger limit.
        limit = settings.max_file_bytes if request.url.path == "/v1/files" else settings.max_request_bytes
        if length is not None and (not length.isdigit() or int(length) > limit):
            return problems.problem(413, f"request body over {limit} bytes")
        return await call_next(request)

    return app
