"""Read-only queries behind cost accounting and the control plane's registry-backed metrics.

Each function returns plain rows (no ORM objects escape), so callers can close the session at once.
`team=None` means the whole fleet (an admin's view); otherwise only that team's deployments.
"""

from __future__ import annotations

from dataclasses import dataclass
from datetime import datetime
from typing import Any, TypeVar

from sqlalchemy import Select, select
from sqlalchemy.orm import Session, joinedload

from registry.clusters import Cluster
from registry.deployments import Deployment
from registry.plans import Plan
from registry.replicas import Replica, ReplicaStatus
from registry.routing import RoutingState

# Replicas that hold GPUs: the pool bills them from provisioning until they are gone.
_T = TypeVar("_T", bound=tuple[Any, ...])

BILLED = frozenset({ReplicaStatus.PROVISIONING, ReplicaStatus.STARTING, ReplicaStatus.READY, ReplicaStatus.DRAINING})


@dataclass(frozen=True, slots=True)
class BilledReplicaRow:
    name: str
    deployment: str
    team: str
    version: str
    variant: str
    cluster: str
    cloud: str
    region: str
    accelerator: str
    market: str
    tensor_parallel: int
    gpus_per_instance: int
    instance_price_per_hour: float
    status: ReplicaStatus
    endpoint: str | None
    restarts: int
    # The latest telemetry window, if any (the caller decides whether it is fresh enough to trust).
    telemetry_received_at: datetime | None = None
    tokens_per_second: float = 0.0
    ttft_p95_ms: float | None = None
    tpot_p95_ms: float | None = None


@dataclass(frozen=True, slots=True)
class DeploymentTermsRow:
    name: str
    team: str
    version: str
    ttft_p95_ms: float
    tpot_p95_ms: float
    budget_usd_per_hour: float | None


@dataclass(frozen=True, slots=True)
class ClusterContactRow:
    name: str
    cloud: str
    region: str
    health: str
    last_heartbeat_at: datetime | None
    created_at: datetime


@dataclass(frozen=True, slots=True)
class PlanRow:
    deployment: str
    team: str
    status: str
    cost_per_hour: float | None
    lower_bound_per_hour: float | None
    solve_seconds: float


def _team_filter(query: Select[_T], team: str | None) -> Select[_T]:
    return query if team is None else query.where(Deployment.team == team)


def billed_replicas(session: Session, team: str | None = None) -> list[BilledReplicaRow]:
    """Every replica holding GPUs now, with its pool, place and latest telemetry."""
    query = (
        select(Replica)
        .join(Deployment, Replica.deployment_id == Deployment.id)
        .where(Replica.terminated_at.is_(None), Replica.failed_at.is_(None), Replica.preempted_at.is_(None))
        .options(joinedload(Replica.cluster), joinedload(Replica.pool), joinedload(Replica.deployment),
                 joinedload(Replica.model_version), joinedload(Replica.telemetry))
        .order_by(Replica.id)
    )
    rows: list[BilledReplicaRow] = []
    for replica in session.scalars(_team_filter(query, team)).unique():
        status = replica.status
        if status not in BILLED:
            continue
        telemetry = replica.telemetry
        rows.append(BilledReplicaRow(
            name=replica.name, deployment=replica.deployment.name, team=replica.deployment.team,
            version=replica.model_version.version, variant=replica.variant, cluster=replica.cluster.name,
            cloud=replica.cluster.cloud, region=replica.cluster.region, accelerator=replica.pool.accelerator,
            market=replica.pool.market.value, tensor_parallel=replica.tensor_parallel,
            gpus_per_instance=replica.pool.gpus_per_instance, instance_price_per_hour=replica.pool.price_per_hour,
            status=status, endpoint=replica.endpoint, restarts=replica.restarts,
            telemetry_received_at=telemetry.received_at if telemetry is not None else None,
            tokens_per_second=(telemetry.prompt_tokens_per_s + telemetry.generation_tokens_per_s)
            if telemetry is not None else 0.0,
            ttft_p95_ms=telemetry.ttft_p95_ms if telemetry is not None else None,
            tpot_p95_ms=telemetry.tpot_p95_ms if telemetry is not None else None,
        ))
    return rows


def deployment_terms(session: Session, team: str | None = None) -> list[DeploymentTermsRow]:
    query = select(Deployment).options(joinedload(Deployment.model_version)).order_by(Deployment.name)
    return [
        DeploymentTermsRow(name=d.name, team=d.team, version=d.model_version.version, ttft_p95_ms=d.ttft_p95_ms,
                           tpot_p95_ms=d.tpot_p95_ms, budget_usd_per_hour=d.budget_per_hour)
        for d in session.scalars(_team_filter(query, team))
    ]


def cluster_contacts(session: Session) -> list[ClusterContactRow]:
    return [
        ClusterContactRow(name=c.name, cloud=c.cloud, region=c.region, health=c.health.value,
                          last_heartbeat_at=c.last_heartbeat_at, created_at=c.created_at)
        for c in session.scalars(select(Cluster).order_by(Cluster.name))
    ]


def latest_plans(session: Session) -> list[PlanRow]:
    """The newest plan of each deployment that has one."""
    newest = select(Plan.deployment_id, Plan.id).order_by(Plan.deployment_id, Plan.id.desc())
    latest: dict[int, int] = {}
    for deployment_id, plan_id in session.execute(newest.where(Plan.deployment_id.is_not(None))):
        latest.setdefault(deployment_id, plan_id)
    if not latest:
        return []
    query = (
        select(Plan, Deployment.name, Deployment.team)
        .join(Deployment, Plan.deployment_id == Deployment.id)
        .where(Plan.id.in_(sorted(latest.values())))
        .order_by(Deployment.name)
    )
    return [
        PlanRow(deployment=name, team=team, status=plan.status, cost_per_hour=plan.cost_per_hour,
                lower_bound_per_hour=plan.lower_bound_per_hour, solve_seconds=plan.solve_seconds)
        for plan, name, team in session.execute(query)
    ]


def version_arms(session: Session, team: str | None = None) -> dict[tuple[str, str], str]:
    """(deployment, version) -> the arm label the gateways give that version's traffic: an experiment arm's
    name, or `baseline` / `canary` while a split between versions is published."""
    query = select(RoutingState, Deployment).join(Deployment, RoutingState.deployment_id == Deployment.id)
    query = query.options(joinedload(Deployment.model_version))
    arms: dict[tuple[str, str], str] = {}
    for state, deployment in session.execute(_team_filter(query, team)):
        experiment = state.experiment or {}
        if experiment.get("arms"):
            for arm in experiment["arms"]:
                arms[(deployment.name, str(arm["version"]))] = str(arm["name"])
            continue
        weights = state.version_weights or {}
        if len(weights) > 1:
            own = deployment.model_version.version
            for version in weights:
                arms[(deployment.name, version)] = "baseline" if version == own else "canary"
    return arms
