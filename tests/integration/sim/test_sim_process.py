"""`python -m agents.sim` as a real process: SIGTERM drain, crash flags, exit codes, many replicas, the CLI."""

from __future__ import annotations

import json
import os
import select
import signal
import subprocess
import sys
import threading
import time
from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path
from typing import Any

import httpx
import pytest

STARTUP_TIMEOUT_S = 30.0


def _read_ready(proc: subprocess.Popen[str]) -> dict[str, Any]:
    assert proc.stdout is not None
    deadline = time.monotonic() + STARTUP_TIMEOUT_S
    while time.monotonic() < deadline:
        ready, _, _ = select.select([proc.stdout], [], [], 0.1)
        if ready:
            line = proc.stdout.readline()
            if line:
                return dict(json.loads(line))
        if proc.poll() is not None:
            raise AssertionError(f"simulator exited with {proc.returncode}: {proc.stderr.read() if proc.stderr else ''}")
    raise AssertionError("simulator did not become ready")


@contextmanager
def _simulator(*args: str, command: list[str] | None = None) -> Iterator[tuple[subprocess.Popen[str], list[str]]]:
    argv = command if command is not None else [sys.executable, "-m", "agents.sim"]
    proc = subprocess.Popen([*argv, *args], stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True)
    try:
        ready = _read_ready(proc)
        yield proc, [r["url"] for r in ready["replicas"]]
    finally:
        if proc.poll() is None:
            proc.kill()
        proc.wait(10)


def _stream(url: str, max_tokens: int, started: threading.Event, out: list[list[str]]) -> None:
    body = {"prompt": "tell me a story", "max_tokens": max_tokens, "stream": True}
    with httpx.stream("POST", f"{url}/v1/completions", json=body, timeout=60) as response:
        lines = []
        for line in response.iter_lines():
            lines.append(line)
            started.set()
        out.append(lines)


def _tokens(lines: list[str]) -> int:
    chunks = [json.loads(line[6:]) for line in lines if line.startswith("data: {")]
    return len("".join(c["choices"][0]["text"] for c in chunks if c["choices"]).split())


def test_sigterm_drains_in_flight_requests_and_exits_0() -> None:
    with _simulator("--model", "Llama-3.1-8B", "--accelerator", "H100", "--port", "0", "--speedup", "2") as (
        proc, (url,)
    ):
        results: list[list[str]] = []
        started = [threading.Event() for _ in range(6)]
        threads = [threading.Thread(target=_stream, args=(url, 600, ev, results)) for ev in started]
        for t in threads:
            t.start()
        for ev in started:
            assert ev.wait(20)
        proc.send_signal(signal.SIGTERM)
        time.sleep(0.1)
        refused = httpx.post(f"{url}/v1/completions", json={"prompt": "x", "max_tokens": 1}, timeout=5)
        assert refused.status_code == 503
        for t in threads:
            t.join(60)
        assert proc.wait(30) == 0
    assert len(results) == 6
    for lines in results:
        assert lines[-2] == "data: [DONE]" and _tokens(lines) == 600


def test_crash_flag_kills_the_process_with_status_1() -> None:
    with _simulator("--model", "Llama-3.1-8B", "--accelerator", "H100", "--port", "0",
                    "--fault", "crash", "--fault-after", "0.3") as (proc, (url,)):
        assert httpx.get(f"{url}/health").status_code == 200
        assert proc.wait(20) == 1
        with pytest.raises(httpx.ConnectError):
            httpx.get(f"{url}/health", timeout=2)


def test_invalid_spec_exits_2_with_one_line() -> None:
    proc = subprocess.run([sys.executable, "-m", "agents.sim", "--model", "Llama-3.1-8B", "--accelerator", "Z80"],
                          capture_output=True, text=True, timeout=60)
    assert proc.returncode == 2
    assert proc.stderr.strip().startswith("error: unknown accelerator 'Z80'")
    assert len(proc.stderr.strip().splitlines()) == 1


def test_spec_file_hosts_many_replicas_in_one_process(tmp_path: Path) -> None:
    specs = [
        {"model": "Llama-3.1-8B", "accelerator": "H100", "speedup": 10},
        {"model": "Llama-3.1-70B", "accelerator": "H100", "speedup": 10},
        {"model": "custom-model", "params_b": 3, "accelerator": "L4", "speedup": 10, "api_key": "k"},
    ]
    spec_file = tmp_path / "replicas.json"
    spec_file.write_text(json.dumps(specs))
    with _simulator("--spec-file", str(spec_file)) as (proc, urls):
        assert len(set(urls)) == 3
        for url, spec in zip(urls, specs):
            headers = {"Authorization": "Bearer k"} if "api_key" in spec else {}
            models = httpx.get(f"{url}/v1/models", headers=headers).json()
            assert models["data"][0]["id"] == spec["model"]
            reply = httpx.post(f"{url}/v1/completions", json={"prompt": "x", "max_tokens": 3}, headers=headers)
            assert reply.json()["usage"]["completion_tokens"] == 3
        proc.send_signal(signal.SIGTERM)
        assert proc.wait(20) == 0


def test_process_exits_when_its_only_replica_crashes(tmp_path: Path) -> None:
    spec_file = tmp_path / "replicas.json"
    spec_file.write_text(json.dumps([{"model": "Llama-3.1-8B", "accelerator": "H100",
                                      "faults": [{"mode": "crash", "scope": "replica", "after_s": 0.3}]}]))
    with _simulator("--spec-file", str(spec_file)) as (proc, _):
        assert proc.wait(20) == 1


def test_llmfleet_sim_command_runs_the_simulator() -> None:
    command = [sys.executable, "-c", "import typer; from control_plane.cli.sim_cmd import sim; typer.run(sim)"]
    with _simulator("--model", "Llama-3.1-8B", "--accelerator", "H100", "--port", "0", "--speedup", "5",
                    command=command) as (proc, (url,)):
        assert httpx.get(f"{url}/health").status_code == 200
        assert httpx.get(f"{url}/v1/models").json()["data"][0]["id"] == "Llama-3.1-8B"
        os.kill(proc.pid, signal.SIGTERM)  # the command exec'd the simulator: the signal reaches it directly
        assert proc.wait(20) == 0
