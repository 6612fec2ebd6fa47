"""Model registry through the API: versions are immutable, aliases unique per model, promotion in order."""

from __future__ import annotations

import pytest
from fastapi.testclient import TestClient

from tests.conftest import KeyMaker, bearer
from tests.support.fleet import ok, version_body


@pytest.fixture
def team(client: TestClient, make_key: KeyMaker) -> dict[str, str]:
    headers = bearer(make_key())
    ok(client.post("/v1/models", json={"name": "llama-3.1-8b", "description": "8B"}, headers=headers), 201)
    return headers


def test_register_and_read_a_version(client: TestClient, team: dict[str, str]) -> None:
    created = ok(client.post("/v1/models/llama-3.1-8b/versions", json=version_body(), headers=team), 201)
    assert created["environments"] == ["dev"]
    assert [v["name"] for v in created["variants"]] == ["bf16", "fp8"]
    got = ok(client.get("/v1/models/llama-3.1-8b/versions/v1", headers=team))
    assert got["architecture"]["layers"] == 32 and got["digest"] == created["digest"]
    model = ok(client.get("/v1/models/llama-3.1-8b", headers=team))
    assert model["versions"] == ["v1"] and model["description"] == "8B"


def test_versions_are_immutable(client: TestClient, team: dict[str, str]) -> None:
    ok(client.post("/v1/models/llama-3.1-8b/versions", json=version_body(), headers=team), 201)
    again = client.post("/v1/models/llama-3.1-8b/versions",
                        json=version_body(artifact_uri="s3://other/place"), headers=team)
    assert again.status_code == 409 and "immutable" in again.json()["detail"]
    # No route changes a version in place.
    for method in ("PUT", "PATCH"):
        response = client.request(method, "/v1/models/llama-3.1-8b/versions/v1", json={"digest": "x"}, headers=team)
        assert response.status_code == 405
    assert ok(client.get("/v1/models/llama-3.1-8b/versions/v1", headers=team))["artifact_uri"].endswith("/v1")


def test_parent_version_must_exist(client: TestClient, team: dict[str, str]) -> None:
    response = client.post("/v1/models/llama-3.1-8b/versions", json=version_body(parent_version="v0"), headers=team)
    assert response.status_code == 422 and response.json()["errors"][0]["field"] == "parent_version"
    ok(client.post("/v1/models/llama-3.1-8b/versions", json=version_body("v1"), headers=team), 201)
    child = ok(client.post("/v1/models/llama-3.1-8b/versions", json=version_body("v2", parent_version="v1"),
                           headers=team), 201)
    assert child["parent_version"] == "v1"


@pytest.mark.parametrize(
    ("change", "field"),
    [
        ({"digest": "md5"}, "digest"),
        ({"artifact_uri": "not a uri"}, "artifact_uri"),
        ({"variants": []}, "variants"),
        ({"variants": [{"name": "bf16", "bytes_per_param": 2}, {"name": "bf16", "bytes_per_param": 1}]}, ""),
        ({"variants": [{"name": "bf16", "bytes_per_param": 0}]}, "variants.0.bytes_per_param"),
        ({"architecture": {"params_b": 8, "layers": 0, "hidden": 1, "kv_heads": 1, "head_dim": 1, "context": 1}},
         "architecture.layers"),
        ({"version": "has space"}, "version"),
        ({"surprise": 1}, "surprise"),
    ],
)
def test_version_validation_errors(client: TestClient, team: dict[str, str], change: dict, field: str) -> None:  # type: ignore[type-arg]
    response = client.post("/v1/models/llama-3.1-8b/versions", json=version_body(**change), headers=team)
    assert response.status_code == 422
    body = response.json()
    assert response.headers["content-type"].startswith("application/problem+json")
    assert any(e["field"] == field for e in body["errors"]), body


def test_aliases_are_unique_per_model_and_move(client: TestClient, team: dict[str, str]) -> None:
    for version in ("v1", "v2"):
        ok(client.post("/v1/models/llama-3.1-8b/versions", json=version_body(version), headers=team), 201)
    model = ok(client.put("/v1/models/llama-3.1-8b/aliases/champion", json={"version": "v1"}, headers=team))
    assert model["aliases"] == {"champion": "v1"}
    model = ok(client.put("/v1/models/llama-3.1-8b/aliases/champion", json={"version": "v2"}, headers=team))
    assert model["aliases"] == {"champion": "v2"}  # moved, not duplicated
    assert ok(client.get("/v1/models/llama-3.1-8b/versions/v2", headers=team))["aliases"] == ["champion"]
    response = client.put("/v1/models/llama-3.1-8b/aliases/canary", json={"version": "v9"}, headers=team)
    assert response.status_code == 422
    assert client.delete("/v1/models/llama-3.1-8b/aliases/champion", headers=team).status_code == 204
    assert client.delete("/v1/models/llama-3.1-8b/aliases/champion", headers=team).status_code == 404


def test_promotion_goes_dev_staging_prod(client: TestClient, team: dict[str, str]) -> None:
    ok(client.post("/v1/models/llama-3.1-8b/versions", json=version_body(), headers=team), 201)
    path = "/v1/models/llama-3.1-8b/versions/v1/promotions"
    skipped = client.post(path, json={"environment": "prod"}, headers=team)
    assert skipped.status_code == 422 and "staging" in skipped.json()["detail"]
    assert ok(client.post(path, json={"environment": "staging"}, headers=team))["environments"] == ["dev", "staging"]
    assert client.post(path, json={"environment": "staging"}, headers=team).status_code == 409
    assert ok(client.post(path, json={"environment": "prod"}, headers=team))["environments"] == [
        "dev", "staging", "prod"]


def test_variants_and_evals_are_added_to_a_version(client: TestClient, team: dict[str, str]) -> None:
    ok(client.post("/v1/models/llama-3.1-8b/versions", json=version_body(), headers=team), 201)
    base = "/v1/models/llama-3.1-8b/versions/v1"
    ok(client.post(f"{base}/variants", json={"name": "awq-int4", "bytes_per_param": 0.56, "quality_delta": 0.02},
                   headers=team), 201)
    assert client.post(f"{base}/variants", json={"name": "fp8", "bytes_per_param": 1}, headers=team).status_code == 409
    ok(client.post(f"{base}/evals", json={"dataset": "mmlu", "metric": "exact_match", "value": 0.68, "samples": 500},
                   headers=team), 201)
    version = ok(client.get(base, headers=team))
    assert [v["name"] for v in version["variants"]] == ["bf16", "fp8", "awq-int4"]
    assert version["evals"][0]["value"] == 0.68


def test_duplicate_model_is_409(client: TestClient, team: dict[str, str]) -> None:
    response = client.post("/v1/models", json={"name": "llama-3.1-8b"}, headers=team)
    assert response.status_code == 409 and response.json()["type"].endswith("/conflict")
