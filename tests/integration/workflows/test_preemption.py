"""Spot preemption with the real dev server, a worker process and two real sim agents: a replica reported
`preempted` through the agent API (as an agent on spot capacity does) is noticed by the fleet watch; the
routing moves off the capacity it was at once, its cluster stays healthy (its agent still reports), and
the deployment is re-planned so a replacement replica comes up and the plan's shares are published."""

from __future__ import annotations

import uuid
from collections.abc import Iterator
from pathlib import Path

import httpx
import pytest
from fastapi import FastAPI
from sqlalchemy import select

from registry.api_keys import Scope, issue_key
from registry.audit import AuditEvent
from registry.clusters import Cluster
from registry.db import transaction
from registry.deployments import Deployment
from registry.replicas import Replica, ReplicaStatus
from registry.routing import RouteShare, RoutingState, publish_routing, routing_for
from tests.integration.agents.agent_harness import AgentThread, ControlPlaneServer, wait_for
from tests.integration.workflows.fleet_helpers import POOL, Workers, ready_endpoints, start_agent
from tests.integration.workflows.temporal_harness import TemporalHarness, save_history
from tests.support.fleet import deployment_body, ok
from workflows.client import start_fleet_watch
from workflows.deploy import DeployWorkflow
from workflows.types import WatchInput

EAST, EU = "aws-use1", "aws-euc1"


@pytest.fixture
def workers(temporal: TemporalHarness, database_url: str, tmp_path: Path) -> Iterator[Workers]:
    ws = Workers(temporal, f"test-{uuid.uuid4().hex[:8]}", database_url, tmp_path)
    ws.new()
    yield ws
    ws.stop_all()


def route(app: FastAPI) -> tuple[dict[str, dict[str, float]], set[str], set[str]]:
    """(published shares, routable replica names, their clusters) of `chat`, as the gateways read them."""
    with transaction(app.state.llmfleet.sessions) as session:
        row = session.scalar(select(Deployment).where(Deployment.name == "chat"))
        assert row is not None
        r = routing_for(session, row, session.get(RoutingState, row.id))
        return r.shares, {rep.name for rep in r.replicas}, {rep.cluster for rep in r.replicas}


def status_of(app: FastAPI, replica: str) -> str:
    with transaction(app.state.llmfleet.sessions) as session:
        row = session.scalar(select(Replica).where(Replica.name == replica))
        assert row is not None
        return row.status.value


def health(app: FastAPI, cluster: str) -> str:
    with transaction(app.state.llmfleet.sessions) as session:
        row = session.scalar(select(Cluster).where(Cluster.name == cluster))
        assert row is not None
        return row.health.value


def routing_publishers(app: FastAPI) -> list[tuple[str, list[dict[str, object]]]]:
    """(actor, shares) of every routing publish of `chat`, oldest first."""
    with transaction(app.state.llmfleet.sessions) as session:
        rows = session.scalars(select(AuditEvent).where(
            AuditEvent.object_id == "chat", AuditEvent.action == "publish_routing").order_by(AuditEvent.id))
        return [(r.actor, list(r.details["shares"])) for r in rows]


def report_preempted(app: FastAPI, control_plane: ControlPlaneServer, cluster: str, replica: str) -> None:
    """What an agent on spot capacity posts when the cloud takes the machine back."""
    with transaction(app.state.llmfleet.sessions) as session:
        key = issue_key(session, team="platform", scopes=[Scope.AGENT], name="spot-reporter", actor="test",
                        cluster=cluster).plaintext
    body = {"agent_version": "test", "replicas": [
        {"name": replica, "state": "preempted", "failure_reason": "preempted: spot capacity reclaimed"}]}
    result = ok(httpx.post(f"{control_plane.url}/v1/agent/clusters/{cluster}/heartbeat", json=body,
                           headers={"Authorization": f"Bearer {key}"}, timeout=30))
    assert result["transitions"] == {replica: "preempted"}


