"""The agent API and placement, on SQLite and PostgreSQL: cluster-scoped agent keys, the desired snapshot
with its generation and ETag, idempotent heartbeats, drain and the end of a deleted deployment."""

from __future__ import annotations

from concurrent.futures import ThreadPoolExecutor
from typing import Any

import httpx
import pytest
from fastapi import FastAPI
from fastapi.testclient import TestClient
from sqlalchemy import Engine

from registry.api_keys import Scope, issue_key
from registry.db import session_factory, transaction
from registry.errors import Invalid
from tests.conftest import KeyMaker, bearer
from tests.support.fleet import ARCH_8B, deployment_body, ok, populate, version_body
from tests.support.live_server import live_server

L4 = "g6.xlarge/on-demand"
H100 = "p5.4xlarge/on-demand"


def agent_key(engine: Engine, cluster: str) -> dict[str, str]:
    with transaction(session_factory(engine)) as session:
        return bearer(issue_key(session, team="platform", scopes=[Scope.AGENT], name=f"agent {cluster}",
                                actor="test", cluster=cluster).plaintext)


@pytest.fixture
def admin(make_key: KeyMaker) -> dict[str, str]:
    return bearer(make_key("platform", Scope.ADMIN))


@pytest.fixture
def team(client: TestClient, make_key: KeyMaker, admin: dict[str, str]) -> dict[str, str]:
    headers = bearer(make_key("search", Scope.DEPLOY))
    populate(client, admin, headers)
    ok(client.post("/v1/deployments", json=deployment_body(), headers=headers), 201)
    return headers


@pytest.fixture
def agent(engine: Engine, team: dict[str, str]) -> dict[str, str]:
    return agent_key(engine, "aws-use1")


def place(client: TestClient, team: dict[str, str], *entries: dict[str, Any], status: int = 200,
          name: str = "chat") -> Any:
    return ok(client.put(f"/v1/deployments/{name}/placement", json={"replicas": list(entries)}, headers=team), status)


def entry(count: int, cluster: str = "aws-use1", pool: str = L4, variant: str = "fp8", tp: int = 1) -> dict[str, Any]:
    return {"cluster": cluster, "pool": pool, "variant": variant, "tensor_parallel": tp, "count": count}


def desired(client: TestClient, agent: dict[str, str], cluster: str = "aws-use1") -> Any:
    return ok(client.get(f"/v1/agent/clusters/{cluster}/desired", headers=agent))


def heartbeat(client: TestClient, agent: dict[str, str], *replicas: dict[str, Any], cluster: str = "aws-use1",
              applied: int | None = None) -> Any:
    body = {"agent_version": "0.1.0", "applied_generation": applied, "replicas": list(replicas)}
    return ok(client.post(f"/v1/agent/clusters/{cluster}/heartbeat", json=body, headers=agent))


def observed(client: TestClient, team: dict[str, str], name: str = "chat") -> dict[str, dict[str, Any]]:
    replicas = ok(client.get(f"/v1/deployments/{name}", headers=team))["observed"]["replicas"]
    return {r["name"]: r for r in replicas}


# ---- keys and auth ---------------------------------------------------------------------------------


def test_agent_keys_are_bound_to_one_existing_cluster_and_carry_only_the_agent_scope(
    engine: Engine, team: dict[str, str], client: TestClient, admin: dict[str, str]
) -> None:
    sessions = session_factory(engine)
    for scopes, cluster in (([Scope.AGENT], None), ([Scope.AGENT, Scope.READ], "aws-use1"),
                            ([Scope.READ], "aws-use1"), ([Scope.AGENT], "moon-1")):
        with pytest.raises(Invalid), transaction(sessions) as session:
            issue_key(session, team="platform", scopes=scopes, name="", actor="test", cluster=cluster)
    refused = client.post("/v1/keys", json={"team": "platform", "scopes": ["agent"]}, headers=admin)
    assert refused.status_code == 422 and "cluster" in refused.json()["detail"]


def test_only_the_clusters_own_agent_key_opens_its_agent_api(
    client: TestClient, engine: Engine, team: dict[str, str], agent: dict[str, str], admin: dict[str, str],
    make_key: KeyMaker,
) -> None:
    other = agent_key(engine, "aws-euc1")
    beat = {"agent_version": "0.1.0", "replicas": []}
    for path in ("/v1/agent/clusters/aws-use1/desired", "/v1/agent/clusters/aws-use1/heartbeat"):
        call = client.get if path.endswith("desired") else lambda p, headers: client.post(p, json=beat, headers=headers)
        assert call(path, headers={}).status_code == 401
        assert call(path, headers=bearer("lf_00000000_nope")).status_code == 401
        for key in (team, admin, bearer(make_key("search", Scope.READ)), other):
            response = call(path, headers=key)
            assert response.status_code == 403, (key, response.text)
            assert response.headers["content-type"] == "application/problem+json"
        assert call(path, headers=agent).status_code == 200
    assert client.get("/v1/agent/clusters/aws-euc1/desired", headers=other).status_code == 200
    # An agent key opens nothing else.
    assert client.get("/v1/deployments", headers=agent).status_code == 403
    assert client.get("/v1/clusters", headers=agent).status_code == 403


