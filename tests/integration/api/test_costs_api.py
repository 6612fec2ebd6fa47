"""The cost API on SQLite and PostgreSQL: $/h grouped five ways, one deployment's cost per token and goodput,
team isolation, bad input, and agreement with the `llmfleet_cost_usd_per_hour` series on /metrics."""

from __future__ import annotations

import math
from datetime import UTC, datetime
from typing import Any

import pytest
from fastapi import FastAPI
from fastapi.testclient import TestClient
from prometheus_client.parser import text_string_to_metric_families
from sqlalchemy import Engine

from control_plane.observability.install import install_observability
from registry.api_keys import Scope, issue_key
from registry.db import session_factory, transaction
from tests.conftest import KeyMaker, bearer
from tests.support.fleet import deployment_body, ok, populate

L4 = "g6.xlarge/on-demand"
H100 = "p5.4xlarge/on-demand"


@pytest.fixture
def cost_client(app: FastAPI) -> TestClient:
    install_observability(app)  # a no-op once create_app does it itself
    return TestClient(app, raise_server_exceptions=False)


@pytest.fixture
def admin(make_key: KeyMaker) -> dict[str, str]:
    return bearer(make_key("platform", Scope.ADMIN))


@pytest.fixture
def team(cost_client: TestClient, make_key: KeyMaker, admin: dict[str, str]) -> dict[str, str]:
    headers = bearer(make_key("search", Scope.DEPLOY))
    populate(cost_client, admin, headers)
    body = deployment_body(constraints={"budget_per_hour": 5.0})
    ok(cost_client.post("/v1/deployments", json=body, headers=headers), 201)
    return headers


def agent(engine: Engine, cluster: str) -> dict[str, str]:
    with transaction(session_factory(engine)) as session:
        return bearer(issue_key(session, team="platform", scopes=[Scope.AGENT], name=f"agent {cluster}",
                                actor="test", cluster=cluster).plaintext)


def pool_price(client: TestClient, admin: dict[str, str], cluster: str, pool: str) -> float:
    pools = ok(client.get(f"/v1/clusters/{cluster}/pools", headers=admin))
    found = next(p for p in pools if p["name"] == pool)
    return float(found["price_per_hour"]) / int(found["gpus_per_instance"])


def telemetry(tokens: float, ttft_ms: float | None, tpot_ms: float | None) -> dict[str, Any]:
    return {"observed_at": datetime.now(UTC).isoformat(), "window_s": 30, "prompt_tokens_per_s": tokens / 2,
            "generation_tokens_per_s": tokens / 2, "ttft_p95_ms": ttft_ms, "tpot_p95_ms": tpot_ms}


def report(client: TestClient, engine: Engine, cluster: str, states: list[str],
           windows: list[dict[str, Any] | None]) -> None:
    key = agent(engine, cluster)
    names = [r["name"] for r in ok(client.get(f"/v1/agent/clusters/{cluster}/desired", headers=key))["replicas"]]
    replicas = [{"name": n, "state": s, "endpoint": f"http://127.0.0.1:{9000 + i}", "telemetry": w}
                for i, (n, s, w) in enumerate(zip(names, states, windows, strict=True))]
    body = {"agent_version": "t", "applied_generation": None, "replicas": replicas}
    ok(client.post(f"/v1/agent/clusters/{cluster}/heartbeat", json=body, headers=key))


@pytest.fixture
def fleet(cost_client: TestClient, engine: Engine, team: dict[str, str]) -> TestClient:
    """chat: 2 L4 replicas ready in us-east-1 (one meets the SLO of 500/50 ms, one does not), 1 H100 replica
    starting in us-east-1 with no telemetry, and 1 L4 replica in eu-central-1 still pending (not billed)."""
    placement = {"replicas": [
        {"cluster": "aws-use1", "pool": L4, "variant": "fp8", "tensor_parallel": 1, "count": 2},
        {"cluster": "aws-use1", "pool": H100, "variant": "fp8", "tensor_parallel": 1, "count": 1},
        {"cluster": "aws-euc1", "pool": L4, "variant": "fp8", "tensor_parallel": 1, "count": 1},
    ]}
    ok(cost_client.put("/v1/deployments/chat/placement", json=placement, headers=team))
    report(cost_client, engine, "aws-use1", ["ready", "ready", "starting"],
           [telemetry(1000.0, 200.0, 20.0), telemetry(3000.0, 900.0, 20.0), None])
    return cost_client


def test_fleet_cost_grouped_every_way_adds_up_to_the_priced_replicas(
    fleet: TestClient, team: dict[str, str], admin: dict[str, str]
) -> None:
    l4, h100 = pool_price(fleet, admin, "aws-use1", L4), pool_price(fleet, admin, "aws-use1", H100)
    expected_total = 2 * l4 + h100
    for group_by, keys in (("deployment", {"chat"}), ("team", {"search"}), ("region", {"us-east-1"}),
                           ("accelerator", {"L4", "H100"}), ("market", {"on-demand"})):
        body = ok(fleet.get("/v1/costs", params={"group_by": group_by}, headers=team))
        assert body["group_by"] == group_by
        assert math.isclose(body["total_usd_per_hour"], expected_total)
        assert {i["key"] for i in body["items"]} == keys
        assert math.isclose(sum(i["usd_per_hour"] for i in body["items"]), expected_total)
        assert sum(i["replicas"] for i in body["items"]) == 3 and sum(i["gpus"] for i in body["items"]) == 3
        datetime.fromisoformat(body["as_of"])
    by_gpu = ok(fleet.get("/v1/costs?group_by=accelerator", headers=team))["items"]
    assert [i["key"] for i in by_gpu] == sorted(["L4", "H100"], key=lambda k: -(h100 if k == "H100" else 2 * l4))
    assert ok(fleet.get("/v1/costs", headers=team))["group_by"] == "deployment"


