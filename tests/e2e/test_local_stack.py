"""`llmfleet up --json` then `llmfleet down`, as a user runs them: in a fresh working directory, on free ports.
Every part answers (API, each agent's /metrics, each replica's /v1/models), and afterwards nothing it
started is still running."""

from __future__ import annotations

import json
import os
import signal
import subprocess
import sys
import threading
import time
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import httpx
import openai
import pytest

from tests.support.ports import free_port

CLI = [sys.executable, "-m", "control_plane.cli.main"]
UP_TIMEOUT_S = 240.0  # bounded wait for the JSON line (2 cores, three agents starting at once)


def _env() -> dict[str, str]:
    # The stack must use its embedded defaults in the working directory, not whatever this shell points at.
    return {k: v for k, v in os.environ.items() if not k.startswith("LLMFLEET_")}


def _alive(pid: int) -> bool:
    try:
        os.kill(pid, 0)
    except ProcessLookupError:
        return False
    try:
        return Path(f"/proc/{pid}/stat").read_text().rsplit(")", 1)[1].split()[0] != "Z"
    except (OSError, IndexError):
        return True


def _first_line(process: subprocess.Popen[str], timeout: float) -> str:
    assert process.stdout is not None
    lines: list[str] = []
    reader = threading.Thread(target=lambda: lines.append(process.stdout.readline()), daemon=True)  # type: ignore[union-attr]
    reader.start()
    reader.join(timeout)
    if not lines or not lines[0]:
        stderr = process.stderr.read() if process.poll() is not None and process.stderr else ""
        pytest.fail(f"`llmfleet up --json` printed nothing within {timeout:.0f} s (exit {process.poll()}): {stderr}")
    return lines[0]


@pytest.fixture
def workdir(tmp_path: Path) -> Iterator[Path]:
    yield tmp_path
    # Whatever a failed test left behind, by the PIDs the stack recorded (never by name).
    state = tmp_path / ".llmfleet" / "stack.json"
    if state.exists():
        data = json.loads(state.read_text())
        for pid in [data["supervisor_pid"], *(p["pid"] for p in data["processes"])]:
            if _alive(pid):
                os.kill(pid, signal.SIGKILL)