def test_a_revoked_agent_key_stops_working(
    client: TestClient, team: dict[str, str], agent: dict[str, str], admin: dict[str, str]
) -> None:
    key_id = agent["Authorization"].split("_")[1]
    ok(client.delete(f"/v1/keys/{key_id}", headers=admin))
    assert client.get("/v1/agent/clusters/aws-use1/desired", headers=agent).status_code == 401


# ---- placement and the desired snapshot --------------------------------------------------------------


def test_placement_creates_named_replicas_and_the_agent_sees_everything_it_needs(
    client: TestClient, team: dict[str, str], agent: dict[str, str], admin: dict[str, str]
) -> None:
    assert desired(client, agent) == {"cluster": "aws-use1", "generation": 0, "replicas": []}
    result = place(client, team, entry(2), entry(1, cluster="aws-euc1", pool="g6.xlarge/on-demand"))
    assert result["created"] == ["chat-aws-use1-1", "chat-aws-use1-2", "chat-aws-euc1-1"]
    assert result["replicas"] == [entry(1, cluster="aws-euc1"), entry(2)]
    snapshot = desired(client, agent)
    assert snapshot["generation"] == 1 and [r["name"] for r in snapshot["replicas"]] == [
        "chat-aws-use1-1", "chat-aws-use1-2"]
    first = snapshot["replicas"][0]
    assert first["deployment"] == "chat" and first["model"] == "llama-3.1-8b" and first["version"] == "v1"
    assert first["architecture"] == ARCH_8B and first["variant"]["bytes_per_param"] == 1.0
    assert first["pool"]["accelerator"] == "L4" and first["tensor_parallel"] == 1
    assert first["desired_state"] == "running"
    assert {r["status"] for r in observed(client, team).values()} == {"pending"}
    audit = ok(client.get("/v1/audit", params={"object_type": "deployment", "object_id": "chat"}, headers=admin))
    assert audit[0]["action"] == "set_placement" and len(audit[0]["details"]["created"]) == 3
    assert ok(client.get("/v1/deployments/chat/placement", headers=team))["replicas"] == result["replicas"]


def test_the_same_placement_twice_changes_nothing_and_the_etag_tells_the_agent(
    client: TestClient, team: dict[str, str], agent: dict[str, str], admin: dict[str, str]
) -> None:
    place(client, team, entry(2))
    first = client.get("/v1/agent/clusters/aws-use1/desired", headers=agent)
    etag = first.headers["etag"]
    assert etag.startswith('"1-')
    again = place(client, team, entry(2))
    assert again["created"] == again["drained"] == []
    unchanged = client.get("/v1/agent/clusters/aws-use1/desired", headers={**agent, "If-None-Match": etag})
    assert unchanged.status_code == 304 and unchanged.headers["etag"] == etag and unchanged.content == b""
    events = ok(client.get("/v1/audit", params={"object_type": "deployment"}, headers=admin))
    assert [e["action"] for e in events].count("set_placement") == 1
    place(client, team, entry(3))
    changed = client.get("/v1/agent/clusters/aws-use1/desired", headers={**agent, "If-None-Match": etag})
    assert changed.status_code == 200 and changed.json()["generation"] == 2 and changed.headers["etag"] != etag


def test_shrinking_drains_replicas_not_yet_serving_first(
    client: TestClient, team: dict[str, str], agent: dict[str, str]
) -> None:
    place(client, team, entry(3))
    heartbeat(client, agent, {"name": "chat-aws-use1-1", "state": "ready"}, {"name": "chat-aws-use1-3", "state": "ready"})
    result = place(client, team, entry(2))
    assert result["drained"] == ["chat-aws-use1-2"]
    states = {r["name"]: r["desired_state"] for r in desired(client, agent)["replicas"]}
    assert states == {"chat-aws-use1-1": "running", "chat-aws-use1-2": "stopped", "chat-aws-use1-3": "running"}
    # Moving to another variant replaces every replica; numbers are never reused.
    moved = place(client, team, entry(1, variant="bf16"))
    assert moved["created"] == ["chat-aws-use1-4"] and sorted(moved["drained"]) == ["chat-aws-use1-1", "chat-aws-use1-3"]


