"""`llmfleet dashboard`: run the Streamlit cost and SLA dashboard against a control plane (and Prometheus)."""

from __future__ import annotations

import signal
from pathlib import Path
from types import FrameType
from typing import Annotated

import typer

from control_plane.cli.api_client import DEFAULT_API_URL
from control_plane.cli.errors import CliError, cli_errors
from control_plane.stack.dashboard import DEFAULT_PORT, start_dashboard, wait_for_dashboard
from control_plane.stack.processes import stop_pid


def _url(value: str | None, option: str) -> str | None:
    if value is None or not value.strip():
        return None
    if not value.startswith(("http://", "https://")):
        raise CliError(f"{option} must be an http(s) URL, not {value!r}")
    return value.rstrip("/")


def _interrupt(signum: int, frame: FrameType | None) -> None:
    raise KeyboardInterrupt  # `kill` stops the dashboard as Ctrl-C does


@cli_errors
def dashboard(
    api_url: Annotated[str, typer.Option("--api-url", envvar="LLMFLEET_API_URL", help="control-plane URL")] = DEFAULT_API_URL,
    api_key: Annotated[str | None, typer.Option("--api-key", envvar="LLMFLEET_API_KEY", show_default=False,
                                                help="API key (the read scope is enough)")] = None,
    prometheus_url: Annotated[str | None, typer.Option("--prometheus-url", envvar="LLMFLEET_PROMETHEUS_URL",
                                                       help="Prometheus URL (optional)")] = None,
    temporal_ui_url: Annotated[str | None, typer.Option("--temporal-ui-url", envvar="LLMFLEET_TEMPORAL_UI_URL",
                                                        help="Temporal Web UI URL (optional)")] = None,
    host: Annotated[str, typer.Option("--host", help="address to listen on")] = "127.0.0.1",
    port: Annotated[int, typer.Option("--port", min=1, max=65535)] = DEFAULT_PORT,
    refresh: Annotated[float, typer.Option("--refresh", min=1, max=3600, help="seconds between refreshes")] = 15.0,
    log_dir: Annotated[Path, typer.Option("--log-dir", help="where Streamlit's log goes")] = Path(".llmfleet/logs"),
) -> None:
    """Serve the dashboard until Ctrl-C."""
    if not api_key:
        raise CliError("no API key: pass --api-key or set LLMFLEET_API_KEY")
    child, url = start_dashboard(api_url=_url(api_url, "--api-url") or DEFAULT_API_URL, api_key=api_key, host=host,
                                 port=port, log_dir=log_dir, prometheus_url=_url(prometheus_url, "--prometheus-url"),
                                 temporal_ui_url=_url(temporal_ui_url, "--temporal-ui-url"), refresh_s=refresh)
    previous = signal.signal(signal.SIGTERM, _interrupt)
    try:
        wait_for_dashboard(url, child, timeout=60.0, log=log_dir / "dashboard.log")
        print(f"dashboard: {url}", flush=True)
        child.popen.wait()
        if child.popen.returncode:
            raise CliError(f"the dashboard exited with code {child.popen.returncode}; see {log_dir / 'dashboard.log'}")
    except KeyboardInterrupt:
        pass
    finally:
        stop_pid(child.popen.pid, child.argv)
        signal.signal(signal.SIGTERM, previous)
