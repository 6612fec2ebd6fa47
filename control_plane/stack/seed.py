"""Demo data for an empty local registry, written through the REST API like any other client would."""

from __future__ import annotations

import hashlib
from importlib import resources
from typing import Any

import yaml

from control_plane.cli.api_client import ApiClient


def demo_fleet() -> dict[str, Any]:
    data: dict[str, Any] = yaml.safe_load(resources.files("control_plane").joinpath("data/demo_fleet.yaml").read_text())
    return data


def catalog_text(file_name: str) -> str:
    return resources.files("control_plane").joinpath(f"data/catalog/{file_name}").read_text()


def seed(api: ApiClient, *, clusters: int, with_demo_deployment: bool) -> list[str]:
    """Create what is missing (clusters with pools, models, the demo deployment); returns what was created."""
    fleet = demo_fleet()
    created: list[str] = []
    existing = {c["name"] for c in api.get("/v1/clusters")}
    catalog = catalog_text(fleet["catalog"])
    wanted = fleet["clusters"][:clusters]
    for cluster in wanted:
        if cluster["name"] not in existing:
            api.post("/v1/clusters", json=cluster)
            api.post(f"/v1/clusters/{cluster['name']}/pools/import", content=catalog.encode(),
                     params={"max_instances": fleet["pool_quota"]}, headers={"Content-Type": "text/csv"})
            created.append(f"cluster {cluster['name']}")
    models = {m["name"] for m in api.get("/v1/models")}
    for model in fleet["models"]:
        if model["name"] in models:
            continue
        api.post("/v1/models", json={"name": model["name"], "description": model["description"]})
        for version in model["versions"]:
            digest = "sha256:" + hashlib.sha256(f"{model['name']}@{version['version']}".encode()).hexdigest()
            api.post(f"/v1/models/{model['name']}/versions", json={**version, "digest": digest})
            for environment in model["promote_to"]:
                api.post(f"/v1/models/{model['name']}/versions/{version['version']}/promotions",
                         json={"environment": environment})
        for alias, version in model["aliases"].items():
            api.request("PUT", f"/v1/models/{model['name']}/aliases/{alias}", json={"version": version})
        created.append(f"model {model['name']}")
    spec = fleet["deployment"]
    deployments = {d["name"] for d in api.get("/v1/deployments")}
    if with_demo_deployment and spec["name"] not in deployments:
        per_region = spec["demand_per_region"]
        body = {k: v for k, v in spec.items() if k != "demand_per_region"}
        body["demand"] = [{"client_region": c["region"], **per_region} for c in wanted]
        api.post("/v1/deployments", json=body, headers={"Idempotency-Key": f"llmfleet-up-{spec['name']}"})
        created.append(f"deployment {spec['name']}")
    return created
