"""Schemas of the cost API (see docs/observability.md for the contract the dashboard relies on)."""

from __future__ import annotations

from datetime import datetime

from control_plane.schemas.common import Public
from scheduler.cost_accounting import CostGroup, DeploymentCost, GroupBy


class CostItem(Public):
    key: str
    usd_per_hour: float
    replicas: int
    gpus: int

    @classmethod
    def of(cls, group: CostGroup) -> CostItem:
        return cls(key=group.key, usd_per_hour=group.usd_per_hour, replicas=group.replicas, gpus=group.gpus)


class FleetCost(Public):
    as_of: datetime
    group_by: GroupBy
    total_usd_per_hour: float
    items: list[CostItem]


class RegionCostPublic(Public):
    region: str
    usd_per_hour: float
    replicas: int


class DeploymentCostPublic(Public):
    deployment: str
    usd_per_hour: float
    budget_usd_per_hour: float | None
    tokens_per_second: float
    usd_per_million_tokens: float | None
    goodput_tokens_per_usd: float | None
    by_region: list[RegionCostPublic]

    @classmethod
    def of(cls, cost: DeploymentCost) -> DeploymentCostPublic:
        return cls(
            deployment=cost.deployment, usd_per_hour=cost.usd_per_hour, budget_usd_per_hour=cost.budget_usd_per_hour,
            tokens_per_second=cost.tokens_per_second, usd_per_million_tokens=cost.usd_per_million_tokens,
            goodput_tokens_per_usd=cost.goodput_tokens_per_usd,
            by_region=[RegionCostPublic(region=r.region, usd_per_hour=r.usd_per_hour, replicas=r.replicas)
                       for r in cost.by_region],
        )
