"""The ``vllm`` backend without vLLM: argv/env building per variant, and the process lifecycle against a
stand-in server (a small script that speaks /health and forks a child like vLLM's EngineCore)."""

from __future__ import annotations

import os
import socket
import sys
import time
from collections.abc import Callable, Iterator
from dataclasses import replace
from pathlib import Path
from typing import Any

import pytest

from agents.backends.base import (
    BackendError,
    ReplicaBackend,
    ReplicaSpec,
    ReplicaState,
    ReplicaStatus,
    wait_until_settled,
)
from agents.backends.processes import live_group_members
from agents.backends.vllm_process import (
    DEFAULT_ENV,
    VLLM_ENTRYPOINT,
    VllmProcessBackend,
    build_argv,
    build_env,
    engine_flags_for_variant,
    find_vllm_python,
)
from tests.support.ports import free_port

SECRET = "sk-very-secret-123"
MakeBackend = Callable[..., VllmProcessBackend]


BASE = ReplicaSpec(replica_id="r1", model="/models/llama", served_model_name="llama", port=8001)


def spec(**overrides: Any) -> ReplicaSpec:
    return replace(BASE, **overrides)


def flag(argv: list[str], name: str) -> str | None:
    return argv[argv.index(name) + 1] if name in argv else None


# -- argv ------------------------------------------------------------------------------------------------


def test_base_argv_is_exact() -> None:
    assert build_argv(spec(), "/venv/bin/python") == [
        "/venv/bin/python", "-m", VLLM_ENTRYPOINT,
        "--model", "/models/llama",
        "--served-model-name", "llama",
        "--host", "127.0.0.1",
        "--port", "8001",
        "--dtype", "auto",
        "--tensor-parallel-size", "1",
        "--shutdown-timeout", "30",
    ]  # fmt: skip


@pytest.mark.parametrize(
    ("variant", "quantization", "dtype"),
    [
        ("bf16", None, "bfloat16"),
        ("fp16", None, "float16"),
        ("fp8", "fp8", "auto"),
        ("awq-int4", "awq", "auto"),
    ],
)
def test_variant_flags(variant: str, quantization: str | None, dtype: str) -> None:
    q, d = engine_flags_for_variant(variant)
    argv = build_argv(spec(quantization=q, dtype=d))
    assert flag(argv, "--quantization") == quantization
    assert flag(argv, "--dtype") == dtype
    if quantization is None:
        assert "--quantization" not in argv


def test_unknown_variant_is_rejected() -> None:
    with pytest.raises(ValueError, match="unknown variant"):
        engine_flags_for_variant("int3-magic")


def test_tensor_parallel_and_max_model_len() -> None:
    argv = build_argv(spec(tensor_parallel_size=4, max_model_len=8192, quantization="fp8"))
    assert flag(argv, "--tensor-parallel-size") == "4"
    assert flag(argv, "--max-model-len") == "8192"
    assert flag(argv, "--quantization") == "fp8"


def test_no_max_model_len_and_no_drain_means_no_flags() -> None:
    argv = build_argv(spec(drain_timeout_s=0))
    assert "--max-model-len" not in argv
    assert "--shutdown-timeout" not in argv


def test_extra_args_are_appended() -> None:
    argv = build_argv(spec(extra_args=("--enforce-eager", "--gpu-memory-utilization=0.85")))
    assert argv[-2:] == ["--enforce-eager", "--gpu-memory-utilization=0.85"]


@pytest.mark.parametrize("bad", ["--api-key", f"--api-key={SECRET}", "--port", "--host=0.0.0.0", "--model"])
def test_extra_args_cannot_override_owned_flags(bad: str) -> None:
    with pytest.raises(ValueError, match="may not set"):
        build_argv(spec(extra_args=(bad, "x")))


# -- the API key stays out of argv and repr -------------------------------------------------------------


def test_api_key_goes_to_env_not_argv() -> None:
    s = spec(api_key=SECRET)
    argv = build_argv(s)
    assert not any(SECRET in arg for arg in argv)
    assert "--api-key" not in argv
    env = build_env(s, base={"PATH": "/bin"})
    assert env["VLLM_API_KEY"] == SECRET
    assert SECRET not in repr(s)


def test_env_defaults_and_inherited_key_dropped() -> None:
    env = build_env(spec(), base={"PATH": "/bin", "VLLM_API_KEY": "stray", "HF_HUB_OFFLINE": "0"})
    assert "VLLM_API_KEY" not in env
    assert env["PATH"] == "/bin"
    for key, value in DEFAULT_ENV.items():
        assert env[key] == value
    assert env["HF_HUB_OFFLINE"] == "1" and env["VLLM_CPU_KVCACHE_SPACE"] == "1"


# -- spec validation ------------------------------------------------------------------------------------


