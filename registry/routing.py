"""The routing table: per deployment, which cluster serves which client region, and which versions get traffic.

Writers (the DeployWorkflow, FailoverWorkflow and RolloutWorkflow, or an operator) call `publish_routing`
and `set_version_weights` (and `set_experiment` for A/B tests); each bumps the deployment's routing
generation and writes an audit event in the same transaction. Readers (the API behind every regional
gateway) call `routing_table`, which joins what was published with the replicas ready right now. When
nothing was published, `default_shares` spreads each client region over the clusters with ready replicas,
preferring the client's own region.
"""

from __future__ import annotations

import math
from collections import defaultdict
from dataclasses import dataclass, field
from datetime import datetime
from typing import Any

from sqlalchemy import Float, ForeignKey, Integer, String, UniqueConstraint, select
from sqlalchemy.orm import Mapped, Session, mapped_column, relationship, selectinload

from registry import audit
from registry.api_keys import ApiKey, Scope, effective_scopes
from registry.base import Base, utcnow
from registry.clusters import Cluster
from registry.deployments import Deployment, DeploymentPhase
from registry.errors import Invalid
from registry.model_versions import Model, find_version
from registry.replicas import Replica, ReplicaStatus

SHARE_TOLERANCE = 1e-6
WEIGHT_TOLERANCE = 1e-6


@dataclass(frozen=True)
class RouteShare:
    client_region: str
    cluster: str
    share: float


@dataclass(frozen=True)
class ExperimentArm:
    """One arm of an A/B experiment: `percent` of users (by hashed user id) go to `version`."""

    name: str
    version: str
    percent: float


class RoutingState(Base):
    """One row per deployment that has ever had routing published: its generation and traffic split."""

    __tablename__ = "routing_states"

    deployment_id: Mapped[int] = mapped_column(ForeignKey("deployments.id", ondelete="CASCADE"), primary_key=True)
    generation: Mapped[int] = mapped_column(Integer, default=0)
    # version string -> percent (sums to 100); empty means 100% on the deployment's version.
    version_weights: Mapped[dict[str, Any]] = mapped_column(default=dict)
    # {"name": str, "arms": [{"name", "version", "percent"}]} or empty: no A/B experiment running.
    experiment: Mapped[dict[str, Any]] = mapped_column(default=dict)
    shares_published: Mapped[int] = mapped_column(Integer, default=0)  # 0/1: were shares ever published
    updated_at: Mapped[datetime] = mapped_column(default=utcnow)
    updated_by: Mapped[str] = mapped_column(String(128), default="")

    shares: Mapped[list[RoutingShare]] = relationship(
        cascade="all, delete-orphan", passive_deletes=True, order_by="RoutingShare.id"
    )


class RoutingShare(Base):
    __tablename__ = "routing_shares"
    __table_args__ = (UniqueConstraint("deployment_id", "client_region", "cluster_id"),)

    id: Mapped[int] = mapped_column(primary_key=True)
    deployment_id: Mapped[int] = mapped_column(
        ForeignKey("routing_states.deployment_id", ondelete="CASCADE"), index=True
    )
    client_region: Mapped[str] = mapped_column(String(64))
    cluster_id: Mapped[int] = mapped_column(ForeignKey("clusters.id", ondelete="CASCADE"))
    share: Mapped[float] = mapped_column(Float)

    cluster: Mapped[Cluster] = relationship()


# ---- writers --------------------------------------------------------------------------------------


def _state_for_update(session: Session, deployment: Deployment) -> RoutingState:
    state = session.get(RoutingState, deployment.id, with_for_update=True)
    if state is None:
        state = RoutingState(deployment_id=deployment.id, generation=0, version_weights={}, experiment={},
                             shares_published=0, updated_at=utcnow(), updated_by="")
        session.add(state)
        session.flush()
    return state


def _bump(state: RoutingState, actor: str) -> int:
    state.generation += 1
    state.updated_at = utcnow()
    state.updated_by = actor[:128]
    return state.generation


def _check_writable(deployment: Deployment) -> None:
    if deployment.phase is DeploymentPhase.DELETING:
        raise Invalid(f"deployment {deployment.name!r} is being deleted", field="deployment")


def validate_shares(shares: list[RouteShare], known_clusters: set[str]) -> dict[str, dict[str, float]]:
    """Shares by client region, each region summing to 1; raises Invalid naming the first problem."""
    by_region: dict[str, dict[str, float]] = defaultdict(dict)
    for i, item in enumerate(shares):
        where = f"shares[{i}]"
        if item.cluster not in known_clusters:
            raise Invalid(f"cluster {item.cluster!r} not found", field=f"{where}.cluster")
        if not item.client_region:
            raise Invalid("client_region must not be empty", field=f"{where}.client_region")
        if not math.isfinite(item.share) or item.share < 0 or item.share > 1:
            raise Invalid("share must be within [0, 1]", field=f"{where}.share")
        if item.cluster in by_region[item.client_region]:
            raise Invalid(f"cluster {item.cluster!r} appears twice for {item.client_region!r}", field=where)
        by_region[item.client_region][item.cluster] = item.share
    for region, split in by_region.items():
        total = sum(split.values())
        if abs(total - 1.0) > SHARE_TOLERANCE * max(1, len(split)):
            raise Invalid(f"shares for client region {region!r} sum to {total:.6f}, not 1", field="shares")
    return dict(by_region)


