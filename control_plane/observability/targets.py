"""`GET /v1/prometheus/targets`: the registry's scrape targets in Prometheus' http_sd format.

Every replica that holds GPUs and has reported an endpoint, labelled with where it runs and what it serves,
so every `vllm:*` series can be grouped by deployment, version, arm, cluster, region, accelerator and market
without joins. Prometheus polls this (http_sd_configs); nothing has to keep a file current.
"""

from __future__ import annotations

from urllib.parse import urlsplit

from fastapi import APIRouter
from pydantic import BaseModel

from control_plane.deps import Reader, SessionDep
from registry import costs as registry

router = APIRouter(prefix="/v1/prometheus", tags=["observability"])


class TargetGroup(BaseModel):
    targets: list[str]
    labels: dict[str, str]


def replica_target(row: registry.BilledReplicaRow, arm: str | None) -> TargetGroup | None:
    """None when the endpoint is missing or not an http(s) URL with a host."""
    if row.endpoint is None:
        return None
    url = urlsplit(row.endpoint)
    if url.scheme not in ("http", "https") or not url.hostname:
        return None
    port = url.port or (443 if url.scheme == "https" else 80)
    host = f"[{url.hostname}]" if ":" in url.hostname else url.hostname
    labels = {
        "__scheme__": url.scheme, "__metrics_path__": url.path.rstrip("/") + "/metrics",
        "component": "replica", "replica": row.name, "deployment": row.deployment, "team": row.team,
        "version": row.version, "variant": row.variant, "cluster": row.cluster, "cloud": row.cloud,
        "region": row.region, "accelerator": row.accelerator, "market": row.market,
    }
    if arm is not None:
        labels["arm"] = arm
    return TargetGroup(targets=[f"{host}:{port}"], labels=labels)


@router.get("/targets", response_model=list[TargetGroup])
def prometheus_targets(session: SessionDep, principal: Reader) -> list[TargetGroup]:
    """An admin key lists the whole fleet; any other key only its team's replicas."""
    team = None if principal.is_admin else principal.team
    arms = registry.version_arms(session, team)
    groups = (replica_target(r, arms.get((r.deployment, r.version))) for r in registry.billed_replicas(session, team))
    return [g for g in groups if g is not None]
