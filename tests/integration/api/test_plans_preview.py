"""`POST /v1/plans/preview` on SQLite and PostgreSQL: a real plan on the registry's fleet, nothing written,
the same validation as a create, an honest infeasible answer naming the binding constraint."""

from __future__ import annotations

import pytest
from fastapi.testclient import TestClient
from sqlalchemy import Engine, select

from registry.api_keys import Scope
from registry.db import session_factory, transaction
from registry.deployments import Deployment
from registry.plans import PLAN_KEY_PREFIX, Plan
from tests.conftest import KeyMaker, bearer
from tests.support.fleet import deployment_body, ok, populate


@pytest.fixture
def team(client: TestClient, make_key: KeyMaker) -> dict[str, str]:
    headers = bearer(make_key("search", Scope.DEPLOY))
    populate(client, bearer(make_key("platform", Scope.ADMIN)), headers)
    return headers


def test_preview_plans_on_the_fleet_and_writes_nothing(client: TestClient, team: dict[str, str]) -> None:
    audit_before = ok(client.get("/v1/audit", headers=team))
    body = deployment_body(demand=[
        {"client_region": "us-east-1", "rps": 20, "prompt_tokens": 1000, "output_tokens": 200},
        {"client_region": "eu-central-1", "rps": 5, "prompt_tokens": 1000, "output_tokens": 200}])
    preview = ok(client.post("/v1/plans/preview", json=body, headers=team))
    assert preview["status"] in ("optimal", "feasible") and preview["deployment"] == "chat"
    assert preview["cost_per_hour"] > 0
    assert preview["lower_bound_per_hour"] <= preview["cost_per_hour"] + 1e-6
    assert sum(r["count"] for r in preview["replicas"]) >= 1
    assert {r["cluster"] for r in preview["replicas"]} <= {"aws-use1", "aws-euc1"}
    assert all(r["reason"] for r in preview["replicas"])  # why each choice was made
    for region in ("us-east-1", "eu-central-1"):
        assert sum(s["share"] for s in preview["routing"] if s["client_region"] == region) == pytest.approx(1.0)
    # A dry run: no deployment, no audit event.
    assert ok(client.get("/v1/deployments", headers=team)) == []
    assert ok(client.get("/v1/audit", headers=team)) == audit_before
    # ... and the name is still free for the real create.
    ok(client.post("/v1/deployments", json=body, headers=team), 201)


def test_preview_validates_like_create(client: TestClient, team: dict[str, str]) -> None:
    unknown = client.post("/v1/plans/preview", json=deployment_body(version="v9"), headers=team)
    assert unknown.status_code in (404, 422) and unknown.headers["content-type"] == "application/problem+json"
    bad = client.post("/v1/plans/preview", json={**deployment_body(), "surprise": 1}, headers=team)
    assert bad.status_code == 422
    too_long = client.post("/v1/plans/preview?time_limit_s=3600", json=deployment_body(), headers=team)
    assert too_long.status_code == 422
    ok(client.post("/v1/deployments", json=deployment_body(), headers=team), 201)
    taken = client.post("/v1/plans/preview", json=deployment_body(), headers=team)
    assert taken.status_code == 409 and "taken" in taken.json()["detail"]


def test_preview_reports_infeasible_with_the_binding_constraint(client: TestClient, team: dict[str, str]) -> None:
    # An SLO no pool can meet: the answer is a 200 with status infeasible and the reason, not an error.
    body = deployment_body(slo={"ttft_p95_ms": 1, "tpot_p95_ms": 1})
    preview = ok(client.post("/v1/plans/preview", json=body, headers=team))
    assert preview["status"] == "infeasible" and preview["cost_per_hour"] is None
    assert preview["binding"] and preview["replicas"] == []


def test_preview_needs_deploy_scope(client: TestClient, make_key: KeyMaker) -> None:
    reader = bearer(make_key("search", Scope.READ))
    assert client.post("/v1/plans/preview", json=deployment_body(), headers=reader).status_code == 403


def test_the_recorded_plan_is_readable_without_its_workflow_tag(
    client: TestClient, team: dict[str, str], engine: Engine, make_key: KeyMaker
) -> None:
    ok(client.post("/v1/deployments", json=deployment_body(), headers=team), 201)
    missing = client.get("/v1/deployments/chat/plan", headers=team)
    assert missing.status_code == 404 and "no plan yet" in missing.json()["detail"]
    with transaction(session_factory(engine)) as session:
        row = session.scalar(select(Deployment).where(Deployment.name == "chat"))
        assert row is not None
        session.add(Plan(deployment_id=row.id, status="optimal", cost_per_hour=2.5, lower_bound_per_hour=2.4,
                         solve_seconds=0.1, replicas=[{"cluster": "aws-use1", "count": 1}], routing=[],
                         reasons=[f"{PLAN_KEY_PREFIX}deploy-chat/1", "chat: 1 replicas, $2.50/h"]))
    plan = ok(client.get("/v1/deployments/chat/plan", headers=team))
    assert plan["status"] == "optimal" and plan["cost_per_hour"] == 2.5
    assert plan["reasons"] == ["chat: 1 replicas, $2.50/h"]
    # Another team's deployment is not found, as everywhere else.
    other = client.get("/v1/deployments/chat/plan", headers=bearer(make_key("ads", Scope.READ)))
    assert other.status_code == 404
