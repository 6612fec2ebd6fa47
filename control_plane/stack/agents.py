"""The local stack's agents: one `python -m agents.agent` process per cluster, with the `sim` backend (its
simulated replicas live inside the agent process: light enough for a 2-core machine)."""

from __future__ import annotations

import sys
import time
from collections.abc import Mapping
from pathlib import Path
from typing import Any

import httpx

from control_plane.cli.errors import CliError
from control_plane.stack.processes import Child

AGENT_KEY_ENV = "LLMFLEET_AGENT_API_KEY"  # the agent reads its key from here, never from argv


def agent_argv(cluster: str, api_url: str, port: int, log_dir: Path, interval_s: float = 1.0) -> list[str]:
    return [
        sys.executable, "-m", "agents.agent", "--cluster", cluster, "--api-url", api_url, "--backend", "sim",
        "--metrics-port", str(port), "--interval", str(interval_s), "--log-dir", str(log_dir),
    ]


def _status(url: str) -> dict[str, Any] | None:
    try:
        response = httpx.get(f"{url}/status", timeout=2.0)
    except httpx.HTTPError:
        return None
    if response.status_code != 200:
        return None
    status: dict[str, Any] = response.json()
    return status


def wait_for_replicas(
    agents: Mapping[str, str], expected: Mapping[str, int], children: list[Child], timeout: float
) -> dict[str, str]:
    """Wait until every agent answers and runs its expected number of ready replicas; returns {replica: url}.

    The agents' own view is what counts: after a restart of the stack the registry still remembers the
    replicas as ready from last time, while the agents have only just launched them again.
    """
    deadline = time.monotonic() + timeout
    last: dict[str, Any] = {}
    while time.monotonic() < deadline:
        for child in children:
            if child.popen.poll() is not None:
                raise CliError(f"{child.name} exited with code {child.popen.returncode} while starting")
        replicas: dict[str, str] = {}
        done = True
        for cluster, url in agents.items():
            status = _status(url)
            last[cluster] = status
            ready = [r for r in (status or {}).get("replicas", []) if r["state"] == "ready" and r["endpoint"]]
            failed = [r for r in (status or {}).get("replicas", []) if r["state"] == "failed"]
            if failed:
                raise CliError(f"replica {failed[0]['name']} failed: {failed[0]['failure_reason']}")
            done &= status is not None and len(ready) >= expected.get(cluster, 0)
            replicas.update({r["name"]: r["endpoint"] for r in ready})
        if done:
            return replicas
        time.sleep(0.25)
    raise CliError(f"the agents' replicas were not ready within {timeout:.0f} s (last status: {last})")
