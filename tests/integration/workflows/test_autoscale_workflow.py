"""AutoscaleWorkflow with the real dev server, a worker process and a real agent: load above one replica's
capacity scales up; with the load gone it scales back down after its delay (draining, never dropping
requests); a paused autoscaler changes nothing; continue-as-new carries its state."""

from __future__ import annotations

import time
import uuid
from collections.abc import Iterator
from pathlib import Path

import httpx
import pytest
from fastapi import FastAPI

from tests.integration.agents.agent_harness import AgentThread, ControlPlaneServer, wait_for
from tests.integration.workflows.fleet_helpers import POOL, Load, Workers, ready_endpoints, small_deployment, start_agent
from tests.integration.workflows.temporal_harness import TemporalHarness, save_history
from tests.support.fleet import ok
from workflows.autoscale import AutoscaleWorkflow
from workflows.client import Labels, signal_autoscale
from workflows.types import AutoscaleInput

CLUSTER = "aws-use1"
LABELS = Labels(team="search", deployment="chat", version="v1")


@pytest.fixture
def workers(temporal: TemporalHarness, database_url: str, tmp_path: Path) -> Iterator[Workers]:
    ws = Workers(temporal, f"test-{uuid.uuid4().hex[:8]}", database_url, tmp_path)
    ws.new()
    yield ws
    ws.stop_all()


@pytest.fixture
def fleet(app: FastAPI, team: httpx.Client, control_plane: ControlPlaneServer, tmp_path: Path) -> Iterator[AgentThread]:
    small_deployment(team, constraints={"allowed_regions": ["us-east-1"], "max_replicas": 3})
    agent = start_agent(app, control_plane, tmp_path, CLUSTER, window_s=1.0)
    ok(team.put("/v1/deployments/chat/placement",
                json={"replicas": [{"cluster": CLUSTER, "pool": POOL, "variant": "fp8", "count": 1}]}))
    wait_for(lambda: len(ready_endpoints(app, "chat").get("v1", [])) == 1, "one ready replica")
    yield agent
    agent.stop()


def test_scales_up_under_load_and_down_after_it(app: FastAPI, temporal: TemporalHarness, fleet: AgentThread,
                                                workers: Workers) -> None:
    # One replica "holds" 2 rps at 50 %: the load thread's tens of rps need the maximum, 3.
    inp = AutoscaleInput("chat", interval_s=0.5, replica_capacity_rps=2.0, target_utilisation=0.5,
                         down_delay_intervals=3, iterations_per_run=4)
    handle = temporal.run(signal_autoscale(temporal.client, workers.task_queue, inp, LABELS, "resume"))
    with Load(app, "chat") as load:
        wait_for(lambda: len(ready_endpoints(app, "chat").get("v1", [])) == 3, "scale-up to max_replicas 3",
                 timeout=60)
        assert load.failed == 0
    wait_for(lambda: len(ready_endpoints(app, "chat").get("v1", [])) == 1, "scale-down to min_replicas 1",
             timeout=90)
    status = temporal.run(handle.query(AutoscaleWorkflow.status))
    assert status["paused"] is False and status["replicas"] == 1
    temporal.run(handle.signal(AutoscaleWorkflow.pause))
    wait_for(lambda: temporal.run(handle.query(AutoscaleWorkflow.status))["paused"], "the pause")
    with Load(app, "chat"):
        # Paused: heavy load for several intervals changes nothing.
        time.sleep(3)
        assert len(ready_endpoints(app, "chat").get("v1", [])) == 1
    desc = temporal.run(temporal.client.get_workflow_handle("autoscale-chat").describe())
    assert desc.run_id != handle.result_run_id  # 4 intervals per run: it has continued as new
    temporal.run(temporal.client.get_workflow_handle("autoscale-chat").terminate("test over"))
    # Record a history that ran through decide() and continue-as-new (the first run).
    temporal.run(save_history(temporal.client.get_workflow_handle("autoscale-chat", run_id=handle.result_run_id),
                              "autoscale"))
