"""What the fleet costs: $/h grouped by deployment, team, region, accelerator or market, and one deployment's
cost per token and goodput per dollar. Numbers match the `llmfleet_cost_*` Prometheus series."""

from __future__ import annotations

from typing import Annotated

from fastapi import APIRouter, Query

from control_plane.deps import Reader, SessionDep
from control_plane.observability.costs import load_inputs, to_billed, to_terms
from control_plane.params import DeploymentName
from control_plane.schemas.costs import CostItem, DeploymentCostPublic, FleetCost
from registry import costs as registry_costs
from registry import deployments as registry
from registry.base import utcnow
from scheduler.cost_accounting import GroupBy, deployment_cost, group_costs, total_usd_per_hour

router = APIRouter(tags=["costs"])


@router.get("/v1/costs")
def fleet_cost(
    session: SessionDep,
    principal: Reader,
    group_by: Annotated[GroupBy, Query(description="what to group the hourly cost by")] = GroupBy.DEPLOYMENT,
) -> FleetCost:
    """Hourly cost of the replicas holding GPUs now. An admin key sees the whole fleet; any other key only
    its team's deployments."""
    now = utcnow()
    inputs = load_inputs(session, team=None if principal.is_admin else principal.team, now=now)
    return FleetCost(
        as_of=now, group_by=group_by, total_usd_per_hour=total_usd_per_hour(inputs.replicas),
        items=[CostItem.of(g) for g in group_costs(inputs.replicas, group_by)],
    )


@router.get("/v1/deployments/{name}/cost")
def get_deployment_cost(name: DeploymentName, session: SessionDep, principal: Reader) -> DeploymentCostPublic:
    row = registry.get_deployment(session, principal.team, name)  # 404 for another team's deployment
    now = utcnow()
    terms = next(t for t in registry_costs.deployment_terms(session, row.team) if t.name == row.name)
    replicas = [to_billed(r, now) for r in registry_costs.billed_replicas(session, row.team)]
    return DeploymentCostPublic.of(deployment_cost(row.name, replicas, to_terms(terms)))
