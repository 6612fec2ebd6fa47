"""The local stack's gateway: one `python -m agents.gateway` for the first cluster's region, reading the
routing table with that cluster's agent key (passed in the environment, never in argv)."""

from __future__ import annotations

import sys
from pathlib import Path

from control_plane.settings import Settings
from control_plane.stack.agent_keys import ensure_agent_keys
from control_plane.stack.processes import Child, free_port, start_child
from control_plane.stack.seed import demo_fleet
from control_plane.stack.state import StackState
from registry.db import make_engine

GATEWAY_KEY_ENV = "LLMFLEET_GATEWAY_KEY"


def gateway_argv(region: str, api_url: str, host: str, port: int) -> list[str]:
    return [sys.executable, "-m", "agents.gateway", "--region", region, "--api-url", api_url, "--host", host,
            "--port", str(port), "--poll-interval", "1.0"]



def start_gateway(
    settings: Settings, cluster: str, api_url: str, log_dir: Path, children: list[Child], state: StackState,
    path: Path,
) -> str:
    """Start the gateway beside `cluster`'s agent; it joins `children` (stopped with the agents). Returns its URL."""
    region = next(c["region"] for c in demo_fleet()["clusters"] if c["name"] == cluster)
    engine = make_engine(settings.database_url)
    try:
        key = ensure_agent_keys(engine, settings.state_dir, [cluster])[cluster]
    finally:
        engine.dispose()
    port = free_port(settings.api_host)
    child = start_child("gateway", gateway_argv(region, api_url, settings.api_host, port),
                        env={GATEWAY_KEY_ENV: key}, log_dir=log_dir)
    children.append(child)
    url = f"http://{settings.api_host}:{port}"
    state.processes.append(child.record())
    state.urls["gateway"] = url
    state.save(path)  # recorded at once, so `llmfleet down` finds it even if `up` dies next
    return url