def test_a_preempted_replica_is_routed_around_and_replaced(
    app: FastAPI, temporal: TemporalHarness, team: httpx.Client, control_plane: ControlPlaneServer,
    workers: Workers, tmp_path: Path,
) -> None:
    demand = [{"client_region": r, "rps": 0.5, "prompt_tokens": 200, "output_tokens": 50}
              for r in ("us-east-1", "eu-central-1")]
    # Two replicas at least, so the re-plan has to bring a replacement up.
    ok(team.post("/v1/deployments", json=deployment_body(demand=demand, constraints={"min_replicas": 2})), 201)
    agents: dict[str, AgentThread] = {c: start_agent(app, control_plane, tmp_path / c, c) for c in (EAST, EU)}
    try:
        ok(team.put("/v1/deployments/chat/placement", json={"replicas": [
            {"cluster": c, "pool": POOL, "variant": "fp8", "count": 1} for c in (EAST, EU)]}))
        wait_for(lambda: len(ready_endpoints(app, "chat").get("v1", [])) == 2, "a ready replica per cluster")
        before = {name for name, _ in ready_endpoints(app, "chat")["v1"]}
        victim = next(n for n in before if f"-{EAST}-" in n)
        with transaction(app.state.llmfleet.sessions) as session:
            row = session.scalar(select(Deployment).where(Deployment.name == "chat"))
            assert row is not None
            publish_routing(session, deployment=row, actor="test", shares=[
                RouteShare("us-east-1", EAST, 1.0), RouteShare("eu-central-1", EU, 1.0)])
        # A long heartbeat threshold: only the preemption path may act here, never a cluster failover.
        watch = temporal.run(start_fleet_watch(temporal.client, workers.task_queue,
                                               WatchInput(heartbeat_threshold_s=120, interval_s=0.5,
                                                          failover_poll_interval_s=0.5, failover_ready_timeout_s=60)))
        report_preempted(app, control_plane, EAST, victim)
        # The registry stops routing to it with that very heartbeat; the watch moves the shares off it.
        assert victim not in route(app)[1] and status_of(app, victim) == "preempted"
        wait_for(lambda: route(app)[0].get("us-east-1") == {EU: 1.0}, "the shares to leave the lost capacity",
                 timeout=30)
        assert route(app)[0]["eu-central-1"] == {EU: 1.0}
        # Moved by the watch's shift, ahead of (and apart from) the re-plan's own publish.
        assert [a for a, _ in routing_publishers(app)][:2] == ["test", "workflow:preemption"]
        assert health(app, EAST) == "healthy"  # its agent still reports: no cluster failover
        # The re-plan (child `deploy-chat`) brings a replacement up and publishes the plan's shares.
        deploy = temporal.client.get_workflow_handle_for(DeployWorkflow.run, "deploy-chat")
        result = temporal.run(deploy.result(), timeout=120)
        assert temporal.run(deploy.describe()).parent_id == "fleet-watch"
        assert result.state == "deployed", result
        assert sum(i.count for i in result.replicas) >= 2
        ready_now = {name for name, _ in ready_endpoints(app, "chat")["v1"]}
        assert victim not in ready_now and len(ready_now) >= 2 and ready_now - before, (before, ready_now)
        shares, routable, clusters = route(app)
        assert victim not in routable
        # Every share of the re-plan goes to a cluster that has a routable replica.
        assert shares and {c for split in shares.values() for c, s in split.items() if s > 0} <= clusters
        assert status_of(app, victim) == ReplicaStatus.PREEMPTED.value
        assert [a for a, _ in routing_publishers(app)][-1] == "workflow:preemption:replan"
        # Handled once: no second shift or re-plan for the same preemption.
        published = len(routing_publishers(app))
        seen = temporal.run(watch.describe()).history_length
        wait_for(lambda: temporal.run(watch.describe()).history_length > seen + 20, "more watch iterations")
        assert len(routing_publishers(app)) == published
        assert health(app, EAST) == "healthy" and health(app, EU) == "healthy"
        temporal.run(watch.terminate("test over"))
        temporal.run(save_history(watch, "fleet_watch_preemption"))
    finally:
        for agent in agents.values():
            agent.stop()