@pytest.mark.parametrize(
    ("bad", "field"),
    [
        (entry(1, cluster="nowhere"), "replicas[0].cluster"),
        (entry(1, pool="x9.huge/on-demand"), "replicas[0].pool"),
        (entry(1, variant="int2"), "replicas[0].variant"),
        (entry(1, tp=2), "replicas[0].tensor_parallel"),  # one GPU per g6.xlarge
    ],
)
def test_placement_refuses_what_does_not_exist_or_fit(
    client: TestClient, team: dict[str, str], bad: dict[str, Any], field: str
) -> None:
    problem = place(client, team, bad, status=422)
    assert problem["errors"][0]["field"] == field


def test_placement_refuses_a_model_that_cannot_load_and_duplicates_and_other_teams(
    client: TestClient, team: dict[str, str], make_key: KeyMaker
) -> None:
    big = {**ARCH_8B, "params_b": 140.0, "layers": 96, "hidden": 12288}
    ok(client.post("/v1/models/llama-3.1-8b/versions", json=version_body("v2", architecture=big), headers=team), 201)
    ok(client.post("/v1/deployments", json=deployment_body("huge", version="v2"), headers=team), 201)
    problem = place(client, team, entry(1, variant="bf16"), status=422, name="huge")
    assert "L4" in problem["detail"]
    place(client, team, entry(1, pool=H100, variant="fp8"), status=422, name="huge")  # 140 GB on 80 GB
    assert place(client, team, entry(1), entry(2), status=422)["errors"][0]["field"] == "replicas[1]"
    other = bearer(make_key("ads", Scope.DEPLOY))
    assert client.put("/v1/deployments/chat/placement", json={"replicas": [entry(1)]}, headers=other).status_code == 404
    reader = bearer(make_key("search", Scope.READ))
    assert client.put("/v1/deployments/chat/placement", json={"replicas": []}, headers=reader).status_code == 403
    assert client.put("/v1/deployments/chat/placement", json={"replicas": [], "x": 1}, headers=team).status_code == 422


# ---- heartbeats ------------------------------------------------------------------------------------


def telemetry(at: str, rate: float) -> dict[str, Any]:
    return {"observed_at": at, "window_s": 60.0, "request_rate": rate, "ttft_p95_ms": 120.0, "tpot_p95_ms": 30.0,
            "queue_length": 2, "kv_cache_usage": 0.4}


def test_heartbeats_record_each_fact_once_and_repeats_change_nothing(
    client: TestClient, team: dict[str, str], agent: dict[str, str], admin: dict[str, str]
) -> None:
    place(client, team, entry(2))
    ready = {"name": "chat-aws-use1-1", "state": "ready", "endpoint": "http://10.0.0.5:8000", "restarts": 1,
             "telemetry": telemetry("2026-11-29T10:00:00Z", 3.0)}
    first = heartbeat(client, agent, ready, {"name": "chat-aws-use1-2", "state": "starting"},
                      {"name": "ghost-1", "state": "ready"}, applied=1)
    assert first["transitions"] == {"chat-aws-use1-1": "ready", "chat-aws-use1-2": "starting"}
    assert first["unknown"] == ["ghost-1"] and first["desired_generation"] == 1
    before = observed(client, team)
    events = len(ok(client.get("/v1/audit", params={"object_type": "replica"}, headers=admin)))
    repeat = heartbeat(client, agent, ready, {"name": "chat-aws-use1-2", "state": "starting"}, applied=1)
    assert repeat["transitions"] == {}
    # A late heartbeat from before: `starting`, fewer restarts, an older telemetry window. Nothing moves back.
    late = {**ready, "state": "starting", "restarts": 0, "telemetry": telemetry("2026-11-29T09:59:00Z", 9.0)}
    heartbeat(client, agent, late)
    assert observed(client, team) == before
    assert len(ok(client.get("/v1/audit", params={"object_type": "replica"}, headers=admin))) == events
    replica = before["chat-aws-use1-1"]
    assert replica["status"] == "ready" and replica["restarts"] == 1 and replica["endpoint"] == "http://10.0.0.5:8000"
    assert replica["telemetry"]["request_rate"] == 3.0 and replica["telemetry"]["kv_cache_usage"] == 0.4
    cluster = ok(client.get("/v1/clusters/aws-use1", headers=admin))
    assert cluster["health"] == "healthy" and cluster["last_heartbeat_at"] is not None


def test_a_heartbeat_cannot_touch_another_clusters_replicas(
    client: TestClient, engine: Engine, team: dict[str, str], agent: dict[str, str]
) -> None:
    place(client, team, entry(1, cluster="aws-euc1"))
    result = heartbeat(client, agent, {"name": "chat-aws-euc1-1", "state": "failed"})
    assert result["unknown"] == ["chat-aws-euc1-1"]
    assert observed(client, team)["chat-aws-euc1-1"]["status"] == "pending"