def publish_routing(session: Session, *, deployment: Deployment, shares: list[RouteShare], actor: str) -> int:
    """Replace the deployment's shares (client region -> cluster); returns the new routing generation.

    An empty list goes back to the default (spread over ready capacity). Zero shares are dropped.
    """
    _check_writable(deployment)
    clusters = {c.name: c for c in session.scalars(select(Cluster))}
    by_region = validate_shares(shares, set(clusters))
    state = _state_for_update(session, deployment)
    state.shares.clear()
    session.flush()
    for region in sorted(by_region):
        for cluster_name, share in sorted(by_region[region].items()):
            if share > 0:
                state.shares.append(RoutingShare(client_region=region, cluster_id=clusters[cluster_name].id,
                                                 share=share))
    state.shares_published = 1 if by_region else 0
    generation = _bump(state, actor)
    session.flush()
    audit.record(
        session, team=deployment.team, actor=actor, action="publish_routing", object_type="deployment",
        object_id=deployment.name,
        details={"generation": generation,
                 "shares": [{"client_region": s.client_region, "cluster": s.cluster, "share": s.share}
                            for s in shares]},
    )
    return generation


def _check_versions(session: Session, deployment: Deployment, versions: list[str], field_name: str) -> None:
    model = session.get(Model, deployment.model_id)
    assert model is not None  # a deployment always references its model
    missing = [v for v in versions if find_version(model, v) is None]
    if missing:
        raise Invalid(f"model {model.name!r} has no version(s) {', '.join(missing)}", field=field_name)


def set_version_weights(session: Session, *, deployment: Deployment, weights: dict[str, float], actor: str) -> int:
    """Version -> percent (summing to 100) for canary and blue-green moves; returns the routing generation.

    An empty dict means 100% on the deployment's own version.
    """
    _check_writable(deployment)
    for version, percent in weights.items():
        if not math.isfinite(percent) or percent < 0 or percent > 100:
            raise Invalid(f"weight of {version!r} must be within [0, 100]", field="weights")
    if weights and abs(sum(weights.values()) - 100.0) > WEIGHT_TOLERANCE * 100:
        raise Invalid(f"weights sum to {sum(weights.values()):.6f}, not 100", field="weights")
    _check_versions(session, deployment, list(weights), "weights")
    state = _state_for_update(session, deployment)
    state.version_weights = {v: float(p) for v, p in sorted(weights.items()) if p > 0}
    generation = _bump(state, actor)
    session.flush()
    audit.record(
        session, team=deployment.team, actor=actor, action="set_version_weights", object_type="deployment",
        object_id=deployment.name, details={"generation": generation, "weights": dict(weights)},
    )
    return generation


def set_experiment(
    session: Session, *, deployment: Deployment, name: str | None, arms: list[ExperimentArm], actor: str
) -> int:
    """Start (or replace) an A/B experiment; `name=None` ends it. While it runs, users are split by arm
    (hashed user id) instead of by version weights. Returns the routing generation."""
    _check_writable(deployment)
    if name is not None:
        if len(arms) < 2:
            raise Invalid("an experiment needs at least two arms", field="arms")
        if len({a.name for a in arms}) != len(arms):
            raise Invalid("arm names must be unique", field="arms")
        if any(not math.isfinite(a.percent) or a.percent < 0 for a in arms):
            raise Invalid("arm percents must be >= 0", field="arms")
        if abs(sum(a.percent for a in arms) - 100.0) > WEIGHT_TOLERANCE * 100:
            raise Invalid("arm percents must sum to 100", field="arms")
        _check_versions(session, deployment, [a.version for a in arms], "arms")
    state = _state_for_update(session, deployment)
    state.experiment = (
        {"name": name, "arms": [{"name": a.name, "version": a.version, "percent": a.percent} for a in arms]}
        if name is not None else {}
    )
    generation = _bump(state, actor)
    session.flush()
    audit.record(
        session, team=deployment.team, actor=actor, action="set_experiment", object_type="deployment",
        object_id=deployment.name, details={"generation": generation, "experiment": state.experiment},
    )
    return generation


# ---- readers --------------------------------------------------------------------------------------


@dataclass(frozen=True, slots=True)
class ReadyReplica:
    name: str
    endpoint: str
    cluster: str
    region: str
    version: str
    variant: str
    capacity_weight: float


@dataclass(slots=True)
class DeploymentRoute:
    name: str
    team: str
    model: str
    version: str  # the deployment's own version (the baseline)
    aliases: dict[str, str]  # alias -> version, so a client may ask for `deployment@alias`
    generation: int
    version_weights: dict[str, float]
    experiment: dict[str, Any]
    shares: dict[str, dict[str, float]]  # client region -> cluster -> share
    shares_published: bool
    replicas: list[ReadyReplica] = field(default_factory=list)