@pytest.mark.parametrize(
    "overrides",
    [
        {"port": 0},
        {"port": 70000},
        {"tensor_parallel_size": 0},
        {"max_model_len": 0},
        {"quantization": ""},
        {"api_key": ""},
        {"replica_id": " "},
        {"startup_timeout_s": 0},
    ],
)
def test_spec_rejects_bad_fields(overrides: dict[str, Any]) -> None:
    with pytest.raises(ValueError):
        spec(**overrides)


def test_base_url_and_options() -> None:
    s = spec(host="::1", options=(("speedup", "10"),))
    assert s.base_url == "http://[::1]:8001"
    assert s.option("speedup") == "10" and s.option("missing", "d") == "d"


def test_find_vllm_python(tmp_path: Path) -> None:
    fake = tmp_path / "python"
    fake.touch()
    assert find_vllm_python(environ={"LLMFLEET_VLLM_PYTHON": str(fake)}) == fake
    assert find_vllm_python(environ={"LLMFLEET_VLLM_PYTHON": str(tmp_path / "nope")}) is None
    assert find_vllm_python(repo_root=tmp_path, environ={}) is None


def test_backend_satisfies_protocol(tmp_path: Path) -> None:
    backend = VllmProcessBackend("python", log_dir=tmp_path)
    assert isinstance(backend, ReplicaBackend)
    backend.close()


# -- lifecycle against a stand-in server ----------------------------------------------------------------

# Stands in for `python -m vllm.entrypoints.openai.api_server ...`: takes the same argv, serves /health
# after FAKE_DELAY seconds, forks a long-lived child in its process group (like EngineCore), and on SIGTERM
# behaves per FAKE_MODE: "ok" stops the child and exits 0, "orphan" exits leaving the child behind,
# "stubborn" ignores SIGTERM, "crash" exits 3 before serving, "hang" never serves. /health turns 503 after
# FAKE_SICK_AFTER seconds (an engine that died behind a live HTTP server).
FAKE_SERVER = r"""
import http.server, os, signal, subprocess, sys, threading, time
args = sys.argv[1:]
port = int(args[args.index("--port") + 1])
mode = os.environ.get("FAKE_MODE", "ok")
if mode == "crash":
    print("fake vllm: boom", flush=True)
    sys.exit(3)
child = subprocess.Popen([sys.executable, "-c", "import time; time.sleep(600)"])
started = time.monotonic()
ready_at = started + float(os.environ.get("FAKE_DELAY", "0"))
sick_at = started + float(os.environ.get("FAKE_SICK_AFTER", "1e9"))
class Health(http.server.BaseHTTPRequestHandler):
    def do_GET(self):
        now = time.monotonic()
        ok = self.path == "/health" and mode != "hang" and ready_at <= now < sick_at
        self.send_response(200 if ok else 503)
        self.end_headers()
    def log_message(self, *a):
        pass
server = http.server.ThreadingHTTPServer(("127.0.0.1", port), Health)
def on_term(signum, frame):
    if mode == "stubborn":
        return
    if mode == "ok":
        child.terminate()
        child.wait()
    os._exit(0)
signal.signal(signal.SIGTERM, on_term)
server.serve_forever()
"""


@pytest.fixture
def fake_python(tmp_path: Path) -> Path:
    """An executable that the backend uses as its 'python'; it ignores `-m <entrypoint>`."""
    script = tmp_path / "fake-vllm-python"
    script.write_text(f"#!{sys.executable}\n{FAKE_SERVER}")
    script.chmod(0o755)
    return script


@pytest.fixture
def make_backend(tmp_path: Path, fake_python: Path) -> Iterator[MakeBackend]:
    backends: list[VllmProcessBackend] = []

    def make(
        mode: str = "ok", delay: float = 0.0, sick_after: float = 1e9, unhealthy_after: int = 3
    ) -> VllmProcessBackend:
        env = {**os.environ, "FAKE_MODE": mode, "FAKE_DELAY": str(delay), "FAKE_SICK_AFTER": str(sick_after)}
        backend = VllmProcessBackend(
            fake_python,
            log_dir=tmp_path / "logs",
            base_env=env,
            kill_grace_s=1.0,
            unhealthy_after=unhealthy_after,
        )
        backends.append(backend)
        return backend

    yield make
    for backend in backends:
        backend.close()


def settle(backend: VllmProcessBackend, s: ReplicaSpec) -> tuple[int, ReplicaStatus]:
    handle = backend.start(s)
    assert handle.pid is not None
    return handle.pid, wait_until_settled(backend, handle, interval_s=0.05)


