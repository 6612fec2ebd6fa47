"""The routing table, on SQLite and PostgreSQL: publish/validate shares and version weights (with audit),
the default split over ready replicas, never a draining replica, keys for gateway auth, ETag/304."""

from __future__ import annotations

from typing import Any

import pytest
from fastapi.testclient import TestClient
from sqlalchemy import Engine, select

from registry.api_keys import Scope, issue_key
from registry.audit import AuditEvent
from registry.db import session_factory, transaction
from registry.deployments import Deployment
from registry.errors import Invalid
from registry.routing import (
    ExperimentArm,
    RouteShare,
    RoutingShare,
    RoutingState,
    publish_routing,
    routing_of,
    set_experiment,
    set_version_weights,
)
from tests.conftest import KeyMaker, bearer
from tests.support.fleet import deployment_body, ok, populate, version_body

L4 = "g6.xlarge/on-demand"


@pytest.fixture
def admin(make_key: KeyMaker) -> dict[str, str]:
    return bearer(make_key("platform", Scope.ADMIN))


@pytest.fixture
def team(client: TestClient, make_key: KeyMaker, admin: dict[str, str]) -> dict[str, str]:
    headers = bearer(make_key("search", Scope.DEPLOY))
    populate(client, admin, headers)
    ok(client.post("/v1/deployments", json=deployment_body(), headers=headers), 201)
    return headers


def agent_key(engine: Engine, cluster: str) -> dict[str, str]:
    with transaction(session_factory(engine)) as session:
        return bearer(issue_key(session, team="platform", scopes=[Scope.AGENT], name=f"agent {cluster}",
                                actor="test", cluster=cluster).plaintext)


def make_ready(client: TestClient, engine: Engine, team: dict[str, str], cluster: str, count: int,
               port0: int) -> list[str]:
    ok(client.put("/v1/deployments/chat/placement", json={"replicas": [
        {"cluster": cluster, "pool": L4, "variant": "fp8", "tensor_parallel": 1, "count": count}]}, headers=team))
    agent = agent_key(engine, cluster)
    names = [r["name"] for r in ok(client.get(f"/v1/agent/clusters/{cluster}/desired", headers=agent))["replicas"]]
    reports = [{"name": n, "state": "ready", "endpoint": f"http://127.0.0.1:{port0 + i}"} for i, n in enumerate(names)]
    ok(client.post(f"/v1/agent/clusters/{cluster}/heartbeat",
                   json={"agent_version": "t", "applied_generation": None, "replicas": reports}, headers=agent))
    return names


def routing(client: TestClient, headers: dict[str, str]) -> dict[str, Any]:
    return {d["name"]: d for d in ok(client.get("/v1/routing", headers=headers))["deployments"]}


def with_deployment(engine: Engine, fn: Any) -> Any:
    with transaction(session_factory(engine)) as session:
        deployment = session.scalars(select(Deployment).where(Deployment.name == "chat")).one()
        return fn(session, deployment)


def test_routing_is_readable_by_agent_and_admin_keys_only(
    client: TestClient, engine: Engine, team: dict[str, str], admin: dict[str, str]
) -> None:
    assert client.get("/v1/routing").status_code == 401
    assert client.get("/v1/routing", headers=bearer("lf_nope_nope")).status_code == 401
    assert client.get("/v1/routing", headers=team).status_code == 403
    assert client.get("/v1/routing", headers=admin).status_code == 200
    assert client.get("/v1/routing", headers=agent_key(engine, "aws-euc1")).status_code == 200


def test_default_routing_spreads_over_ready_replicas_preferring_the_local_region(
    client: TestClient, engine: Engine, team: dict[str, str], admin: dict[str, str]
) -> None:
    chat = routing(client, admin)["chat"]
    assert chat["replicas"] == [] and chat["shares"] == {} and not chat["shares_published"]
    assert chat["version_weights"] == {"v1": 100.0} and chat["experiment"] is None
    make_ready(client, engine, team, "aws-use1", 2, 9100)
    chat = routing(client, admin)["chat"]
    assert [r["cluster"] for r in chat["replicas"]] == ["aws-use1", "aws-use1"]
    assert chat["replicas"][0]["region"] == "us-east-1" and chat["replicas"][0]["version"] == "v1"
    assert chat["replicas"][0]["endpoint"] == "http://127.0.0.1:9100"
    assert chat["shares"] == {"us-east-1": {"aws-use1": 1.0}}


def test_a_draining_replica_leaves_the_table(
    client: TestClient, engine: Engine, team: dict[str, str], admin: dict[str, str]
) -> None:
    make_ready(client, engine, team, "aws-use1", 2, 9100)
    ok(client.put("/v1/deployments/chat/placement", json={"replicas": [
        {"cluster": "aws-use1", "pool": L4, "variant": "fp8", "tensor_parallel": 1, "count": 1}]}, headers=team))
    assert len(routing(client, admin)["chat"]["replicas"]) == 1


