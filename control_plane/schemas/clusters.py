"""Schemas for clusters and pools."""

from __future__ import annotations

from datetime import datetime
from typing import Annotated

from pydantic import Field

from control_plane.schemas.common import Place, Public, Slug, Strict
from registry.clusters import Cluster, ClusterHealth, Market, Pool


class ClusterCreate(Strict):
    name: Slug
    cloud: Place
    region: Place
    zone: Place | None = None


class PoolCreate(Strict):
    name: Annotated[str, Field(pattern=r"^[A-Za-z0-9][A-Za-z0-9._/-]{0,127}$")] | None = None
    instance_type: Place
    accelerator: Place
    gpus_per_instance: Annotated[int, Field(ge=1, le=64)]
    market: Market
    zone: Place | None = None
    price_per_hour: Annotated[float, Field(gt=0, le=10_000, allow_inf_nan=False)]
    max_instances: Annotated[int, Field(ge=0, le=100_000)] | None = None


class PoolPublic(Public):
    name: str
    instance_type: str
    accelerator: str
    gpus_per_instance: int
    market: Market
    zone: str | None
    price_per_hour: float
    max_instances: int | None
    updated_at: datetime

    @classmethod
    def of(cls, row: Pool) -> PoolPublic:
        return cls.model_validate(row)


class ClusterPublic(Public):
    name: str
    cloud: str
    region: str
    zone: str | None
    health: ClusterHealth
    last_heartbeat_at: datetime | None
    pools: int
    created_at: datetime

    @classmethod
    def of(cls, row: Cluster) -> ClusterPublic:
        return cls(
            name=row.name, cloud=row.cloud, region=row.region, zone=row.zone, health=row.health,
            last_heartbeat_at=row.last_heartbeat_at, pools=len(row.pools), created_at=row.created_at,
        )


class SkippedRowPublic(Public):
    line: int
    reason: str


class CatalogImportResult(Public):
    cluster: str
    created: int
    updated: int
    skipped: list[SkippedRowPublic]
    pools: list[PoolPublic]


