"""`llmfleet gateway`: run one region's OpenAI-compatible gateway in the foreground
(the same program as `python -m agents.gateway`)."""

from __future__ import annotations

import os
from typing import Annotated

import typer

from control_plane.cli.errors import CliError, cli_errors


@cli_errors
def gateway(
    region: Annotated[str, typer.Option("--region", help="the gateway's region (default client region)")],
    api_url: Annotated[str, typer.Option("--api-url", envvar="LLMFLEET_API_URL", help="control-plane URL")],
    api_key: Annotated[
        str | None,
        typer.Option("--api-key", envvar="LLMFLEET_GATEWAY_KEY", show_default=False,
                     help="an agent (or admin) key that reads /v1/routing (prefer the environment variable)"),
    ] = None,
    host: Annotated[str, typer.Option("--host")] = "127.0.0.1",
    port: Annotated[int, typer.Option("--port", min=1, max=65535)] = 8090,
    poll_interval: Annotated[float, typer.Option("--poll-interval", min=0.05)] = 2.0,
    requests_per_minute: Annotated[int, typer.Option("--requests-per-minute", min=0, help="per key; 0: off")] = 0,
    tokens_per_minute: Annotated[int, typer.Option("--tokens-per-minute", min=0, help="per key; 0: off")] = 0,
    redis_url: Annotated[str | None, typer.Option("--redis-url", envvar="LLMFLEET_REDIS_URL",
                                                  help="share limits across gateways")] = None,
    prefix_affinity_chars: Annotated[int, typer.Option(
        "--prefix-affinity-chars", min=0,
        help="route requests sharing this many leading prompt characters to one replica (warm prefix cache); 0: off",
    )] = 0,
    log_level: Annotated[str, typer.Option("--log-level")] = "warning",
) -> None:
    """Serve /v1/chat/completions, /v1/completions, /v1/embeddings and /v1/models for one region."""
    # A data-plane program reached over HTTP only: imported here, not at CLI load.
    import logging

    from agents.gateway.build import build_gateway
    from agents.gateway.config import GatewayConfig
    from agents.gateway.limits import LimitConfig
    from agents.gateway.serve import run

    try:
        config = GatewayConfig(
            region=region, api_url=api_url,
            api_key=api_key or os.environ.get("LLMFLEET_AGENT_KEY", ""), host=host, port=port,
            poll_interval_s=poll_interval, limits=LimitConfig(requests_per_minute, tokens_per_minute),
            redis_url=redis_url or None, prefix_affinity_chars=prefix_affinity_chars,
        )
    except ValueError as error:
        raise CliError(str(error)) from None
    logging.basicConfig(level=log_level.upper(), format="%(asctime)s %(levelname)s %(name)s: %(message)s")
    run(build_gateway(config))