def test_start_ready_stop_leaves_nothing(make_backend: MakeBackend) -> None:
    backend = make_backend(delay=0.3)
    s = spec(port=free_port(), api_key=SECRET, drain_timeout_s=1)
    handle = backend.start(s)
    assert backend.poll(handle).state is ReplicaState.STARTING
    assert backend.start(s) == handle  # a repeated start of the same spec is a no-op
    status = wait_until_settled(backend, handle, interval_s=0.05)
    assert status == ReplicaStatus(ReplicaState.READY, ever_ready=True)
    assert handle.pid is not None
    cmdline = Path(f"/proc/{handle.pid}/cmdline").read_bytes()
    assert SECRET.encode() not in cmdline  # what `ps` shows
    assert len(live_group_members(handle.pid)) == 2  # server + its child
    final = backend.stop(handle, drain=True)
    assert final == ReplicaStatus(ReplicaState.EXITED, exit_code=0, ever_ready=True)
    assert live_group_members(handle.pid) == []
    assert backend.stop(handle) == final  # stopping twice is harmless
    assert backend.poll(handle) == final


def test_crash_before_ready_is_failed_with_log_tail(make_backend: MakeBackend) -> None:
    backend = make_backend(mode="crash")
    _, status = settle(backend, spec(port=free_port()))
    assert status.state is ReplicaState.FAILED
    assert status.exit_code == 3 and not status.ever_ready
    assert "before becoming ready" in status.detail and "fake vllm: boom" in status.detail


def test_startup_timeout_kills_the_group(make_backend: MakeBackend) -> None:
    backend = make_backend(mode="hang")
    pid, status = settle(backend, spec(port=free_port(), startup_timeout_s=0.5))
    assert status.state is ReplicaState.FAILED and "startup timeout" in status.detail
    assert live_group_members(pid) == []


def test_stubborn_server_is_killed_after_grace(make_backend: MakeBackend) -> None:
    backend = make_backend(mode="stubborn")
    s = spec(port=free_port(), drain_timeout_s=0)
    handle = backend.start(s)
    assert wait_until_settled(backend, handle, interval_s=0.05).state is ReplicaState.READY
    began = time.monotonic()
    final = backend.stop(handle, drain=False)
    assert 0.9 <= time.monotonic() - began < 5
    assert final.state is ReplicaState.EXITED and final.exit_code == -9
    assert handle.pid is not None and live_group_members(handle.pid) == []


def test_orphaned_engine_child_is_reaped(make_backend: MakeBackend) -> None:
    backend = make_backend(mode="orphan")
    s = spec(port=free_port())
    handle = backend.start(s)
    assert wait_until_settled(backend, handle, interval_s=0.05).state is ReplicaState.READY
    final = backend.stop(handle)
    assert final.state is ReplicaState.EXITED and final.exit_code == 0
    assert handle.pid is not None and live_group_members(handle.pid) == []


def test_crash_after_ready_is_failed_and_marked_ever_ready(make_backend: MakeBackend) -> None:
    backend = make_backend()
    handle = backend.start(spec(port=free_port()))
    assert wait_until_settled(backend, handle, interval_s=0.05).state is ReplicaState.READY
    assert handle.pid is not None
    os.killpg(handle.pid, 9)
    deadline = time.monotonic() + 5
    while (status := backend.poll(handle)).state is ReplicaState.READY and time.monotonic() < deadline:
        time.sleep(0.05)
    assert status.state is ReplicaState.FAILED and status.ever_ready and status.exit_code == -9
    assert "after serving" in status.detail


def test_port_in_use_is_refused(make_backend: MakeBackend) -> None:
    backend = make_backend()
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        sock.listen()
        with pytest.raises(BackendError, match="already in use"):
            backend.start(spec(port=sock.getsockname()[1]))


def test_running_replica_with_other_spec_is_refused(make_backend: MakeBackend) -> None:
    backend = make_backend()
    s = spec(port=free_port())
    backend.start(s)
    with pytest.raises(BackendError, match="different spec"):
        backend.start(spec(port=s.port, max_model_len=128))


def test_unknown_handle_is_an_error(make_backend: MakeBackend) -> None:
    backend = make_backend()
    other = make_backend()
    handle = other.start(spec(port=free_port()))
    with pytest.raises(BackendError, match="not started by this backend"):
        backend.poll(handle)


def test_replica_that_stops_answering_health_is_failed_and_killed(make_backend: MakeBackend) -> None:
    backend = make_backend(sick_after=1.0, unhealthy_after=2)
    handle = backend.start(spec(port=free_port()))
    assert wait_until_settled(backend, handle, interval_s=0.05).state is ReplicaState.READY
    time.sleep(1.1)
    assert backend.poll(handle).state is ReplicaState.READY  # one failed probe is tolerated
    status = backend.poll(handle)
    assert status.state is ReplicaState.FAILED and status.ever_ready
    assert "health check failed 2 times" in status.detail
    assert handle.pid is not None and live_group_members(handle.pid) == []