@dataclass(frozen=True, slots=True)
class GatewayKey:
    """What a gateway needs to check a key locally: never the secret, only its SHA-256 hash."""

    key_id: str
    key_hash: str
    team: str
    scopes: list[str]
    requests_per_minute: int | None = None  # None: the gateway's default limit
    tokens_per_minute: int | None = None


@dataclass(slots=True)
class RoutingTable:
    generation: int  # sum of per-deployment generations: moves whenever any publish happens
    deployments: list[DeploymentRoute]
    keys: list[GatewayKey]


def capacity_weight(replica: Replica) -> float:
    # GPUs behind the replica are the best capacity proxy the registry holds without a per-pool profile;
    # the gateway combines it with its own outstanding-request counts.
    return float(max(1, replica.tensor_parallel))


def default_shares(ready_by_cluster: dict[str, tuple[str, int]], client_regions: set[str]) -> dict[str, dict[str, float]]:
    """For each client region: its own region's clusters with ready replicas, by replica count; if none,
    every cluster with ready replicas. `ready_by_cluster` maps cluster -> (region, ready replicas)."""
    result: dict[str, dict[str, float]] = {}
    regions = set(client_regions) | {region for region, _ in ready_by_cluster.values()}
    for client in sorted(regions):
        local = {c: n for c, (r, n) in ready_by_cluster.items() if r == client and n > 0}
        pool = local or {c: n for c, (_, n) in ready_by_cluster.items() if n > 0}
        total = sum(pool.values())
        if total:
            result[client] = {c: n / total for c, n in sorted(pool.items())}
    return result


def _is_routable(replica: Replica) -> bool:
    # Ready only: a draining replica finishes what it has but must never get new requests.
    return replica.status is ReplicaStatus.READY and replica.endpoint is not None


def routing_for(session: Session, deployment: Deployment, state: RoutingState | None) -> DeploymentRoute:
    replicas = session.scalars(
        select(Replica)
        .where(Replica.deployment_id == deployment.id)
        .options(selectinload(Replica.cluster), selectinload(Replica.model_version))
        .order_by(Replica.name)
    )
    ready = [
        ReadyReplica(name=r.name, endpoint=r.endpoint or "", cluster=r.cluster.name, region=r.cluster.region,
                     version=r.model_version.version, variant=r.variant, capacity_weight=capacity_weight(r))
        for r in replicas if _is_routable(r)
    ]
    published = state is not None and bool(state.shares_published)
    if published:
        assert state is not None
        shares: dict[str, dict[str, float]] = defaultdict(dict)
        for row in state.shares:
            shares[row.client_region][row.cluster.name] = row.share
        share_map = dict(shares)
    else:
        counts: dict[str, tuple[str, int]] = {}
        for replica in ready:
            region, n = counts.get(replica.cluster, (replica.region, 0))
            counts[replica.cluster] = (region, n + 1)
        share_map = default_shares(counts, {d["client_region"] for d in deployment.demand})
    version = deployment.model_version.version
    weights = dict(state.version_weights) if state is not None and state.version_weights else {version: 100.0}
    model = deployment.model
    return DeploymentRoute(
        name=deployment.name, team=deployment.team, model=model.name, version=version,
        aliases={a.alias: a.version.version for a in model.aliases},
        generation=state.generation if state is not None else 0,
        version_weights=weights, experiment=dict(state.experiment) if state is not None else {},
        shares=share_map, shares_published=published, replicas=ready,
    )


def routing_of(session: Session, deployment: Deployment) -> DeploymentRoute:
    """One deployment's routing as the gateways see it (for workflows and the API)."""
    state = session.get(RoutingState, deployment.id)
    return routing_for(session, deployment, state)


def gateway_keys(session: Session) -> list[GatewayKey]:
    """Live team keys (agent keys never call models). The hash is of a 256-bit secret: not reversible."""
    rows = session.scalars(select(ApiKey).where(ApiKey.revoked_at.is_(None)).order_by(ApiKey.id))
    return [
        GatewayKey(key_id=r.key_id, key_hash=r.key_hash, team=r.team,
                   scopes=sorted(s.value for s in effective_scopes(r.scopes)),
                   requests_per_minute=r.requests_per_minute, tokens_per_minute=r.tokens_per_minute)
        for r in rows if Scope.AGENT not in effective_scopes(r.scopes)
    ]


def routing_table(session: Session) -> RoutingTable:
    """Every deployment's routing, ready replicas and the live keys, in one consistent read."""
    deployments = list(session.scalars(
        select(Deployment)
        .where(Deployment.phase == DeploymentPhase.ACTIVE)
        .options(selectinload(Deployment.model).selectinload(Model.aliases),
                 selectinload(Deployment.model_version))
        .order_by(Deployment.name)
    ))
    states = {
        s.deployment_id: s
        for s in session.scalars(select(RoutingState).options(
            selectinload(RoutingState.shares).selectinload(RoutingShare.cluster)))
    }
    routes = [routing_for(session, d, states.get(d.id)) for d in deployments]
    return RoutingTable(
        generation=sum(s.generation for s in states.values()), deployments=routes, keys=gateway_keys(session)
    )

