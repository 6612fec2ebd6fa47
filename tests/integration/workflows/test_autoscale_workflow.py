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
from sqlalchemy import select

from registry.db import transaction
from registry.deployments import Deployment
from registry.plans import Plan as PlanRow
from registry.plans import latest_plan
from registry.replicas import current_placement
from registry.routing import RoutingState, routing_for
from tests.integration.agents.agent_harness import AgentThread, ControlPlaneServer, wait_for
from tests.integration.workflows.fleet_helpers import POOL, Load, Workers, ready_endpoints, small_deployment, start_agent
from tests.integration.workflows.temporal_harness import TemporalHarness, save_history
from tests.support.fleet import ok
from workflows.autoscale import AutoscaleWorkflow
from workflows.client import Labels, signal_autoscale
from workflows.types import AutoscaleInput

CLUSTER = "aws-use1"
DEAR_POOL = "p5.4xlarge/on-demand"
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


def placed_pools(app: FastAPI) -> set[str]:
    with transaction(app.state.llmfleet.sessions) as session:
        row = session.scalar(select(Deployment).where(Deployment.name == "chat"))
        return {p.pool for p in current_placement(session, row)} if row is not None else set()


def autoscaler_plan(app: FastAPI) -> tuple[PlanRow, set[tuple[str, str, str, int, int]], set[tuple[str, str]]]:
    """The latest plan row, the placement as it stands, and the published (client region, cluster) shares."""
    with transaction(app.state.llmfleet.sessions) as session:
        row = session.scalar(select(Deployment).where(Deployment.name == "chat"))
        assert row is not None
        plan = latest_plan(session, row.id)
        assert plan is not None
        placed = {(p.cluster, p.pool, p.variant, p.tensor_parallel, p.count) for p in current_placement(session, row)}
        route = routing_for(session, row, session.get(RoutingState, row.id))
        shares = {(region, c) for region, split in route.shares.items() for c, s in split.items() if s > 0}
        session.expunge(plan)
        return plan, placed, shares


def settled_on_plan(app: FastAPI, replicas: int) -> bool:
    """The autoscaler's latest plan has `replicas` replicas, the placement is exactly that plan (the make-
    before-break surplus is gone), and that many replicas are ready."""
    with transaction(app.state.llmfleet.sessions) as session:
        row = session.scalar(select(Deployment).where(Deployment.name == "chat"))
        plan = latest_plan(session, row.id) if row is not None else None
        if plan is None or len(plan.reasons) < 2 or not plan.reasons[1].startswith("autoscale:"):
            return False
        placed = {(p.cluster, p.pool, p.variant, p.tensor_parallel, p.count) for p in current_placement(session, row)}
        wanted = {(i["cluster"], i["pool"], i["variant"], i["tensor_parallel"], i["count"]) for i in plan.replicas}
    return placed == wanted and sum(n for *_, n in wanted) == replicas \
        and len(ready_endpoints(app, "chat").get("v1", [])) == replicas


def test_scales_up_under_load_and_down_after_it(app: FastAPI, temporal: TemporalHarness, fleet: AgentThread,
                                                workers: Workers) -> None:
    # One replica "holds" 2 rps at 50 %: the load thread's tens of rps need the maximum, 3.
    inp = AutoscaleInput("chat", interval_s=0.5, replica_capacity_rps=2.0, target_utilisation=0.5,
                         down_delay_intervals=3, iterations_per_run=4)
    handle = temporal.run(signal_autoscale(temporal.client, workers.task_queue, inp, LABELS, "resume"))
    with Load(app, "chat") as load:
        # The policy sees replicas doing 2 rps where the model believes far more, so it plans for much more
        # than the forecast; max_replicas caps the plan at 3, applied make-before-break.
        wait_for(lambda: settled_on_plan(app, replicas=3), "scale-up to max_replicas 3", timeout=60)
        assert load.failed == 0
    plan, _, shares = autoscaler_plan(app)
    assert plan.reasons[1].startswith("autoscale: re-planned for") and "(capped by" in plan.reasons[1]
    assert shares == {(s["client_region"], s["cluster"]) for s in plan.routing} == {("us-east-1", CLUSTER)}
    with Load(app, "chat", pause_s=1.0) as light:
        # Light traffic while it scales down: the surplus drains, and no request in flight is dropped.
        wait_for(lambda: len(ready_endpoints(app, "chat").get("v1", [])) == 1, "scale-down to min_replicas 1",
                 timeout=90)
    assert light.sent > 0 and light.failed == 0
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


def test_a_scale_down_re_plans_onto_cheaper_capacity_make_before_break(
        app: FastAPI, temporal: TemporalHarness, team: httpx.Client, control_plane: ControlPlaneServer,
        workers: Workers, tmp_path: Path) -> None:
    # Two replicas on the dearest pool (H100s at $6.88/h each, placed by hand) for light traffic. Resizing in
    # place could only keep one H100; the MILP re-plan serves the traffic from the cheap L4 pool instead and
    # retires both H100s once the L4 replica is ready, without failing a request.
    small_deployment(team, constraints={"allowed_regions": ["us-east-1"], "max_replicas": 3, "max_quality_drop": 0.05})
    agent = start_agent(app, control_plane, tmp_path, CLUSTER, window_s=1.0)
    try:
        ok(team.put("/v1/deployments/chat/placement", json={"replicas": [
            {"cluster": CLUSTER, "pool": DEAR_POOL, "variant": "fp8", "count": 2}]}))
        wait_for(lambda: len(ready_endpoints(app, "chat").get("v1", [])) == 2, "the H100 replicas")
        inp = AutoscaleInput("chat", interval_s=0.5, down_delay_intervals=2, iterations_per_run=50)
        handle = temporal.run(signal_autoscale(temporal.client, workers.task_queue, inp, LABELS, "resume"))
        with Load(app, "chat", pause_s=0.5) as load:
            wait_for(lambda: settled_on_plan(app, replicas=1) and DEAR_POOL not in placed_pools(app),
                     "a re-plan onto the cheaper pool", timeout=60)
            time.sleep(1.0)
        assert load.sent > 0 and load.failed == 0  # make before break: no request failed during the move
        plan, placed, _ = autoscaler_plan(app)
        assert {p for _, p, *_ in placed} == {POOL} and plan.cost_per_hour is not None and plan.cost_per_hour < 6.88
        temporal.run(handle.terminate("test over"))
    finally:
        agent.stop()
