"""Shared pieces of the workflow tests: agents, worker processes, a small deployment, and a load thread that
plays the router (the gateway is built elsewhere): it splits requests between versions by the published
version weights and counts what it got back."""

from __future__ import annotations

import random
import threading
import uuid
from collections.abc import Callable
from pathlib import Path
from typing import Any

import httpx
from fastapi import FastAPI
from sqlalchemy import select

from agents.agent.config import AgentConfig
from registry.api_keys import Scope, issue_key
from registry.db import transaction
from registry.deployments import Deployment
from registry.replicas import ReplicaStatus, live_replicas_of
from registry.routing import RoutingState
from tests.integration.agents.agent_harness import AgentThread, ControlPlaneServer
from tests.integration.workflows.temporal_harness import TemporalHarness, WorkerProcess
from tests.support.fleet import deployment_body, ok

POOL = "g6.xlarge/on-demand"


def small_deployment(team: httpx.Client, **overrides: Any) -> None:
    # Little demand in one region: one or two replicas, so the sim fleet stays light on 2 cores.
    overrides.setdefault("constraints", {"allowed_regions": ["us-east-1"]})
    body = deployment_body(
        demand=[{"client_region": "us-east-1", "rps": 0.5, "prompt_tokens": 200, "output_tokens": 50}], **overrides)
    ok(team.post("/v1/deployments", json=body), 201)


def start_agent(app: FastAPI, control_plane: ControlPlaneServer, tmp_path: Path, cluster: str,
                window_s: float = 60.0) -> AgentThread:
    with transaction(app.state.llmfleet.sessions) as session:
        key = issue_key(session, team="platform", scopes=[Scope.AGENT], name=f"agent-{uuid.uuid4().hex[:6]}",
                        actor="test", cluster=cluster)
    config = AgentConfig(cluster=cluster, api_url=control_plane.url, api_key=key.plaintext, interval_s=0.2,
                         ready_timeout_s=30, drain_timeout_s=5, restart_base_s=0.2, restart_max_s=1.0,
                         request_timeout_s=2.0, sim_speedup=20.0, telemetry_window_s=window_s,
                         log_dir=tmp_path / f"agent-{cluster}")
    return AgentThread(config).start()


class Workers:
    def __init__(self, temporal: TemporalHarness, task_queue: str, database_url: str, tmp_path: Path) -> None:
        self.temporal, self.task_queue, self.database_url, self.tmp_path = temporal, task_queue, database_url, tmp_path
        self.started: list[WorkerProcess] = []

    def new(self) -> WorkerProcess:
        w = WorkerProcess(self.temporal.address, self.task_queue, self.database_url,
                          self.tmp_path / f"worker-{len(self.started)}.log")
        self.started.append(w)
        return w

    def stop_all(self) -> None:
        for w in self.started:
            w.stop()


def ready_endpoints(app: FastAPI, deployment: str) -> dict[str, list[tuple[str, str]]]:
    """version -> [(replica name, endpoint)] of ready, running replicas."""
    out: dict[str, list[tuple[str, str]]] = {}
    with transaction(app.state.llmfleet.sessions) as session:
        row = session.scalar(select(Deployment).where(Deployment.name == deployment))
        if row is None:
            return out
        for r in live_replicas_of(session, row.id):
            if r.status is ReplicaStatus.READY and r.endpoint:
                out.setdefault(r.model_version.version, []).append((r.name, r.endpoint))
    return out


def version_weights(app: FastAPI, deployment: str) -> dict[str, float]:
    with transaction(app.state.llmfleet.sessions) as session:
        row = session.scalar(select(Deployment).where(Deployment.name == deployment))
        state = session.get(RoutingState, row.id) if row is not None else None
        weights = dict(state.version_weights) if state is not None and state.version_weights else {}
        return weights or ({row.model_version.version: 100.0} if row is not None else {})


