"""`llmfleet serve`, `llmfleet up` and `llmfleet down`."""

from __future__ import annotations

from typing import Annotated

import typer
import uvicorn

from control_plane.cli.errors import CliError, cli_errors
from control_plane.cli.output import JsonFlag, emit_json
from control_plane.settings import Settings
from control_plane.stack.supervisor import UpOptions, bring_down, bring_up


def _settings(**overrides: object) -> Settings:
    try:
        return Settings(**{k: v for k, v in overrides.items() if v is not None})
    except ValueError as error:
        raise CliError(str(error).replace("\n", " ")) from None


@cli_errors
def serve(
    host: Annotated[str | None, typer.Option("--host", help="default: LLMFLEET_API_HOST or 127.0.0.1")] = None,
    port: Annotated[int | None, typer.Option("--port", min=1, max=65535, help="default: LLMFLEET_API_PORT or 8080")] = None,
) -> None:
    """Run the control-plane API (applies database migrations first)."""
    from control_plane.app import create_app
    from control_plane.tracing import tracer_provider, use_globally

    settings = _settings(api_host=host, api_port=port)
    # One provider for the process: the API's request spans and the Temporal client's StartWorkflow spans
    # (None: tracing is off).
    provider = tracer_provider("llmfleet-api", settings.otlp_endpoint)
    use_globally(provider)
    app = create_app(settings, tracing=provider)
    uvicorn.run(app, host=settings.api_host, port=settings.api_port, log_level="info")


@cli_errors
def up(
    port: Annotated[int | None, typer.Option("--port", min=1, max=65535, help="API port")] = None,
    clusters: Annotated[int, typer.Option("--clusters", min=1, max=5, help="simulated clusters")] = 3,
    no_demo: Annotated[bool, typer.Option("--no-demo", help="do not create the demo deployment")] = False,
    as_json: JsonFlag = False,
) -> None:
    """Start the local fleet on embedded defaults; Ctrl-C or `llmfleet down` stops it."""
    bring_up(UpOptions(settings=_settings(api_port=port), clusters=clusters, demo=not no_demo, as_json=as_json))


@cli_errors
def down(as_json: JsonFlag = False) -> None:
    """Stop the local stack started by `llmfleet up` (only the processes it started)."""
    stopped = bring_down(_settings())
    if as_json:
        emit_json({"stopped": stopped})
    else:
        print("stopped: " + ", ".join(stopped) if stopped else "no local stack is running")