def test_terminated_after_a_drain_finalises_and_without_one_is_a_failure(
    client: TestClient, team: dict[str, str], agent: dict[str, str]
) -> None:
    place(client, team, entry(2))
    heartbeat(client, agent, {"name": "chat-aws-use1-1", "state": "ready"}, {"name": "chat-aws-use1-2", "state": "ready"})
    place(client, team, entry(1))  # drains one
    drained = next(n for n, r in observed(client, team).items() if r["desired_state"] == "stopped")
    kept = next(n for n in observed(client, team) if n != drained)
    assert observed(client, team)[drained]["status"] == "draining"
    result = heartbeat(client, agent, {"name": drained, "state": "terminated"}, {"name": kept, "state": "terminated"})
    assert result["transitions"] == {drained: "terminated", kept: "failed"}
    assert observed(client, team)[kept]["failure_reason"] == "terminated without a drain request"
    snapshot = desired(client, agent)
    assert snapshot["replicas"] == [] and snapshot["generation"] == result["desired_generation"] == 3


def test_never_ready_is_failed_with_its_reason_and_placement_replaces_it(
    client: TestClient, team: dict[str, str], agent: dict[str, str]
) -> None:
    place(client, team, entry(1))
    heartbeat(client, agent, {"name": "chat-aws-use1-1", "state": "failed", "failure_reason": "not ready within 600 s"})
    assert observed(client, team)["chat-aws-use1-1"]["failure_reason"] == "not ready within 600 s"
    assert place(client, team, entry(1))["created"] == ["chat-aws-use1-2"]  # level-triggered: back to 1 live


def test_deleting_drains_and_the_last_termination_removes_the_deployment(
    client: TestClient, team: dict[str, str], agent: dict[str, str], admin: dict[str, str]
) -> None:
    place(client, team, entry(2))
    heartbeat(client, agent, {"name": "chat-aws-use1-1", "state": "ready"})
    assert client.delete("/v1/deployments/chat", headers=team).status_code == 202
    assert {r["desired_state"] for r in desired(client, agent)["replicas"]} == {"stopped"}
    assert client.put("/v1/deployments/chat/placement", json={"replicas": [entry(1)]}, headers=team).status_code == 409
    partial = heartbeat(client, agent, {"name": "chat-aws-use1-1", "state": "terminated"})
    assert partial["deleted_deployments"] == []
    # The never-started one is reported terminated too (the agent was told to stop it and has nothing).
    final = heartbeat(client, agent, {"name": "chat-aws-use1-2", "state": "terminated"})
    assert final["deleted_deployments"] == ["chat"]
    assert client.get("/v1/deployments/chat", headers=team).status_code == 404
    assert desired(client, agent)["replicas"] == []
    again = heartbeat(client, agent, {"name": "chat-aws-use1-2", "state": "terminated"})
    assert again["unknown"] == ["chat-aws-use1-2"]
    events = ok(client.get("/v1/audit", params={"object_type": "deployment", "object_id": "chat"}, headers=admin))
    assert [e["action"] for e in events][:3] == ["deleted", "drain", "delete"]


def test_heartbeat_input_is_validated(client: TestClient, team: dict[str, str], agent: dict[str, str]) -> None:
    url = "/v1/agent/clusters/aws-use1/heartbeat"
    for body in (
        {"agent_version": "0.1.0", "replicas": [{"name": "a", "state": "exploded"}]},
        {"agent_version": "0.1.0", "replicas": [{"name": "a", "state": "ready"}, {"name": "a", "state": "ready"}]},
        {"agent_version": "0.1.0", "replicas": [{"name": "a", "state": "ready",
                                                 "telemetry": {"observed_at": "2026-11-29T10:00:00", "window_s": 60}}]},
        {"agent_version": "0.1.0", "surprise": True},
    ):
        assert client.post(url, json=body, headers=agent).status_code == 422, body


def test_overlapping_identical_heartbeats_record_each_fact_once(
    app: FastAPI, client: TestClient, team: dict[str, str], agent: dict[str, str], admin: dict[str, str]
) -> None:
    place(client, team, entry(1))
    body = {"agent_version": "0.1.0", "replicas": [{"name": "chat-aws-use1-1", "state": "ready"}]}
    with live_server(app) as url, ThreadPoolExecutor(max_workers=6) as pool:
        def send(_: int) -> httpx.Response:
            return httpx.post(f"{url}/v1/agent/clusters/aws-use1/heartbeat", json=body, headers=agent, timeout=60)

        responses = list(pool.map(send, range(6)))
    assert [r.status_code for r in responses] == [200] * 6
    assert sum(len(r.json()["transitions"]) for r in responses) == 1
    events = ok(client.get("/v1/audit", params={"object_type": "replica"}, headers=admin))
    assert [e["details"]["to"] for e in events] == ["ready"]
