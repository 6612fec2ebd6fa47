"""Clusters and pools, including the SkyPilot vms.csv catalog import."""

from __future__ import annotations

import pytest
from fastapi.testclient import TestClient

from registry.api_keys import Scope
from tests.conftest import KeyMaker, bearer
from tests.support.fleet import SMALL_CATALOG, ok


@pytest.fixture
def admin(client: TestClient, make_key: KeyMaker) -> dict[str, str]:
    headers = bearer(make_key("platform", Scope.ADMIN))
    ok(client.post("/v1/clusters", json={"name": "aws-use1", "cloud": "aws", "region": "us-east-1"},
                   headers=headers), 201)
    return headers


def _import(client: TestClient, admin: dict[str, str], text: str, **params: int):  # type: ignore[no-untyped-def]
    return client.post("/v1/clusters/aws-use1/pools/import", content=text, params=params,
                       headers={**admin, "Content-Type": "text/csv"})


def test_catalog_import_makes_one_pool_per_market_at_the_lowest_zone_price(
    client: TestClient, admin: dict[str, str]
) -> None:
    result = ok(_import(client, admin, SMALL_CATALOG, max_instances=4))
    pools = {p["name"]: p for p in result["pools"]}
    # Two L4 zones collapse into one on-demand and one spot pool; H100 has no spot price, so no spot pool.
    assert set(pools) == {"g6.xlarge/on-demand", "g6.xlarge/spot", "p5.4xlarge/on-demand"}
    assert pools["g6.xlarge/spot"]["price_per_hour"] == pytest.approx(0.2899)
    assert pools["g6.xlarge/spot"]["zone"] == "use1-az2"
    assert pools["g6.xlarge/on-demand"]["price_per_hour"] == pytest.approx(0.8048)
    assert pools["p5.4xlarge/on-demand"]["accelerator"] == "H100"
    assert all(p["max_instances"] == 4 for p in pools.values())
    assert result["created"] == 3 and result["updated"] == 0


def test_catalog_import_is_idempotent_and_keeps_quotas(client: TestClient, admin: dict[str, str]) -> None:
    ok(_import(client, admin, SMALL_CATALOG, max_instances=4))
    again = ok(_import(client, admin, SMALL_CATALOG.replace("0.8048", "0.9")))
    assert again["created"] == 0 and again["updated"] == 3
    pools = {p["name"]: p for p in ok(client.get("/v1/clusters/aws-use1/pools", headers=admin))}
    assert len(pools) == 3
    assert pools["g6.xlarge/on-demand"]["price_per_hour"] == pytest.approx(0.9)
    assert pools["g6.xlarge/on-demand"]["max_instances"] == 4


def test_catalog_import_reports_bad_rows_by_line(client: TestClient, admin: dict[str, str]) -> None:
    text = SMALL_CATALOG + "g6.xlarge,L4,1.0,4,16,free,,us-east-1,use1-az3\n,A100,1,,,1.7,1.2,us-east-1,use1-az1\n"
    result = ok(_import(client, admin, text))
    assert [s["line"] for s in result["skipped"]] == [6, 7]
    assert "free" in result["skipped"][0]["reason"]


@pytest.mark.parametrize(
    ("text", "status", "needle"),
    [
        ("Region,Price\nus-east-1,1\n", 422, "InstanceType"),
        (SMALL_CATALOG.replace("us-east-1", "mars-1"), 422, "no rows for region"),
    ],
)
def test_catalog_import_rejects_unusable_files(
    client: TestClient, admin: dict[str, str], text: str, status: int, needle: str
) -> None:
    response = _import(client, admin, text)
    assert response.status_code == status and needle in response.json()["detail"]
    assert ok(client.get("/v1/clusters/aws-use1/pools", headers=admin)) == []  # nothing half-imported


def test_catalog_import_needs_csv_content_type(client: TestClient, admin: dict[str, str]) -> None:
    response = client.post("/v1/clusters/aws-use1/pools/import", json={"rows": []}, headers=admin)
    assert response.status_code == 415


def test_pools_and_clusters(client: TestClient, admin: dict[str, str]) -> None:
    pool = ok(client.post("/v1/clusters/aws-use1/pools", json={
        "instance_type": "p5.48xlarge", "accelerator": "H100", "gpus_per_instance": 8, "market": "spot",
        "price_per_hour": 40.5, "max_instances": 2}, headers=admin), 201)
    assert pool["name"] == "p5.48xlarge/spot"
    duplicate = client.post("/v1/clusters/aws-use1/pools", json={
        "instance_type": "p5.48xlarge", "accelerator": "H100", "gpus_per_instance": 8, "market": "spot",
        "price_per_hour": 41}, headers=admin)
    assert duplicate.status_code == 409
    bad = client.post("/v1/clusters/aws-use1/pools", json={
        "instance_type": "x", "accelerator": "H100", "gpus_per_instance": 8, "market": "reserved",
        "price_per_hour": 1}, headers=admin)
    assert bad.status_code == 422 and bad.json()["errors"][0]["field"] == "market"
    cluster = ok(client.get("/v1/clusters/aws-use1", headers=admin))
    assert cluster["pools"] == 1 and cluster["health"] == "unknown"
    assert client.post("/v1/clusters", json={"name": "aws-use1", "cloud": "aws", "region": "us-east-1"},
                       headers=admin).status_code == 409
    assert client.get("/v1/clusters/nowhere", headers=admin).status_code == 404
