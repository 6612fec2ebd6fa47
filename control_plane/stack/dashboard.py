"""The Streamlit dashboard as a child process of `llmfleet up` (or of `llmfleet dashboard`): headless, no
usage statistics, no browser opened, bound to one address. Its settings (the API key among them) go in the
environment, never in argv, like the agents' keys."""

from __future__ import annotations

import importlib.util
import sys
import time
from pathlib import Path

import httpx

from control_plane.cli.errors import CliError
from control_plane.stack.processes import Child, free_port, start_child

DEFAULT_PORT = 8501
# The variables dashboard/config.py reads (control_plane may not import dashboard/; a unit test keeps them equal).
API_URL_ENV = "LLMFLEET_API_URL"
API_KEY_ENV = "LLMFLEET_API_KEY"
PROMETHEUS_URL_ENV = "LLMFLEET_PROMETHEUS_URL"
TEMPORAL_UI_URL_ENV = "LLMFLEET_TEMPORAL_UI_URL"
REFRESH_ENV = "LLMFLEET_DASHBOARD_REFRESH_S"


def app_path() -> Path:
    """dashboard/app.py of the installed package (found without importing Streamlit here)."""
    spec = importlib.util.find_spec("dashboard")
    if spec is None or spec.origin is None:
        raise CliError("the dashboard package is not installed")
    return Path(spec.origin).parent / "app.py"


def streamlit_installed() -> bool:
    return importlib.util.find_spec("streamlit") is not None


def dashboard_argv(host: str, port: int) -> list[str]:
    return [sys.executable, "-m", "streamlit", "run", str(app_path()),
            "--server.headless=true", f"--server.address={host}", f"--server.port={port}",
            "--browser.gatherUsageStats=false", f"--browser.serverAddress={host}", f"--browser.serverPort={port}",
            "--server.fileWatcherType=none", "--server.runOnSave=false", "--client.toolbarMode=minimal",
            "--global.developmentMode=false"]


def start_dashboard(
    *, api_url: str, api_key: str, host: str, log_dir: Path, port: int | None = None,
    prometheus_url: str | None = None, temporal_ui_url: str | None = None, refresh_s: float = 15.0,
) -> tuple[Child, str]:
    """Start `streamlit run dashboard/app.py`; returns the child and the dashboard's URL. `port=None` takes
    8501 when free, else any free port. Wait for it with `wait_for_dashboard`."""
    if not streamlit_installed():
        raise CliError("streamlit is not installed: the dashboard needs it (pip install streamlit)")
    chosen = port if port is not None else free_port(host, DEFAULT_PORT)
    env = {API_URL_ENV: api_url, API_KEY_ENV: api_key, REFRESH_ENV: f"{refresh_s:g}",
           PROMETHEUS_URL_ENV: prometheus_url or "", TEMPORAL_UI_URL_ENV: temporal_ui_url or "",
           "STREAMLIT_BROWSER_GATHER_USAGE_STATS": "false"}
    child = start_child("dashboard", dashboard_argv(host, chosen), env=env, log_dir=log_dir)
    return child, f"http://{host}:{chosen}"


def wait_for_dashboard(url: str, child: Child, timeout: float, log: Path | None = None) -> None:
    """Until Streamlit's health endpoint answers `ok`, or the child dies, or the time is up."""
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        if child.popen.poll() is not None:
            tail = log.read_text(errors="replace")[-2000:] if log is not None and log.exists() else ""
            raise CliError(f"the dashboard exited with code {child.popen.returncode} while starting:\n{tail}")
        try:
            response = httpx.get(f"{url}/_stcore/health", timeout=1.0)
            if response.status_code == 200 and response.text.strip() == "ok":
                return
        except httpx.HTTPError:
            pass
        time.sleep(0.2)
    raise CliError(f"the dashboard did not answer at {url}/_stcore/health within {timeout:.0f} s")
