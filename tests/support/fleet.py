"""Builders for API request bodies and a small populated fleet, shared by the API tests."""

from __future__ import annotations

from typing import Any

from fastapi.testclient import TestClient

ARCH_8B = {"params_b": 8.03, "layers": 32, "hidden": 4096, "kv_heads": 8, "head_dim": 128, "context": 131072}
SMALL_CATALOG = """InstanceType,AcceleratorName,AcceleratorCount,vCPUs,MemoryGiB,Price,SpotPrice,Region,AvailabilityZone
g6.xlarge,L4,1.0,4.0,16.0,0.8048,0.3101,us-east-1,use1-az1
g6.xlarge,L4,1.0,4.0,16.0,0.8048,0.2899,us-east-1,use1-az2
p5.4xlarge,H100,1.0,16.0,256.0,6.88,,us-east-1,use1-az1
g6.xlarge,L4,1.0,4.0,16.0,0.9776,0.4,eu-central-1,euc1-az1
"""


def version_body(version: str = "v1", **overrides: Any) -> dict[str, Any]:
    body: dict[str, Any] = {
        "version": version,
        "artifact_uri": "s3://models/llama-3.1-8b/" + version,
        "digest": "sha256:" + ("ab" * 32),
        "architecture": dict(ARCH_8B),
        "variants": [
            {"name": "bf16", "bytes_per_param": 2.0},
            {"name": "fp8", "bytes_per_param": 1.0, "quality_delta": 0.01},
        ],
    }
    body.update(overrides)
    return body


def deployment_body(name: str = "chat", **overrides: Any) -> dict[str, Any]:
    body: dict[str, Any] = {
        "name": name,
        "model": "llama-3.1-8b",
        "version": "v1",
        "slo": {"ttft_p95_ms": 500, "tpot_p95_ms": 50},
        "demand": [{"client_region": "us-east-1", "rps": 20, "prompt_tokens": 1000, "output_tokens": 200}],
    }
    body.update(overrides)
    return body


def ok(response: Any, status: int = 200) -> Any:
    assert response.status_code == status, response.text
    return response.json() if response.content else None


def populate(client: TestClient, admin: dict[str, str], team: dict[str, str]) -> None:
    """Two clusters with pools (admin) and a model with one version (the team)."""
    for name, region in (("aws-use1", "us-east-1"), ("aws-euc1", "eu-central-1")):
        ok(client.post("/v1/clusters", json={"name": name, "cloud": "aws", "region": region}, headers=admin), 201)
        ok(client.post(f"/v1/clusters/{name}/pools/import", content=SMALL_CATALOG,
                       headers={**admin, "Content-Type": "text/csv"}))
    ok(client.post("/v1/models", json={"name": "llama-3.1-8b"}, headers=team), 201)
    ok(client.post("/v1/models/llama-3.1-8b/versions", json=version_body(), headers=team), 201)
