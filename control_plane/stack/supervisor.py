"""`llmfleet up`: start every part of the local stack, seed it, report where it is, and stop it cleanly."""

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
from control_plane.stack.local_key import ensure_local_key
from control_plane.stack.processes import Child, start_child, stop_pid
from control_plane.stack.seed import seed
from control_plane.stack.state import StackState, is_our_process, state_path
from registry.db import make_engine, upgrade_to_head


@dataclass(slots=True)
class UpOptions:
    settings: Settings
    clusters: int
    demo: bool
    as_json: bool
    ready_timeout: float = 60.0


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
    env = {"LLMFLEET_DATABASE_URL": settings.database_url, "LLMFLEET_ENVIRONMENT": settings.environment.value}
    argv = [sys.executable, "-m", "control_plane.cli.main", "serve",
            "--host", settings.api_host, "--port", str(settings.api_port)]
    children = [start_child("api", argv, env=env, log_dir=log_dir)]
    urls = {"api": api_url, "docs": f"{api_url}/docs"}
    state = StackState(supervisor_pid=os.getpid(), processes=[c.record() for c in children], urls=urls)
    state.save(path)

    stop = threading.Event()

    def _request_stop(signum: int, frame: FrameType | None) -> None:
        stop.set()

    previous = {s: signal.signal(s, _request_stop) for s in (signal.SIGINT, signal.SIGTERM)}
    try:
        _wait_ready(f"{api_url}/readyz", children[0], options.ready_timeout, log_dir / "api.log")
        created = seed(ApiClient(api_url, api_key), clusters=options.clusters, with_demo_deployment=options.demo)
        _announce(options.as_json, urls, api_key, created, state_dir)
        while not stop.is_set():
            for child in children:
                if child.popen.poll() is not None:
                    raise CliError(f"{child.name} exited with code {child.popen.returncode}; see {log_dir}")
            stop.wait(0.5)
    finally:
        for child in reversed(children):
            stop_pid(child.popen.pid, child.argv)
        path.unlink(missing_ok=True)
        for signum, handler in previous.items():
            signal.signal(signum, handler)


def _announce(as_json: bool, urls: dict[str, str], api_key: str, created: list[str], state_dir: Path) -> None:
    if as_json:
        print(json.dumps({**urls, "api_key": api_key, "state_dir": str(state_dir)}), flush=True)
        return
    console = Console()
    console.print("[bold green]llmfleet local stack is up[/]")
    for name, url in urls.items():
        console.print(f"  {name:<10} {url}")
    console.print(f"  api key    {api_key}")
    if created:
        console.print(f"  seeded     {', '.join(created)}")
    console.print("Ctrl-C or `llmfleet down` stops it.")


def bring_down(settings: Settings, timeout: float = 30.0) -> list[str]:
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
