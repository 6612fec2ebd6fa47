"""Deployments: validation, idempotent create, optimistic concurrency, delete, and an audit row per change."""

from __future__ import annotations

from typing import Any

import pytest
from fastapi.testclient import TestClient

from registry.api_keys import Scope
from tests.conftest import KeyMaker, bearer
from tests.support.fleet import deployment_body, ok, populate


@pytest.fixture
def team(client: TestClient, make_key: KeyMaker) -> dict[str, str]:
    headers = bearer(make_key("search", Scope.DEPLOY))
    populate(client, bearer(make_key("platform", Scope.ADMIN)), headers)
    return headers


def test_create_get_list(client: TestClient, team: dict[str, str]) -> None:
    body = deployment_body(variants=["fp8"], environment="dev", constraints={
        "allowed_regions": ["us-east-1", "eu-central-1"], "allowed_clouds": ["aws"], "min_replicas": 2,
        "max_replicas": 10, "spread": True, "max_spot_share": 0.5, "max_spot_pool_share": 0.2,
        "max_quality_drop": 0.02, "budget_per_hour": 50})
    response = client.post("/v1/deployments", json=body, headers=team)
    created = ok(response, 201)
    assert response.headers["etag"] == '"1"'
    assert created["version"] == "v1" and created["variants"] == ["fp8"]
    assert created["constraints"]["max_spot_share"] == 0.5 and created["constraints"]["spread"] is True
    assert created["constraints"]["max_spot_pool_share"] == 0.2
    assert created["desired_generation"] == 1 and created["observed"] == {
        "generation": 0, "replicas": [], "replicas_by_status": {}}
    assert ok(client.get("/v1/deployments/chat", headers=team))["demand"] == created["demand"]
    assert [d["name"] for d in ok(client.get("/v1/deployments", headers=team))] == ["chat"]


def test_version_can_be_an_alias(client: TestClient, team: dict[str, str]) -> None:
    ok(client.put("/v1/models/llama-3.1-8b/aliases/champion", json={"version": "v1"}, headers=team))
    created = ok(client.post("/v1/deployments", json=deployment_body(version="champion"), headers=team), 201)
    assert created["version"] == "v1" and created["version_ref"] == "champion"


BAD_DEPLOYMENTS: list[tuple[dict[str, Any], str]] = [
    ({"model": "gpt-unknown"}, "model"),
    ({"version": "v7"}, "version"),
    ({"environment": "prod"}, "environment"),  # v1 is only promoted to dev
    ({"variants": ["int2"]}, "variants"),
    ({"variants": ["fp8"], "constraints": {"max_quality_drop": 0.001}}, "max_quality_drop"),
    ({"demand": [{"client_region": "moon-1", "rps": 1}]}, "demand"),
    ({"constraints": {"allowed_regions": ["moon-1"]}}, "allowed_regions"),
    ({"constraints": {"allowed_clouds": ["azure"]}}, "allowed_clouds"),
    ({"constraints": {"min_replicas": 3, "max_replicas": 2}}, "constraints"),
    ({"constraints": {"spread": True, "min_replicas": 1}}, "constraints"),
    ({"constraints": {"max_spot_share": 1.5}}, "constraints.max_spot_share"),
    ({"constraints": {"max_spot_pool_share": -0.1}}, "constraints.max_spot_pool_share"),
    ({"constraints": {"budget_per_hour": 0}}, "constraints.budget_per_hour"),
    ({"constraints": {"budget_per_hour": 1e12}}, "constraints.budget_per_hour"),
    ({"slo": {"ttft_p95_ms": 0, "tpot_p95_ms": 50}}, "slo.ttft_p95_ms"),
    ({"slo": {"ttft_p95_ms": 500}}, "slo.tpot_p95_ms"),
    ({"demand": []}, "demand"),
    ({"demand": [{"client_region": "us-east-1", "rps": -1}]}, "demand.0.rps"),
    ({"demand": [{"client_region": "us-east-1", "rps": 1}, {"client_region": "us-east-1", "rps": 2}]}, "demand"),
    ({"name": "Not_A_Slug"}, "name"),
    ({"replicas": 3}, "replicas"),
]


@pytest.mark.parametrize(("change", "field"), BAD_DEPLOYMENTS, ids=[f for _, f in BAD_DEPLOYMENTS])
def test_each_validation_error_names_its_field(
    client: TestClient, team: dict[str, str], change: dict[str, Any], field: str
) -> None:
    response = client.post("/v1/deployments", json=deployment_body(**change), headers=team)
    assert response.status_code == 422, response.text
    body = response.json()
    assert body["type"].endswith("/validation-error") and body["status"] == 422
    fields = [e["field"] for e in body["errors"]]
    assert any(f == field or f.startswith(field + ".") for f in fields), fields
    assert ok(client.get("/v1/deployments", headers=team)) == []  # nothing was written


def test_create_is_idempotent_with_a_key(client: TestClient, team: dict[str, str]) -> None:
    headers = {**team, "Idempotency-Key": "create-chat-1"}
    first = client.post("/v1/deployments", json=deployment_body(), headers=headers)
    second = client.post("/v1/deployments", json=deployment_body(), headers=headers)
    assert first.status_code == second.status_code == 201
    assert second.headers["idempotent-replayed"] == "true" and second.json() == first.json()
    assert len(ok(client.get("/v1/deployments", headers=team))) == 1
    other_body = client.post("/v1/deployments", json=deployment_body(name="other"), headers=headers)
    assert other_body.status_code == 422 and "Idempotency-Key" in other_body.json()["detail"]
    without_key = client.post("/v1/deployments", json=deployment_body(), headers=team)
    assert without_key.status_code == 409  # a plain repeat is a name conflict


