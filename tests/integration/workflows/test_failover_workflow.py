"""Failover with the real dev server, a worker process and two real agents: stopping one cluster's agent
(and with it its replicas) is detected by the fleet watch within its threshold; routing leaves the
cluster at once, replacement capacity comes up elsewhere, nothing stays routed to it; when the agent
comes back the cluster is healthy again and the deployment is re-planned with it."""

from __future__ import annotations

import time
import uuid
from collections.abc import Iterator
from pathlib import Path

import httpx
import pytest
from fastapi import FastAPI
from sqlalchemy import select

from registry.clusters import Cluster
from registry.db import transaction
from registry.deployments import Deployment
from registry.routing import RouteShare, RoutingState, publish_routing, routing_for
from tests.integration.agents.agent_harness import AgentThread, ControlPlaneServer, wait_for
from tests.integration.workflows.fleet_helpers import POOL, RoutedLoad, Workers, ready_endpoints, start_agent
from tests.integration.workflows.temporal_harness import TemporalHarness, save_history
from tests.support.fleet import deployment_body, ok
from workflows.client import start_fleet_watch
from workflows.failover import FailoverWorkflow
from workflows.types import WatchInput

EAST, EU = "aws-use1", "aws-euc1"
THRESHOLD_S = 2.0


@pytest.fixture
def workers(temporal: TemporalHarness, database_url: str, tmp_path: Path) -> Iterator[Workers]:
    ws = Workers(temporal, f"test-{uuid.uuid4().hex[:8]}", database_url, tmp_path)
    ws.new()
    yield ws
    ws.stop_all()


def routed_clusters(app: FastAPI) -> tuple[set[str], set[str]]:
    """(clusters with a published share, clusters with a routable replica) of `chat`."""
    with transaction(app.state.llmfleet.sessions) as session:
        row = session.scalar(select(Deployment).where(Deployment.name == "chat"))
        assert row is not None
        route = routing_for(session, row, session.get(RoutingState, row.id))
        shared = {c for split in route.shares.values() for c, s in split.items() if s > 0}
        return shared, {r.cluster for r in route.replicas}


def health(app: FastAPI, cluster: str) -> str:
    with transaction(app.state.llmfleet.sessions) as session:
        row = session.scalar(select(Cluster).where(Cluster.name == cluster))
        assert row is not None
        return row.health.value


def test_a_lost_cluster_is_evacuated_and_given_back(
    app: FastAPI, temporal: TemporalHarness, team: httpx.Client, control_plane: ControlPlaneServer,
    workers: Workers, tmp_path: Path,
) -> None:
    demand = [{"client_region": r, "rps": 0.5, "prompt_tokens": 200, "output_tokens": 50}
              for r in ("us-east-1", "eu-central-1")]
    ok(team.post("/v1/deployments", json=deployment_body(demand=demand)), 201)
    agents = {c: start_agent(app, control_plane, tmp_path / c, c) for c in (EAST, EU)}
    try:
        ok(team.put("/v1/deployments/chat/placement", json={"replicas": [
            {"cluster": c, "pool": POOL, "variant": "fp8", "count": 1} for c in (EAST, EU)]}))
        wait_for(lambda: len(ready_endpoints(app, "chat").get("v1", [])) == 2, "a ready replica per cluster")
        with transaction(app.state.llmfleet.sessions) as session:
            row = session.scalar(select(Deployment).where(Deployment.name == "chat"))
            assert row is not None
            publish_routing(session, deployment=row, actor="test", shares=[
                RouteShare("us-east-1", EAST, 1.0), RouteShare("eu-central-1", EU, 1.0)])
        assert routed_clusters(app) == ({EAST, EU}, {EAST, EU})
        watch = temporal.run(start_fleet_watch(temporal.client, workers.task_queue,
                                               WatchInput(heartbeat_threshold_s=THRESHOLD_S, interval_s=0.5,
                                                          failover_poll_interval_s=0.5, failover_ready_timeout_s=60)))
        with RoutedLoad(app, "chat", ["us-east-1", "eu-central-1"]) as load:
            wait_for(lambda: {c for _, c, ok_, _ in load.log if ok_} == {EAST, EU}, "traffic on both clusters")
            agents.pop(EU).stop()  # the agent and its replicas are gone
            lost_at = time.monotonic()
            wait_for(lambda: EU not in routed_clusters(app)[0] and EU not in routed_clusters(app)[1],
                     "routing to leave the lost cluster", timeout=30)
            routed_away = time.monotonic()
            assert routed_away - lost_at < THRESHOLD_S + 10, routed_away - lost_at
            assert health(app, EU) == "unhealthy"
            failover = temporal.client.get_workflow_handle_for(FailoverWorkflow.run, f"failover-{EU}")
            wait_for(lambda: temporal.run(failover.query(FailoverWorkflow.phase)) == "waiting-recovery",
                     "the re-plan without the lost cluster", timeout=90)
            shared, routable = routed_clusters(app)
            assert EU not in shared and EU not in routable and EAST in routable
            settled = time.monotonic()
            wait_for(lambda: sum(1 for t, *_ in load.log if t > settled) >= 20, "requests after the failover")
        after = [(c, ok_, s) for t, c, ok_, s in load.log if t > routed_away + 0.5]
        # Served elsewhere, every one of them, and within the SLO's order of magnitude (sim at 20x speed).
        assert after and all(ok_ and c == EAST for c, ok_, _ in after), after[:5]
        assert max(s for *_, s in after) < 5.0
        # The agent returns: the cluster is healthy again and the deployment is planned with it.
        agents[EU] = start_agent(app, control_plane, tmp_path / "eu-again", EU)
        result = temporal.run(failover.result(), timeout=120)
        assert result.state == "recovered" and result.deployments == ["chat"]
        assert result.replanned == {"chat": "deployed"}
        assert health(app, EU) == "healthy"
        temporal.run(watch.terminate("test over"))
        temporal.run(save_history(failover, "failover"))
    finally:
        for agent in agents.values():
            agent.stop()
