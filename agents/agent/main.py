"""Building an agent from its configuration and running it until SIGTERM/SIGINT."""

from __future__ import annotations

import asyncio
import json
import logging
import signal
import time
from collections.abc import Callable
from dataclasses import dataclass
from functools import partial

import httpx

from agents.agent.agent import Agent
from agents.agent.backends import make_backend, replica_spec
from agents.agent.client import ControlPlaneClient
from agents.agent.config import AgentConfig
from agents.agent.http_server import AgentHttpServer, build_app
from agents.agent.metrics import AgentMetrics
from agents.agent.ports import pick_port
from agents.agent.reconciler import ReplicaManager, RestartPolicy
from agents.backends.base import ReplicaBackend

log = logging.getLogger(__name__)


@dataclass(slots=True)
class AgentParts:
    agent: Agent
    backend: ReplicaBackend
    scrape_http: httpx.AsyncClient


def build_agent(
    config: AgentConfig,
    *,
    backend: ReplicaBackend | None = None,
    control_plane_transport: httpx.AsyncBaseTransport | None = None,
    scrape_transport: httpx.AsyncBaseTransport | None = None,
    clock: Callable[[], float] = time.monotonic,
) -> AgentParts:
    """Wire an agent; tests pass their own backend, transports and clock."""
    backend = backend if backend is not None else make_backend(config)
    metrics = AgentMetrics(config.cluster)
    scrape_http = httpx.AsyncClient(
        timeout=httpx.Timeout(config.scrape_timeout_s), transport=scrape_transport, trust_env=False)
    replicas = ReplicaManager(
        backend,
        build_spec=partial(replica_spec, config),
        pick_port=partial(pick_port, config.host),
        scrape_http=scrape_http,
        metrics=metrics,
        restart=RestartPolicy(config.restart_base_s, config.restart_max_s, config.max_consecutive_restarts,
                              config.stable_after_s),
        window_s=config.telemetry_window_s,
        clock=clock,
    )
    client = ControlPlaneClient(config.api_url, config.api_key, config.cluster,
                                transport=control_plane_transport, timeout_s=config.request_timeout_s)
    agent = Agent(config, client=client, replicas=replicas, metrics=metrics, clock=clock)
    return AgentParts(agent=agent, backend=backend, scrape_http=scrape_http)


async def serve(
    config: AgentConfig,
    stop: asyncio.Event | None = None,
    *,
    backend: ReplicaBackend | None = None,
    on_ready: Callable[[Agent, str], None] | None = None,
) -> None:
    """Run an agent with its HTTP server until `stop` is set, or until SIGTERM/SIGINT when it owns the process
    (no `stop` given). `on_ready(agent, url)` is called once it listens (tests use it to find the agent)."""
    owns_process = stop is None
    stop = stop if stop is not None else asyncio.Event()
    parts = build_agent(config, backend=backend)
    agent = parts.agent
    server = AgentHttpServer(build_app(agent.metrics.render, agent.status), config.metrics_host, config.metrics_port)
    loop = asyncio.get_running_loop()
    try:
        await server.start()
        if owns_process:
            for sig in (signal.SIGTERM, signal.SIGINT):
                loop.add_signal_handler(sig, stop.set)
        if on_ready is not None:
            on_ready(agent, server.url)
        # One JSON line on stdout, so whoever started the agent on port 0 learns where it is.
        print(json.dumps({"cluster": config.cluster, "agent": server.url, "backend": config.backend}), flush=True)
        log.info("agent for %s on %s, backend %s, control plane %s", config.cluster, server.url, config.backend,
                 config.api_url)
        await agent.run(stop)
    finally:
        log.info("agent for %s stopping: draining its replicas", config.cluster)
        await agent.shutdown()
        await parts.scrape_http.aclose()
        close = getattr(parts.backend, "close", None)
        if close is not None:
            await asyncio.to_thread(close)
        await server.stop()


def run(config: AgentConfig, log_level: str = "INFO") -> None:
    logging.basicConfig(level=log_level.upper(), format="%(asctime)s %(levelname)s %(name)s: %(message)s")
    logging.getLogger("httpx").setLevel(logging.WARNING)  # one line per poll and scrape drowns the rest
    asyncio.run(serve(config))
