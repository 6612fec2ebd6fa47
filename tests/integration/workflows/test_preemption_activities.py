"""The preemption activities against a real registry (no Temporal needed: they are plain coroutines): which
preempted replicas the detector picks up, and how routing shares move off the capacity that was lost."""

from __future__ import annotations

import asyncio

import pytest
from fastapi import FastAPI
from fastapi.testclient import TestClient
from sqlalchemy import select

from registry.api_keys import Scope, issue_key
from registry.clusters import Cluster, ClusterHealth
from registry.db import transaction
from registry.deployments import Deployment
from registry.replicas import Replica
from registry.routing import RouteShare, RoutingState, publish_routing
from tests.conftest import KeyMaker, bearer
from tests.integration.workflows.fleet_helpers import POOL
from tests.support.fleet import deployment_body, ok, populate
from workflows.failover_activities import FailoverActivities
from workflows.types import FindPreempted, ShiftFromPreempted

EAST, EU = "aws-use1", "aws-euc1"


@pytest.fixture
def fleet(app: FastAPI, client: TestClient, make_key: KeyMaker) -> dict[str, list[str]]:
    """`chat` with two ready replicas on EAST and one on EU (agents' reports posted by hand)."""
    team = bearer(make_key("search", Scope.DEPLOY))
    populate(client, bearer(make_key("platform", Scope.ADMIN)), team)
    ok(client.post("/v1/deployments", json=deployment_body(), headers=team), 201)
    ok(client.put("/v1/deployments/chat/placement", headers=team, json={"replicas": [
        {"cluster": EAST, "pool": POOL, "variant": "fp8", "count": 2},
        {"cluster": EU, "pool": POOL, "variant": "fp8", "count": 1}]}))
    names: dict[str, list[str]] = {}
    for cluster in (EAST, EU):
        with transaction(app.state.llmfleet.sessions) as session:
            names[cluster] = sorted(r.name for r in session.scalars(
                select(Replica).join(Cluster, Replica.cluster_id == Cluster.id).where(Cluster.name == cluster)))
        report(app, client, cluster, {n: "ready" for n in names[cluster]})
    return names


def report(app: FastAPI, client: TestClient, cluster: str, states: dict[str, str]) -> None:
    with transaction(app.state.llmfleet.sessions) as session:
        key = issue_key(session, team="platform", scopes=[Scope.AGENT], name="agent", actor="test",
                        cluster=cluster).plaintext
    replicas = [{"name": n, "state": s, "endpoint": f"http://127.0.0.1:9/{n}"} for n, s in states.items()]
    ok(client.post(f"/v1/agent/clusters/{cluster}/heartbeat", headers=bearer(key),
                   json={"agent_version": "test", "replicas": replicas}))


def publish(app: FastAPI, shares: list[RouteShare]) -> None:
    with transaction(app.state.llmfleet.sessions) as session:
        row = session.scalar(select(Deployment).where(Deployment.name == "chat"))
        assert row is not None
        publish_routing(session, deployment=row, shares=shares, actor="test")


def shares(app: FastAPI) -> tuple[int, dict[str, dict[str, float]]]:
    with transaction(app.state.llmfleet.sessions) as session:
        row = session.scalar(select(Deployment).where(Deployment.name == "chat"))
        assert row is not None
        state = session.get(RoutingState, row.id)
        assert state is not None
        out: dict[str, dict[str, float]] = {}
        for s in state.shares:
            out.setdefault(s.client_region, {})[s.cluster.name] = s.share
        return state.generation, out


def test_shares_shrink_by_the_capacity_lost_and_only_once(app: FastAPI, fleet: dict[str, list[str]],
                                                          client: TestClient) -> None:
    acts = FailoverActivities(app.state.llmfleet.sessions)
    publish(app, [RouteShare("us-east-1", EAST, 0.8), RouteShare("us-east-1", EU, 0.2),
                  RouteShare("eu-central-1", EU, 1.0)])
    victim = fleet[EAST][0]
    report(app, client, EAST, {victim: "preempted"})
    found = asyncio.run(acts.find_preempted(FindPreempted(lookback_s=600)))
    assert [(g.deployment, g.replicas) for g in found.new] == [("chat", [victim])] and found.recent == [victim]
    shifted = asyncio.run(acts.shift_from_preempted(ShiftFromPreempted("chat", [victim], "test")))
    assert shifted.reduced == [EAST]
    generation, now = shares(app)
    assert shifted.generation == generation
    # EAST kept half its capacity: 0.8 → 0.4 against EU's 0.2, renormalised.
    assert now["us-east-1"] == pytest.approx({EAST: 2 / 3, EU: 1 / 3})
    assert now["eu-central-1"] == {EU: 1.0}
    # A retried activity shifts nothing more; a handled replica is not news.
    again = asyncio.run(acts.shift_from_preempted(ShiftFromPreempted("chat", [victim], "test")))
    assert again.reduced == [] and shares(app) == (generation, now)
    assert asyncio.run(acts.find_preempted(FindPreempted(lookback_s=600, handled=[victim]))).new == []


def test_a_cluster_that_lost_everything_gets_no_share(app: FastAPI, fleet: dict[str, list[str]],
                                                       client: TestClient) -> None:
    acts = FailoverActivities(app.state.llmfleet.sessions)
    publish(app, [RouteShare("us-east-1", EAST, 1.0), RouteShare("eu-central-1", EU, 1.0)])
    report(app, client, EAST, {n: "preempted" for n in fleet[EAST]})
    asyncio.run(acts.shift_from_preempted(ShiftFromPreempted("chat", fleet[EAST], "test")))
    # Nothing left in the region's split: it goes to the ready capacity elsewhere.
    assert shares(app)[1] == {"us-east-1": {EU: 1.0}, "eu-central-1": {EU: 1.0}}


def test_the_detector_leaves_unhealthy_clusters_and_old_preemptions_alone(
    app: FastAPI, fleet: dict[str, list[str]], client: TestClient,
) -> None:
    acts = FailoverActivities(app.state.llmfleet.sessions)
    report(app, client, EU, {fleet[EU][0]: "preempted"})
    with transaction(app.state.llmfleet.sessions) as session:
        row = session.scalar(select(Cluster).where(Cluster.name == EU))
        assert row is not None
        row.health = ClusterHealth.UNHEALTHY  # its failover is in charge
    assert asyncio.run(acts.find_preempted(FindPreempted(lookback_s=600))).recent == []
    report(app, client, EAST, {fleet[EAST][0]: "preempted"})
    assert asyncio.run(acts.find_preempted(FindPreempted(lookback_s=600))).recent == [fleet[EAST][0]]
    assert asyncio.run(acts.find_preempted(FindPreempted(lookback_s=-60))).recent == []