@pytest.mark.slow
def test_up_json_then_down_leaves_nothing_running(workdir: Path) -> None:
    port = free_port()
    up = subprocess.Popen([*CLI, "up", "--json", "--port", str(port)], cwd=workdir, env=_env(), text=True,
                          stdout=subprocess.PIPE, stderr=subprocess.PIPE, stdin=subprocess.DEVNULL)
    try:
        info: dict[str, Any] = json.loads(_first_line(up, UP_TIMEOUT_S))
        assert info["api"] == f"http://127.0.0.1:{port}" and info["api_key"].startswith("lf_")
        assert sorted(info["agents"]) == ["aws-eu-central-1", "aws-us-east-1", "aws-us-west-2"]
        # The demo is deployed by the DeployWorkflow: as many replicas as its plan chose (min_replicas 2).
        assert len(info["replicas"]) >= 2
        assert ":" in info["temporal"] and info["temporal_ui"].startswith("http://127.0.0.1:")
        assert httpx.get(info["temporal_ui"], timeout=10).status_code == 200

        assert httpx.get(f"{info['api']}/readyz", timeout=10).json()["status"] == "ready"
        for cluster, url in info["agents"].items():
            metrics = httpx.get(f"{url}/metrics", timeout=10)
            assert metrics.status_code == 200 and f'agent_info{{cluster="{cluster}"}} 1.0' in metrics.text
        for name, url in info["replicas"].items():
            models = httpx.get(f"{url}/v1/models", timeout=10).json()
            assert [m["id"] for m in models["data"]] == ["demo"], name
        api = httpx.Client(base_url=info["api"], headers={"Authorization": f"Bearer {info['api_key']}"}, timeout=10)
        deadline = time.monotonic() + 60  # the registry hears it with the next heartbeat
        want = {"ready": len(info["replicas"])}
        while api.get("/v1/deployments/demo").json()["observed"]["replicas_by_status"] != want:
            assert time.monotonic() < deadline, api.get("/v1/deployments/demo").json()["observed"]
            time.sleep(0.5)

        # The gateway serves the demo with the official OpenAI client and the same key.
        client = openai.OpenAI(base_url=f"{info['gateway']}/v1", api_key=info["api_key"], max_retries=0)
        chat = client.chat.completions.create(model="demo", messages=[{"role": "user", "content": "hi"}],
                                              max_tokens=8)
        assert chat.choices[0].message.content and chat.usage is not None and chat.usage.completion_tokens > 0

        # A short trace replayed through the gateway: every request answered, all counted by Prometheus.
        trace = workdir / "trace.csv"
        trace.write_text("timestamp,prompt_tokens,output_tokens\n"
                         + "".join(f"{i * 0.1:.1f},{50 + i},{4 + i % 5}\n" for i in range(30)))
        replayed = subprocess.run([*CLI, "replay", str(trace), "--model", "demo", "--gateway", info["gateway"],
                                   "--api-key", info["api_key"], "--json"], cwd=workdir, env=_env(), text=True,
                                  capture_output=True, timeout=120, check=False)
        assert replayed.returncode == 0, replayed.stderr
        report = json.loads(replayed.stdout)
        assert report["sent"] == 30 and report["ok"] == 30 and report["ttft_ms"]["p95"] is not None

        # Prometheus scrapes the stack: the API, the worker, the agents, the gateway and the replicas.
        prom = info["prometheus"]
        deadline = time.monotonic() + 60
        while True:
            up_series = httpx.get(f"{prom}/api/v1/query", params={"query": "up == 1"}, timeout=10).json()
            components = {r["metric"].get("component") for r in up_series["data"]["result"]}
            if {"api", "worker", "agent", "gateway", "replica"} <= components:
                break
            assert time.monotonic() < deadline, components
            time.sleep(1)
        query = 'sum(llmfleet_gateway_requests_total{deployment="demo"})'
        while True:  # the chat above and the 30 replayed requests
            result = httpx.get(f"{prom}/api/v1/query", params={"query": query}, timeout=10).json()["data"]["result"]
            if result and float(result[0]["value"][1]) >= 31:
                break
            assert time.monotonic() < deadline + 30, result
            time.sleep(1)

        state = json.loads((workdir / ".llmfleet" / "stack.json").read_text())
        pids = [state["supervisor_pid"], *(p["pid"] for p in state["processes"])]
        # supervisor, Temporal, worker, API, three agents, gateway, Prometheus, dashboard
        assert len(pids) == 10 and all(_alive(pid) for pid in pids)
        assert httpx.get(f"{info['dashboard']}/_stcore/health", timeout=10).status_code == 200
        workflows = api.get("/v1/deployments/demo/workflows").json()
        assert workflows["temporal"] is True
        running = {w["workflow_id"] for w in workflows["workflows"] if w["status"] == "running"}
        assert "autoscale-demo" in running, workflows  # the demo autoscales from the start

        down = subprocess.run([*CLI, "down", "--json"], cwd=workdir, env=_env(), text=True, capture_output=True,
                              timeout=180, check=False)
        assert down.returncode == 0, down.stderr
        assert len(json.loads(down.stdout)["stopped"]) == 10
        assert up.wait(timeout=60) == 0
        assert [pid for pid in pids if _alive(pid)] == []
        for url in [info["api"], info["temporal_ui"], info["gateway"], prom, info["dashboard"], *info["agents"].values(),
                    *info["replicas"].values()]:
            with pytest.raises(httpx.ConnectError):
                httpx.get(url, timeout=2)
        assert not (workdir / ".llmfleet" / "stack.json").exists()
    finally:
        if up.poll() is None:
            up.send_signal(signal.SIGTERM)
            up.wait(timeout=90)
