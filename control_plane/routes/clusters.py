"""Clusters and pools: readable by every team, changed only by admins."""

from __future__ import annotations

from typing import Annotated

from fastapi import APIRouter, Query, Request, status

from control_plane.deps import Admin, Reader, SessionDep, StateDep
from control_plane.params import ClusterName
from control_plane.problems import ProblemException
from control_plane.schemas.clusters import (
    CatalogImportResult,
    ClusterCreate,
    ClusterPublic,
    PoolCreate,
    PoolPublic,
    SkippedRowPublic,
)
from registry import catalog
from registry import clusters as registry

router = APIRouter(prefix="/v1/clusters", tags=["clusters"])

_CSV_BODY = {
    "requestBody": {
        "required": True,
        "content": {"text/csv": {"schema": {"type": "string", "description": "SkyPilot vms.csv rows"}}},
    }
}


@router.post("", status_code=status.HTTP_201_CREATED)
def create_cluster(body: ClusterCreate, session: SessionDep, principal: Admin) -> ClusterPublic:
    row = registry.create_cluster(
        session, team=principal.team, actor=principal.actor, name=body.name, cloud=body.cloud,
        region=body.region, zone=body.zone,
    )
    return ClusterPublic.of(row)


@router.get("")
def list_clusters(session: SessionDep, principal: Reader) -> list[ClusterPublic]:
    return [ClusterPublic.of(c) for c in registry.list_clusters(session)]


@router.get("/{cluster}")
def get_cluster(cluster: ClusterName, session: SessionDep, principal: Reader) -> ClusterPublic:
    return ClusterPublic.of(registry.get_cluster(session, cluster))


@router.get("/{cluster}/pools")
def list_pools(cluster: ClusterName, session: SessionDep, principal: Reader) -> list[PoolPublic]:
    return [PoolPublic.of(p) for p in registry.get_cluster(session, cluster).pools]


@router.post("/{cluster}/pools", status_code=status.HTTP_201_CREATED)
def add_pool(cluster: ClusterName, body: PoolCreate, session: SessionDep, principal: Admin) -> PoolPublic:
    spec = registry.PoolSpec(**body.model_dump())
    row = registry.add_pool(session, team=principal.team, actor=principal.actor, cluster_name=cluster, spec=spec)
    return PoolPublic.of(row)


@router.post("/{cluster}/pools/import", openapi_extra=_CSV_BODY)
async def import_catalog(
    cluster: ClusterName,
    request: Request,
    session: SessionDep,
    principal: Admin,
    state: StateDep,
    max_instances: Annotated[int | None, Query(ge=0, le=100_000, description="quota for new pools")] = None,
) -> CatalogImportResult:
    """Create or update the cluster's pools from a price catalog in SkyPilot's vms.csv format."""
    content_type = request.headers.get("content-type", "").split(";")[0].strip()
    if content_type not in ("text/csv", "text/plain"):
        raise ProblemException(415, "send the catalog as text/csv")
    raw = await request.body()
    if len(raw) > state.settings.max_request_bytes:
        raise ProblemException(413, "catalog larger than the request size limit")
    try:
        text = raw.decode("utf-8-sig")
    except UnicodeDecodeError:
        raise ProblemException(422, "catalog is not UTF-8 text", kind="validation-error") from None
    if "\x00" in text:
        raise ProblemException(422, "catalog contains NUL bytes", kind="validation-error")
    row = registry.get_cluster(session, cluster)
    created, updated, skipped = catalog.import_catalog(
        session, team=principal.team, actor=principal.actor, cluster=row, text=text, max_instances=max_instances
    )
    return CatalogImportResult(
        cluster=row.name,
        created=created,
        updated=updated,
        skipped=[SkippedRowPublic(line=s.line, reason=s.reason) for s in skipped],
        pools=[PoolPublic.of(p) for p in row.pools],
    )