def test_publish_validates_bumps_the_generation_and_audits(
    client: TestClient, engine: Engine, team: dict[str, str], admin: dict[str, str]
) -> None:
    shares = [RouteShare("us-east-1", "aws-use1", 0.7), RouteShare("us-east-1", "aws-euc1", 0.3),
              RouteShare("eu-central-1", "aws-euc1", 1.0)]
    assert with_deployment(engine, lambda s, d: publish_routing(s, deployment=d, shares=shares, actor="wf")) == 1
    for bad, field in (([RouteShare("us-east-1", "nowhere", 1.0)], "shares[0].cluster"),
                       ([RouteShare("us-east-1", "aws-use1", 0.5)], "shares"),
                       ([RouteShare("us-east-1", "aws-use1", 1.5)], "shares[0].share")):
        with pytest.raises(Invalid) as caught:
            with_deployment(engine, lambda s, d, bad=bad: publish_routing(s, deployment=d, shares=bad, actor="wf"))
        assert caught.value.field == field
    chat = routing(client, admin)["chat"]
    assert chat["shares"] == {"us-east-1": {"aws-euc1": 0.3, "aws-use1": 0.7}, "eu-central-1": {"aws-euc1": 1.0}}
    assert chat["shares_published"] and chat["generation"] == 1
    route = with_deployment(engine, lambda s, d: routing_of(s, d))
    assert route.generation == 1 and route.shares["eu-central-1"] == {"aws-euc1": 1.0}
    with transaction(session_factory(engine)) as session:
        actions = list(session.scalars(select(AuditEvent.action).where(AuditEvent.object_id == "chat")))
    assert actions.count("publish_routing") == 1


def test_version_weights_and_experiments_are_validated_and_published(
    client: TestClient, engine: Engine, team: dict[str, str], admin: dict[str, str]
) -> None:
    ok(client.post("/v1/models/llama-3.1-8b/versions", json=version_body("v2"), headers=team), 201)
    generation = with_deployment(engine, lambda s, d: set_version_weights(
        s, deployment=d, weights={"v1": 90, "v2": 10}, actor="rollout"))
    assert generation == 1
    with pytest.raises(Invalid):
        with_deployment(engine, lambda s, d: set_version_weights(s, deployment=d, weights={"v1": 50}, actor="x"))
    with pytest.raises(Invalid):
        with_deployment(engine, lambda s, d: set_version_weights(s, deployment=d, weights={"v9": 100}, actor="x"))
    arms = [ExperimentArm("a", "v1", 50), ExperimentArm("b", "v2", 50)]
    assert with_deployment(engine, lambda s, d: set_experiment(s, deployment=d, name="exp", arms=arms,
                                                               actor="x")) == 2
    chat = routing(client, admin)["chat"]
    assert chat["version_weights"] == {"v1": 90.0, "v2": 10.0}
    assert chat["experiment"]["name"] == "exp" and [a["name"] for a in chat["experiment"]["arms"]] == ["a", "b"]


def test_keys_are_published_as_hashes_and_revocation_removes_them(
    client: TestClient, engine: Engine, team: dict[str, str], admin: dict[str, str], make_key: KeyMaker
) -> None:
    key = make_key("search", Scope.READ)
    key_id = key.split("_")[1]
    table = ok(client.get("/v1/routing", headers=admin))
    published = {k["key_id"]: k for k in table["keys"]}
    assert published[key_id]["team"] == "search" and published[key_id]["scopes"] == ["read"]
    assert key not in str(table)
    agent = agent_key(engine, "aws-use1")
    assert agent["Authorization"].split("_")[1] not in {k["key_id"] for k in table["keys"]}
    ok(client.delete(f"/v1/keys/{key_id}", headers=admin))
    assert key_id not in {k["key_id"] for k in ok(client.get("/v1/routing", headers=admin))["keys"]}


def test_etag_and_if_none_match(client: TestClient, engine: Engine, team: dict[str, str], admin: dict[str, str]) -> None:
    first = client.get("/v1/routing", headers=admin)
    etag = first.headers["ETag"]
    assert client.get("/v1/routing", headers={**admin, "If-None-Match": etag}).status_code == 304
    with_deployment(engine, lambda s, d: publish_routing(
        s, deployment=d, shares=[RouteShare("us-east-1", "aws-use1", 1.0)], actor="wf"))
    again = client.get("/v1/routing", headers={**admin, "If-None-Match": etag})
    assert again.status_code == 200 and again.headers["ETag"] != etag and again.json()["generation"] == 1


def test_deleting_a_deployment_removes_its_routing(
    client: TestClient, engine: Engine, team: dict[str, str], admin: dict[str, str]
) -> None:
    with_deployment(engine, lambda s, d: publish_routing(
        s, deployment=d, shares=[RouteShare("us-east-1", "aws-use1", 1.0)], actor="wf"))
    assert client.delete("/v1/deployments/chat", headers=team).status_code in (200, 202, 204)
    assert "chat" not in routing(client, admin)
    with transaction(session_factory(engine)) as session:
        assert session.scalars(select(RoutingState)).all() == []
        assert session.scalars(select(RoutingShare)).all() == []
