"""Fakes for the agent's unit tests: a replica backend, a control plane behind httpx.MockTransport, a clock."""

from __future__ import annotations

import hashlib
import json
import threading
from pathlib import Path
from typing import Any

import httpx

from agents.agent.config import AgentConfig
from agents.agent.main import AgentParts, build_agent
from agents.backends.base import BackendError, ReplicaHandle, ReplicaSpec, ReplicaState, ReplicaStatus

CLUSTER = "aws-use1"


class FakeClock:
    def __init__(self, now: float = 1000.0) -> None:
        self.now = now

    def __call__(self) -> float:
        return self.now

    def advance(self, seconds: float) -> None:
        self.now += seconds


class FakeBackend:
    """Replicas that do what the test says: start STARTING, then `ready`, `crash`, `die` on command."""

    name = "fake"

    def __init__(self) -> None:
        self.started: list[ReplicaSpec] = []
        self.stopped: list[tuple[str, bool]] = []
        self.fail_launch: set[str] = set()
        self._status: dict[str, ReplicaStatus] = {}
        self._lock = threading.Lock()

    def start(self, spec: ReplicaSpec) -> ReplicaHandle:
        if spec.replica_id in self.fail_launch:
            raise BackendError(f"no room for {spec.replica_id}")
        with self._lock:
            self.started.append(spec)
            self._status[spec.replica_id] = ReplicaStatus(ReplicaState.STARTING)
            return ReplicaHandle(spec.replica_id, self.name, spec, started_at=float(len(self.started)))

    def poll(self, handle: ReplicaHandle) -> ReplicaStatus:
        with self._lock:
            return self._status[handle.replica_id]

    def stop(self, handle: ReplicaHandle, drain: bool = True) -> ReplicaStatus:
        with self._lock:
            self.stopped.append((handle.replica_id, drain))
            ever = self._status[handle.replica_id].ever_ready
            self._status[handle.replica_id] = ReplicaStatus(ReplicaState.EXITED, exit_code=0, ever_ready=ever)
            return self._status[handle.replica_id]

    # what the test makes happen
    def ready(self, *names: str) -> None:
        for name in names:
            self._status[name] = ReplicaStatus(ReplicaState.READY, ever_ready=True)

    def crash(self, name: str) -> None:
        self._status[name] = ReplicaStatus(ReplicaState.FAILED, exit_code=-9, ever_ready=True, detail="killed")

    def preempt(self, name: str) -> None:
        self._status[name] = ReplicaStatus(ReplicaState.FAILED, ever_ready=True, detail="preempted: spot reclaimed",
                                           preempted=True)

    def die_before_ready(self, name: str) -> None:
        self._status[name] = ReplicaStatus(ReplicaState.FAILED, exit_code=1, detail="CUDA out of memory")

    def starts_of(self, name: str) -> int:
        return sum(1 for spec in self.started if spec.replica_id == name)

    def running(self) -> set[str]:
        return {n for n, s in self._status.items() if not s.state.terminal}


def replica_json(name: str, desired_state: str = "running", deployment: str = "chat") -> dict[str, Any]:
    return {
        "name": name, "deployment": deployment, "model": "llama-3.1-8b", "version": "v1",
        "artifact_uri": "hf://meta-llama/Llama-3.1-8B-Instruct", "digest": "sha256:" + "ab" * 32,
        "architecture": {"params_b": 8.03, "layers": 32, "hidden": 4096, "kv_heads": 8, "head_dim": 128,
                         "context": 131072},
        "variant": {"name": "fp8", "bytes_per_param": 1.0, "kv_bytes_per_elem": 2.0, "quality_delta": 0.0},
        "pool": {"name": "g6.xlarge/on-demand", "accelerator": "L4", "instance_type": "g6.xlarge",
                 "gpus_per_instance": 1, "market": "on-demand"},
        "tensor_parallel": 1, "desired_state": desired_state,
    }


class FakeControlPlane:
    """The agent API of one cluster, in memory; `down = True` makes every call fail to connect."""

    def __init__(self, cluster: str = CLUSTER) -> None:
        self.cluster = cluster
        self.generation = 0
        self.replicas: list[dict[str, Any]] = []
        self.down = False
        self.heartbeats: list[dict[str, Any]] = []
        self.desired_calls = 0
        self.not_modified = 0
        self.transport = httpx.MockTransport(self.handle)

    def want(self, *names: str, stopped: tuple[str, ...] = ()) -> None:
        """A new desired state: these replicas running, those stopped."""
        self.generation += 1
        self.replicas = [replica_json(n) for n in names] + [replica_json(n, "stopped") for n in stopped]

    def body(self) -> dict[str, Any]:
        return {"cluster": self.cluster, "generation": self.generation, "replicas": self.replicas}

    def etag(self) -> str:
        digest = hashlib.sha256(json.dumps(self.body(), sort_keys=True).encode()).hexdigest()[:16]
        return f'"{self.generation}-{digest}"'

    def handle(self, request: httpx.Request) -> httpx.Response:
        if self.down:
            raise httpx.ConnectError("connection refused", request=request)
        assert request.headers["authorization"] == "Bearer lf_test_agent"
        path = request.url.path
        if request.method == "GET" and path == f"/v1/agent/clusters/{self.cluster}/desired":
            self.desired_calls += 1
            if request.headers.get("if-none-match") == self.etag():
                self.not_modified += 1
                return httpx.Response(304, headers={"ETag": self.etag()})
            return httpx.Response(200, json=self.body(), headers={"ETag": self.etag()})
        if request.method == "POST" and path == f"/v1/agent/clusters/{self.cluster}/heartbeat":
            self.heartbeats.append(json.loads(request.content))
            return httpx.Response(200, json={"cluster": self.cluster, "accepted": [], "unknown": [],
                                             "transitions": {}, "deleted_deployments": [],
                                             "desired_generation": self.generation})
        return httpx.Response(404, json={"detail": "no such route"})

    def last_states(self) -> dict[str, str]:
        return {r["name"]: r["state"] for r in self.heartbeats[-1]["replicas"]}

    def last_report(self, name: str) -> dict[str, Any]:
        return next(r for r in self.heartbeats[-1]["replicas"] if r["name"] == name)


def make_config(tmp_path: Path, **overrides: Any) -> AgentConfig:
    values: dict[str, Any] = {
        "cluster": CLUSTER, "api_url": "http://control-plane.test", "api_key": "lf_test_agent", "interval_s": 1.0,
        "ready_timeout_s": 60.0, "restart_base_s": 1.0, "restart_max_s": 8.0, "max_consecutive_restarts": 3,
        "stable_after_s": 30.0, "log_dir": tmp_path,
    }
    values.update(overrides)
    return AgentConfig(**values)


def make_agent(
    tmp_path: Path,
    backend: FakeBackend,
    control_plane: FakeControlPlane,
    clock: FakeClock,
    scrape: httpx.AsyncBaseTransport | None = None,
    **overrides: Any,
) -> AgentParts:
    def no_metrics(request: httpx.Request) -> httpx.Response:
        return httpx.Response(503)

    return build_agent(
        make_config(tmp_path, **overrides), backend=backend, control_plane_transport=control_plane.transport,
        scrape_transport=scrape or httpx.MockTransport(no_metrics), clock=clock,
    )
