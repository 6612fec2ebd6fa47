"""Wiring a Gateway from its config: one pooled HTTP client for replicas, one for the control plane."""

from __future__ import annotations

import asyncio
import contextlib
import random
import time
from collections.abc import AsyncIterator, Callable
from dataclasses import dataclass

import httpx
from opentelemetry.trace import Tracer
from starlette.applications import Starlette

from agents.gateway.app import Gateway
from agents.gateway.balancer import Balancer
from agents.gateway.config import GatewayConfig
from agents.gateway.limits import Limits, make_limits
from agents.gateway.metrics import GatewayMetrics
from agents.gateway.proxy import Proxy
from agents.gateway.snapshot import Snapshot
from agents.gateway.table import RoutingSource
from agents.gateway.replica_pool import Http1Upstream
from agents.gateway.tracing import GatewayTracing, tracer_from_env
from agents.gateway.upstream import UpstreamClient


@dataclass(slots=True)
class Parts:
    gateway: Gateway
    upstream_client: UpstreamClient
    api_client: httpx.AsyncClient
    tracer: Tracer | None = None  # set when OTLP export is configured


def build_gateway(
    config: GatewayConfig,
    *,
    upstream: UpstreamClient | None = None,
    api_transport: httpx.AsyncBaseTransport | None = None,
    limits: Limits | None = None,
    clock: Callable[[], float] = time.monotonic,
    wall_clock: Callable[[], float] = time.time,
    rng: random.Random | None = None,
) -> Parts:
    rng = rng or random.Random()
    tracer = tracer_from_env()
    upstream = upstream or Http1Upstream(max_connections=config.max_connections,
                                         connect_timeout_s=config.connect_timeout_s,
                                         read_timeout_s=config.read_timeout_s, tracer=tracer)
    api = httpx.AsyncClient(timeout=httpx.Timeout(10.0), transport=api_transport)
    metrics = GatewayMetrics()
    limits = limits or make_limits(config.limits, config.redis_url, wall_clock)
    balancer = Balancer(clock=clock, rng=rng, saturation=config.saturation,
                        breaker_threshold=config.breaker_threshold, breaker_cooldown_s=config.breaker_cooldown_s,
                        affinity_slack=config.affinity_slack)
    source = RoutingSource(config.api_url, config.api_key, api, clock)

    def forget(snapshot: Snapshot) -> None:
        balancer.forget_missing({u.endpoint for r in snapshot.routes.values() for u in r.replicas})

    source.on_change.append(forget)
    proxy = Proxy(upstream, balancer, metrics, limits, clock, config.max_attempts, config.batch_max_outstanding,
                  config.batch_retry_after_s)
    gateway = Gateway(config, source, proxy, limits, metrics, clock, rng)
    return Parts(gateway, upstream, api, tracer)


@contextlib.asynccontextmanager
async def running(parts: Parts) -> AsyncIterator[None]:
    """While open: the routing table is polled; on exit the clients are closed."""
    gateway = parts.gateway
    stop = asyncio.Event()
    with contextlib.suppress(httpx.HTTPError, ValueError, KeyError):
        await gateway.source.refresh()  # serve at once when the control plane is up
    poller = asyncio.create_task(gateway.source.run(gateway.config.poll_interval_s, stop))
    try:
        yield
    finally:
        stop.set()
        await poller
        await parts.upstream_client.close()
        await parts.api_client.aclose()
        await gateway.limits.close()


def asgi_app(parts: Parts) -> Starlette | GatewayTracing:
    """The gateway's non-inference paths as an ASGI app, for the lean server's bridge."""
    app = parts.gateway.asgi()
    return GatewayTracing(app, parts.tracer) if parts.tracer else app