def test_update_with_if_match(client: TestClient, team: dict[str, str]) -> None:
    ok(client.post("/v1/deployments", json=deployment_body(), headers=team), 201)
    change = {"slo": {"ttft_p95_ms": 300, "tpot_p95_ms": 40}, "constraints": {"max_replicas": 8}}
    updated_response = client.patch("/v1/deployments/chat", json=change, headers={**team, "If-Match": '"1"'})
    updated = ok(updated_response)
    assert updated["slo"] == {"ttft_p95_ms": 300, "tpot_p95_ms": 40}
    assert updated["constraints"]["max_replicas"] == 8 and updated["constraints"]["min_replicas"] == 1
    assert updated["desired_generation"] == 2 and updated_response.headers["etag"] == '"2"'
    stale = client.patch("/v1/deployments/chat", json=change, headers={**team, "If-Match": '"1"'})
    assert stale.status_code == 409
    cleared = ok(client.patch("/v1/deployments/chat", json={"constraints": {"max_replicas": None}}, headers=team))
    assert cleared["constraints"]["max_replicas"] is None
    limited = ok(client.patch("/v1/deployments/chat", json={"constraints": {"max_spot_pool_share": 0.25}}, headers=team))
    assert limited["constraints"]["max_spot_pool_share"] == 0.25
    unlimited = ok(client.patch("/v1/deployments/chat", json={"constraints": {"max_spot_pool_share": None}}, headers=team))
    assert unlimited["constraints"]["max_spot_pool_share"] is None
    bad = client.patch("/v1/deployments/chat", json={"constraints": {"min_replicas": 9, "max_replicas": 2}},
                       headers=team)
    assert bad.status_code == 422
    assert client.patch("/v1/deployments/chat", json={}, headers=team).status_code == 422
    assert client.patch("/v1/deployments/chat", json={"slo": None}, headers=team).status_code == 422


def test_delete_without_replicas_is_immediate(client: TestClient, team: dict[str, str]) -> None:
    ok(client.post("/v1/deployments", json=deployment_body(), headers=team), 201)
    assert client.delete("/v1/deployments/chat", headers=team).status_code == 204
    assert client.get("/v1/deployments/chat", headers=team).status_code == 404
    ok(client.post("/v1/deployments", json=deployment_body(), headers=team), 201)  # the name is free again


def test_every_change_leaves_an_audit_row(client: TestClient, make_key: KeyMaker) -> None:
    admin = bearer(make_key("platform", Scope.ADMIN))
    team = bearer(make_key("search", Scope.DEPLOY))
    populate(client, admin, team)
    ok(client.post("/v1/deployments", json=deployment_body(), headers=team), 201)
    ok(client.patch("/v1/deployments/chat", json={"demand": [{"client_region": "eu-central-1", "rps": 5}]},
                    headers=team))
    ok(client.put("/v1/models/llama-3.1-8b/aliases/champion", json={"version": "v1"}, headers=team))
    ok(client.post("/v1/models/llama-3.1-8b/versions/v1/promotions", json={"environment": "staging"}, headers=team))
    assert client.delete("/v1/deployments/chat", headers=team).status_code == 204
    events = ok(client.get("/v1/audit", headers=admin, params={"limit": 1000}))
    seen = [(e["object_type"], e["object_id"], e["action"]) for e in reversed(events)]
    expected = [
        ("cluster", "aws-use1", "create"), ("cluster", "aws-use1", "import_catalog"),
        ("cluster", "aws-euc1", "create"), ("cluster", "aws-euc1", "import_catalog"),
        ("model", "llama-3.1-8b", "create"), ("model", "llama-3.1-8b", "register_version"),
        ("deployment", "chat", "create"), ("deployment", "chat", "update"),
        ("model", "llama-3.1-8b", "set_alias"), ("model", "llama-3.1-8b", "promote"),
        ("deployment", "chat", "delete"),
    ]
    assert [s for s in seen if s[0] != "api_key"] == expected
    update = next(e for e in events if e["action"] == "update")
    assert update["details"]["changed"]["demand"]["to"][0]["client_region"] == "eu-central-1"
    assert update["actor"].startswith("key:") and update["team"] == "search"
    filtered = ok(client.get("/v1/audit", headers=team, params={"object_type": "deployment", "object_id": "chat"}))
    assert [e["action"] for e in filtered] == ["delete", "update", "create"]


def test_failed_change_leaves_no_audit_row(client: TestClient, team: dict[str, str]) -> None:
    before = len(ok(client.get("/v1/audit", headers=team, params={"limit": 1000})))
    assert client.post("/v1/deployments", json=deployment_body(version="v9"), headers=team).status_code == 422
    assert client.post("/v1/models", json={"name": "llama-3.1-8b"}, headers=team).status_code == 409
    assert len(ok(client.get("/v1/audit", headers=team, params={"limit": 1000}))) == before
