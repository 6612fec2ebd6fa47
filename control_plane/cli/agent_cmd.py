"""`llmfleet agent`: run one cluster's agent in the foreground (the same program as `python -m agents.agent`)."""

from __future__ import annotations

import os
from pathlib import Path
from typing import Annotated

import typer

from control_plane.cli.errors import CliError, cli_errors

DEFAULT_LOG_DIR = Path(".llmfleet/agent-logs")


@cli_errors
def agent(
    cluster: Annotated[str, typer.Option("--cluster", help="the cluster this agent runs")],
    api_url: Annotated[str, typer.Option("--api-url", envvar="LLMFLEET_API_URL", help="control-plane URL")],
    api_key: Annotated[
        str | None,
        typer.Option("--api-key", envvar="LLMFLEET_AGENT_API_KEY", show_default=False,
                     help="the cluster's agent key (prefer the environment variable: argv is visible to ps)"),
    ] = None,
    backend: Annotated[str, typer.Option("--backend", help="sim or vllm")] = "sim",
    interval: Annotated[float, typer.Option("--interval", min=0.05, help="seconds between reconcile passes")] = 2.0,
    ready_timeout: Annotated[float, typer.Option("--ready-timeout", min=1.0)] = 600.0,
    drain_timeout: Annotated[int, typer.Option("--drain-timeout", min=0)] = 30,
    metrics_host: Annotated[str, typer.Option("--metrics-host")] = "127.0.0.1",
    metrics_port: Annotated[int, typer.Option("--metrics-port", min=0, max=65535, help="0: any free port")] = 0,
    sim_speedup: Annotated[float, typer.Option("--sim-speedup", min=0.01)] = 1.0,
    vllm_model: Annotated[str | None, typer.Option("--vllm-model", help="local model dir for vllm replicas")] = None,
    log_level: Annotated[str, typer.Option("--log-level")] = "INFO",
) -> None:
    """Run a cluster's agent: pull desired replicas, run them, report heartbeats. Ctrl-C drains and stops."""
    # The agent is a data-plane program that talks to the control plane over HTTP only; the CLI is just
    # one more way to start it, so it is imported here rather than at module load.
    from agents.agent.config import API_KEY_ENV, AgentConfig
    from agents.agent.main import run

    try:
        config = AgentConfig(
            cluster=cluster, api_url=api_url, api_key=api_key or os.environ.get(API_KEY_ENV, ""), backend=backend,
            interval_s=interval, ready_timeout_s=ready_timeout, drain_timeout_s=drain_timeout,
            metrics_host=metrics_host, metrics_port=metrics_port, sim_speedup=sim_speedup, vllm_model=vllm_model,
            log_dir=DEFAULT_LOG_DIR,
        )
        run(config, log_level)
    except ValueError as error:
        raise CliError(str(error)) from None