class Load:
    """Requests in a background thread, split by version weights unless `only` pins a version."""

    def __init__(self, app: FastAPI, deployment: str, only: str | None = None,
                 on_new_replica: Callable[[str, str, str], None] | None = None, pause_s: float = 0.0) -> None:
        self.app, self.deployment, self.only, self.on_new_replica = app, deployment, only, on_new_replica
        self.pause_s = pause_s  # between requests: 0 sends back to back
        self.sent = self.failed = 0
        self._seen: set[str] = set()
        self._stop = threading.Event()
        self._thread = threading.Thread(target=self._run, daemon=True)
        self._rng = random.Random(7)

    def __enter__(self) -> Load:
        self._thread.start()
        return self

    def __exit__(self, *exc: object) -> None:
        self._stop.set()
        self._thread.join(30)

    def _run(self) -> None:
        with httpx.Client(timeout=30) as http:
            while not self._stop.is_set():
                endpoints = ready_endpoints(self.app, self.deployment)
                for version, reps in endpoints.items():
                    for name, endpoint in reps:
                        if name not in self._seen:
                            self._seen.add(name)
                            if self.on_new_replica is not None:
                                self.on_new_replica(version, name, endpoint)
                target = self._pick(endpoints)
                if target is None:
                    self._stop.wait(0.1)
                    continue
                self.sent += 1
                try:
                    http.post(f"{target}/v1/completions", json={"model": self.deployment, "prompt": "hi",
                                                                "max_tokens": 8, "ignore_eos": True}
                              ).raise_for_status()
                except httpx.HTTPError:
                    self.failed += 1
                if self.pause_s:
                    self._stop.wait(self.pause_s)

    def _pick(self, endpoints: dict[str, list[tuple[str, str]]]) -> str | None:
        if self.only is not None:
            reps = endpoints.get(self.only, [])
            return self._rng.choice(reps)[1] if reps else None
        weights = {v: w for v, w in version_weights(self.app, self.deployment).items() if endpoints.get(v)}
        if not weights:
            return None
        version = self._rng.choices(list(weights), weights=list(weights.values()))[0]
        return self._rng.choice(endpoints[version])[1]


class RoutedLoad:
    """Requests from client regions, sent the way the gateway does: a cluster by the published shares (or
    the registry's default), a routable replica in it; a request that fails before its first byte is
    retried once on another cluster. Records (time, cluster, ok, seconds) per request."""

    def __init__(self, app: FastAPI, deployment: str, regions: list[str]) -> None:
        self.app, self.deployment, self.regions = app, deployment, regions
        self.log: list[tuple[float, str, bool, float]] = []
        self._stop = threading.Event()
        self._thread = threading.Thread(target=self._run, daemon=True)
        self._rng = random.Random(11)

    def __enter__(self) -> RoutedLoad:
        self._thread.start()
        return self

    def __exit__(self, *exc: object) -> None:
        self._stop.set()
        self._thread.join(30)

    def _route(self) -> tuple[dict[str, dict[str, float]], dict[str, list[str]]]:
        from registry.routing import routing_for

        with transaction(self.app.state.llmfleet.sessions) as session:
            row = session.scalar(select(Deployment).where(Deployment.name == self.deployment))
            if row is None:
                return {}, {}
            route = routing_for(session, row, session.get(RoutingState, row.id))
            by_cluster: dict[str, list[str]] = {}
            for r in route.replicas:
                by_cluster.setdefault(r.cluster, []).append(r.endpoint)
            return route.shares, by_cluster

    def _run(self) -> None:
        import time

        with httpx.Client(timeout=10) as http:
            while not self._stop.is_set():
                shares, by_cluster = self._route()
                region = self._rng.choice(self.regions)
                split = {c: s for c, s in shares.get(region, {}).items() if s > 0}
                if not split:
                    self._stop.wait(0.05)
                    continue
                first = self._rng.choices(list(split), weights=list(split.values()))[0]
                tries = [first] + [c for c in by_cluster if c != first][:1]
                started = time.monotonic()
                ok_, used = False, first
                for cluster in tries:
                    used = cluster
                    endpoints = by_cluster.get(cluster)
                    if not endpoints:
                        continue
                    try:
                        http.post(f"{self._rng.choice(endpoints)}/v1/completions",
                                  json={"model": self.deployment, "prompt": "hi", "max_tokens": 8,
                                        "ignore_eos": True}).raise_for_status()
                        ok_ = True
                        break
                    except httpx.HTTPError:
                        continue
                self.log.append((started, used, ok_, time.monotonic() - started))