def test_deployment_cost_per_token_and_goodput(fleet: TestClient, team: dict[str, str],
                                               admin: dict[str, str]) -> None:
    l4, h100 = pool_price(fleet, admin, "aws-use1", L4), pool_price(fleet, admin, "aws-use1", H100)
    body = ok(fleet.get("/v1/deployments/chat/cost", headers=team))
    usd = 2 * l4 + h100
    assert body["deployment"] == "chat" and body["budget_usd_per_hour"] == 5.0
    assert math.isclose(body["usd_per_hour"], usd)
    assert math.isclose(body["tokens_per_second"], 4000.0)
    assert math.isclose(body["usd_per_million_tokens"], usd / (4000.0 * 3600) * 1e6)
    # Only the replica whose window met 500 ms TTFT counts: 1000 of the 4000 tokens/s.
    assert math.isclose(body["goodput_tokens_per_usd"], 1000.0 * 3600 / usd)
    assert body["by_region"] == [{"region": "us-east-1", "usd_per_hour": pytest.approx(usd), "replicas": 3}]


def test_a_deployment_without_traffic_has_null_unit_costs(
    cost_client: TestClient, team: dict[str, str]
) -> None:
    body = ok(cost_client.get("/v1/deployments/chat/cost", headers=team))
    assert body["usd_per_hour"] == 0 and body["tokens_per_second"] == 0 and body["by_region"] == []
    assert body["usd_per_million_tokens"] is None and body["goodput_tokens_per_usd"] is None


def test_other_teams_see_nothing_and_admins_see_the_fleet(
    fleet: TestClient, make_key: KeyMaker, admin: dict[str, str], team: dict[str, str]
) -> None:
    other = bearer(make_key("ads", Scope.READ))
    body = ok(fleet.get("/v1/costs", headers=other))
    assert body["items"] == [] and body["total_usd_per_hour"] == 0
    assert fleet.get("/v1/deployments/chat/cost", headers=other).status_code == 404
    everything = ok(fleet.get("/v1/costs?group_by=team", headers=admin))
    assert [i["key"] for i in everything["items"]] == ["search"]
    assert fleet.get("/v1/costs").status_code == 401


def test_bad_group_by_and_bad_names_are_problems(fleet: TestClient, team: dict[str, str]) -> None:
    response = fleet.get("/v1/costs?group_by=colour", headers=team)
    assert response.status_code == 422 and response.headers["content-type"].startswith("application/problem+json")
    assert fleet.get("/v1/deployments/Not_A_Slug/cost", headers=team).status_code == 422
    assert fleet.get("/v1/deployments/missing/cost", headers=team).status_code == 404


def test_metrics_series_agree_with_the_api(fleet: TestClient, team: dict[str, str]) -> None:
    api = ok(fleet.get("/v1/costs?group_by=accelerator", headers=team))
    text = fleet.get("/metrics").text
    samples = [s for f in text_string_to_metric_families(text) for s in f.samples]
    cost = {tuple(sorted(s.labels.items())): s.value for s in samples if s.name == "llmfleet_cost_usd_per_hour"}
    for item in api["items"]:
        series = sum(v for labels, v in cost.items() if ("accelerator", item["key"]) in labels)
        assert math.isclose(series, item["usd_per_hour"])
    slo = {s.labels["deployment"]: s.value for s in samples if s.name == "llmfleet_deployment_slo_ttft_seconds"}
    assert slo == {"chat": 0.5}
    budget = [s for s in samples if s.name == "llmfleet_deployment_budget_usd_per_hour"]
    assert [(s.labels["deployment"], s.value) for s in budget] == [("chat", 5.0)]
    le = [s.labels for s in samples if s.name == "llmfleet_deployment_slo_le"]
    assert {"deployment": "chat", "team": "search", "slo": "ttft", "le": "0.5"} in le
    assert {"deployment": "chat", "team": "search", "slo": "tpot", "le": "0.04"} in le
    ages = {s.labels["cluster"]: s.value for s in samples if s.name == "llmfleet_cluster_heartbeat_age_seconds"}
    assert set(ages) == {"aws-use1", "aws-euc1"} and 0 <= ages["aws-use1"] < 60
    routes = {s.labels.get("route") for s in samples if s.name == "llmfleet_api_request_duration_seconds_count"}
    assert "/v1/costs" in routes and "/v1/deployments/{name}/placement" in routes
    assert not any(r and "chat" in r for r in routes)  # templates, never raw paths
