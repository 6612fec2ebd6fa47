"""DeployWorkflow against the real Temporal dev server, a real worker process and a real agent (sim backend):
it plans, places, waits for ready replicas and publishes routing; a worker SIGKILLed mid-deploy is
replaced and the new one finishes with no duplicate replicas; starting it twice reuses the running run."""

from __future__ import annotations

import uuid
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import httpx
import pytest
from fastapi import FastAPI
from sqlalchemy import select
from temporalio.client import WorkflowFailureError

from agents.agent.config import AgentConfig
from registry.api_keys import Scope, issue_key
from registry.db import transaction
from registry.deployments import Deployment
from registry.plans import Plan
from registry.routing import RoutingShare
from tests.integration.agents.agent_harness import AgentThread, ControlPlaneServer, wait_for
from tests.integration.workflows.temporal_harness import TemporalHarness, WorkerProcess, save_history
from tests.support.fleet import deployment_body, ok
from workflows.client import Labels, start_deploy
from workflows.deploy import DeployWorkflow
from workflows.types import DeployInput

CLUSTER = "aws-use1"
LABELS = Labels(team="search", deployment="chat", version="v1")


def small_deployment(team: httpx.Client, **overrides: Any) -> None:
    # Little demand in one region: one or two replicas, so the sim fleet stays light on 2 cores.
    body = deployment_body(
        demand=[{"client_region": "us-east-1", "rps": 0.5, "prompt_tokens": 200, "output_tokens": 50}],
        constraints={"allowed_regions": ["us-east-1"]}, **overrides)
    ok(team.post("/v1/deployments", json=body), 201)


def start_agent(app: FastAPI, control_plane: ControlPlaneServer, tmp_path: Path) -> AgentThread:
    with transaction(app.state.llmfleet.sessions) as session:
        key = issue_key(session, team="platform", scopes=[Scope.AGENT], name=f"agent-{uuid.uuid4().hex[:6]}",
                        actor="test", cluster=CLUSTER)
    config = AgentConfig(cluster=CLUSTER, api_url=control_plane.url, api_key=key.plaintext, interval_s=0.2,
                         ready_timeout_s=30, drain_timeout_s=10, restart_base_s=0.2, restart_max_s=1.0,
                         request_timeout_s=2.0, sim_speedup=20.0, log_dir=tmp_path / "agent")
    return AgentThread(config).start()


@pytest.fixture
def task_queue() -> str:
    return f"test-{uuid.uuid4().hex[:8]}"


@pytest.fixture
def workers(temporal: TemporalHarness, task_queue: str, database_url: str, tmp_path: Path) -> Iterator[list[WorkerProcess]]:
    started: list[WorkerProcess] = []
    yield started
    for w in started:
        w.stop()


def new_worker(temporal: TemporalHarness, task_queue: str, database_url: str, tmp_path: Path,
               workers: list[WorkerProcess]) -> WorkerProcess:
    w = WorkerProcess(temporal.address, task_queue, database_url, tmp_path / f"worker-{len(workers)}.log")
    workers.append(w)
    return w


def live_replicas(team: httpx.Client) -> list[dict[str, Any]]:
    return [r for r in ok(team.get("/v1/deployments/chat"))["observed"]["replicas"]
            if r["status"] not in ("terminated", "failed", "preempted", "draining")]


def test_deploy_survives_a_killed_worker(
    app: FastAPI, temporal: TemporalHarness, team: httpx.Client, control_plane: ControlPlaneServer,
    task_queue: str, database_url: str, tmp_path: Path, workers: list[WorkerProcess],
) -> None:
    small_deployment(team)
    first = new_worker(temporal, task_queue, database_url, tmp_path, workers)
    inp = DeployInput("chat", ready_timeout_s=120, poll_interval_s=0.5, plan_time_limit_s=10)
    handle = temporal.run(start_deploy(temporal.client, task_queue, inp, LABELS))
    # No agent yet: replicas stay pending, so the run is parked in wait_ready when the worker dies.
    wait_for(lambda: temporal.run(handle.query(DeployWorkflow.phase)) == "waiting-ready", "the wait for replicas")
    placed = live_replicas(team)
    assert placed, "the placement was written before the wait"
    first.kill()
    # A second start while the first run is alive returns the same run (no second deploy).
    again = temporal.run(start_deploy(temporal.client, task_queue, inp, LABELS))
    assert again.result_run_id == handle.result_run_id
    agent = start_agent(app, control_plane, tmp_path)
    try:
        new_worker(temporal, task_queue, database_url, tmp_path, workers)
        result = temporal.run(handle.result(), timeout=180)
        assert result.state == "deployed"
        assert sum(i.count for i in result.replicas) == len(placed)
        # No duplicates: exactly the planned replicas exist, all ready, the same ones as before the kill.
        after = live_replicas(team)
        assert sorted(r["name"] for r in after) == sorted(r["name"] for r in placed)
        assert all(r["status"] == "ready" for r in after)
        with transaction(app.state.llmfleet.sessions) as session:
            row = session.scalar(select(Deployment).where(Deployment.name == "chat"))
            assert row is not None and row.observed_generation == row.desired_generation
            shares = list(session.scalars(select(RoutingShare).where(RoutingShare.deployment_id == row.id)))
            assert {s.cluster.name for s in shares} == {CLUSTER}
            assert len(list(session.scalars(select(Plan).where(Plan.deployment_id == row.id)))) == 1
        desc = temporal.run(handle.describe())
        assert temporal.run(desc.memo()) == LABELS.memo()
        temporal.run(save_history(handle, "deploy"))
    finally:
        agent.stop()


def test_a_deploy_that_never_gets_ready_restores_the_previous_placement(
    temporal: TemporalHarness, team: httpx.Client, task_queue: str, database_url: str, tmp_path: Path,
    workers: list[WorkerProcess],
) -> None:
    small_deployment(team)
    new_worker(temporal, task_queue, database_url, tmp_path, workers)
    # No agent at all: nothing becomes ready within the bound, so the placement is rolled back to empty.
    inp = DeployInput("chat", ready_timeout_s=3, poll_interval_s=0.5)
    handle = temporal.run(start_deploy(temporal.client, task_queue, inp, LABELS))
    with pytest.raises(WorkflowFailureError) as failure:
        temporal.run(handle.result(), timeout=120)
    assert "previous placement restored" in str(failure.value.cause)
    replicas = ok(team.get("/v1/deployments/chat"))["observed"]["replicas"]
    assert replicas and all(r["desired_state"] == "stopped" for r in replicas if r["status"] != "terminated")
    temporal.run(save_history(handle, "deploy_restored"))
