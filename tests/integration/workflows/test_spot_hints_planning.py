"""Spot availability hints from the registry in planning (no Temporal needed): a zone whose spot replicas
were preempted gets a capped `spot_availability`, one whose last launch found no capacity gets 0, quiet
zones and on-demand pools are left alone, and the plan follows."""

from __future__ import annotations

import asyncio

import pytest
from fastapi import FastAPI
from fastapi.testclient import TestClient
from sqlalchemy import select

from registry.api_keys import Scope, issue_key
from registry.base import utcnow
from registry.db import transaction
from registry.deployments import Deployment
from registry.replicas import Replica
from tests.conftest import KeyMaker, bearer
from tests.support.fleet import deployment_body, ok, populate
from workflows import planning
from workflows.activities import FleetActivities
from workflows.types import PlanRequest

EAST = "aws-use1"
AZ1, AZ2, OD = "spot-a", "spot-b", "g6.xlarge/on-demand"


@pytest.fixture
def team(client: TestClient, make_key: KeyMaker) -> dict[str, str]:
    headers = bearer(make_key("search", Scope.DEPLOY))
    admin = bearer(make_key("platform", Scope.ADMIN))
    populate(client, admin, headers)
    # Two spot zones, the cheapest pools of the fleet: the plan would put everything on spot-a.
    for name, zone, price in ((AZ1, "use1-az1", 0.20), (AZ2, "use1-az2", 0.21)):
        ok(client.post(f"/v1/clusters/{EAST}/pools", headers=admin, json={
            "name": name, "instance_type": "g6.xlarge", "accelerator": "L4", "gpus_per_instance": 1,
            "market": "spot", "zone": zone, "price_per_hour": price}), 201)
    body = deployment_body(demand=[{"client_region": "us-east-1", "rps": 4, "prompt_tokens": 200,
                                    "output_tokens": 50}],
                           constraints={"allowed_regions": ["us-east-1"], "max_spot_share": 1.0, "max_quality_drop": 0.05})
    ok(client.post("/v1/deployments", json=body, headers=headers), 201)
    return headers


def place_and_report(app: FastAPI, client: TestClient, team: dict[str, str], pool: str, states: list[dict[str, str]]) -> None:
    ok(client.put("/v1/deployments/chat/placement", headers=team, json={"replicas": [
        {"cluster": EAST, "pool": pool, "variant": "fp8", "count": len(states)}]}))
    with transaction(app.state.llmfleet.sessions) as session:
        names = sorted(r.name for r in session.scalars(select(Replica)) if r.pool.name == pool and not r.status.is_terminal)
        key = issue_key(session, team="platform", scopes=[Scope.AGENT], name="agent", actor="test",
                        cluster=EAST).plaintext
    for state in ({"state": "ready"}, None):
        reports = [{"name": n, "endpoint": f"http://127.0.0.1:9/{n}", **(state or s)} for n, s in zip(names, states, strict=True)]
        ok(client.post(f"/v1/agent/clusters/{EAST}/heartbeat", headers=bearer(key),
                       json={"agent_version": "test", "replicas": reports}))


def availability(app: FastAPI) -> dict[str, float | None]:
    with transaction(app.state.llmfleet.sessions) as session:
        row = session.scalar(select(Deployment).where(Deployment.name == "chat"))
        assert row is not None
        snap = planning.build_snapshot(session, row, now=utcnow())
        before = planning.build_snapshot(session, row)
    assert all(p.spot_availability is None for p in before.pools)  # without `now`: as before
    return {p.id: p.spot_availability for p in snap.pools if p.id.startswith(f"{EAST}/")}


def test_quiet_zones_are_left_alone(app: FastAPI, client: TestClient, team: dict[str, str]) -> None:
    place_and_report(app, client, team, AZ1, [{"state": "ready"}, {"state": "ready"}])
    assert set(availability(app).values()) == {None}


def test_a_preempted_zone_is_capped_and_the_plan_follows(app: FastAPI, client: TestClient,
                                                          team: dict[str, str]) -> None:
    place_and_report(app, client, team, AZ1, [{"state": "preempted"}, {"state": "preempted"}, {"state": "ready"}])
    got = availability(app)
    assert got[f"{EAST}/{AZ1}"] is not None and got[f"{EAST}/{AZ1}"] < 1.0
    assert got[f"{EAST}/{AZ2}"] is None and got[f"{EAST}/{OD}"] is None
    plan = asyncio.run(FleetActivities(app.state.llmfleet.sessions).plan_deployment(
        PlanRequest("chat", key="spot-hints")))
    assert plan.ok, plan.reason
    # Without the hint one replica on the cheapest pool (spot-a) would carry it all; capped, another pool
    # has to carry the rest.
    assert any(i.pool != AZ1 for i in plan.items), plan.items


def test_no_capacity_makes_a_zone_unusable(app: FastAPI, client: TestClient, team: dict[str, str]) -> None:
    place_and_report(app, client, team, AZ2, [{"state": "failed", "failure_reason": "no capacity: spot"}])
    assert availability(app)[f"{EAST}/{AZ2}"] == 0.0
    plan = asyncio.run(FleetActivities(app.state.llmfleet.sessions).plan_deployment(
        PlanRequest("chat", key="no-capacity")))
    assert plan.ok and all(i.pool not in (AZ2, "g6.xlarge/spot") for i in plan.items), plan  # both in az2
    assert [i.pool for i in plan.items] == [AZ1]  # the cheapest pool that still has capacity


def test_a_spot_pool_share_limit_spreads_the_plan(app: FastAPI, client: TestClient, team: dict[str, str]) -> None:
    ok(client.patch("/v1/deployments/chat", json={"constraints": {"max_spot_pool_share": 0.5}}, headers=team))
    with transaction(app.state.llmfleet.sessions) as session:
        row = session.scalar(select(Deployment).where(Deployment.name == "chat"))
        assert row is not None
        assert planning.build_snapshot(session, row).deployments[0].constraints.max_spot_pool_share == 0.5
    plan = asyncio.run(FleetActivities(app.state.llmfleet.sessions).plan_deployment(
        PlanRequest("chat", key="pool-share")))
    assert plan.ok, plan.reason
    # Without the limit one spot-a replica carries it all (test above); with it, no pool carries it alone.
    assert len({i.pool for i in plan.items}) >= 2, plan.items
