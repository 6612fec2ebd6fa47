"""Clusters (where an agent runs: one cloud region) and their GPU pools."""

from __future__ import annotations

import enum
from dataclasses import dataclass
from datetime import datetime

from sqlalchemy import Float, ForeignKey, Integer, String, UniqueConstraint, select, update
from sqlalchemy.orm import Mapped, Session, mapped_column, relationship

from registry import audit
from registry.base import Base, CreatedAtMixin, utcnow
from registry.enums import str_enum
from registry.errors import Conflict, NotFound


class Market(enum.StrEnum):
    ON_DEMAND = "on-demand"
    SPOT = "spot"


class ClusterHealth(enum.StrEnum):
    UNKNOWN = "unknown"  # registered, never heard from
    HEALTHY = "healthy"
    UNHEALTHY = "unhealthy"  # missed heartbeats or lost capacity
    CORDONED = "cordoned"  # taken out of placement by an operator


class Cluster(CreatedAtMixin, Base):
    __tablename__ = "clusters"

    id: Mapped[int] = mapped_column(primary_key=True)
    name: Mapped[str] = mapped_column(String(64), unique=True)
    cloud: Mapped[str] = mapped_column(String(32))
    region: Mapped[str] = mapped_column(String(64), index=True)
    zone: Mapped[str | None] = mapped_column(String(64), default=None)
    health: Mapped[ClusterHealth] = mapped_column(str_enum(ClusterHealth), default=ClusterHealth.UNKNOWN)
    last_heartbeat_at: Mapped[datetime | None] = mapped_column(default=None)
    agent_version: Mapped[str | None] = mapped_column(String(64), default=None)
    # Bumped whenever the set of replicas this cluster's agent should run changes; the agent reports the
    # generation it last applied. Ordering lets an agent tell a stale snapshot from a new one.
    desired_generation: Mapped[int] = mapped_column(Integer, default=0, server_default="0")
    observed_generation: Mapped[int] = mapped_column(Integer, default=0, server_default="0")

    pools: Mapped[list[Pool]] = relationship(
        back_populates="cluster", order_by="Pool.id", cascade="all, delete-orphan"
    )


class Pool(CreatedAtMixin, Base):
    """GPUs of one kind and market in a cluster; replicas are packed into its instances."""

    __tablename__ = "pools"
    __table_args__ = (UniqueConstraint("cluster_id", "name"),)

    id: Mapped[int] = mapped_column(primary_key=True)
    cluster_id: Mapped[int] = mapped_column(ForeignKey("clusters.id", ondelete="CASCADE"), index=True)
    name: Mapped[str] = mapped_column(String(128))
    instance_type: Mapped[str] = mapped_column(String(128))
    accelerator: Mapped[str] = mapped_column(String(64))
    gpus_per_instance: Mapped[int] = mapped_column(Integer)
    market: Mapped[Market] = mapped_column(str_enum(Market))
    zone: Mapped[str | None] = mapped_column(String(64), default=None)
    price_per_hour: Mapped[float] = mapped_column(Float)  # USD per instance-hour
    max_instances: Mapped[int | None] = mapped_column(Integer, default=None)  # quota; None = unlimited
    updated_at: Mapped[datetime] = mapped_column(default=utcnow)

    cluster: Mapped[Cluster] = relationship(back_populates="pools")


def pool_name(instance_type: str, market: Market, zone: str | None = None) -> str:
    """Deterministic pool name, so repeated catalog imports update rather than duplicate."""
    parts = [instance_type, market.value] + ([zone] if zone else [])
    return "/".join(parts)


def get_cluster(session: Session, name: str, *, for_update: bool = False) -> Cluster:
    """`for_update` locks the row until the transaction ends (PostgreSQL; SQLite serialises writers anyway)."""
    query = select(Cluster).where(Cluster.name == name)
    cluster = session.scalar(query.with_for_update() if for_update else query)
    if cluster is None:
        raise NotFound(f"cluster {name!r} not found")
    return cluster


def list_clusters(session: Session) -> list[Cluster]:
    return list(session.scalars(select(Cluster).order_by(Cluster.name)))


def known_regions(session: Session) -> set[str]:
    return set(session.scalars(select(Cluster.region).distinct()))


def known_clouds(session: Session) -> set[str]:
    return set(session.scalars(select(Cluster.cloud).distinct()))


def create_cluster(
    session: Session, *, team: str, actor: str, name: str, cloud: str, region: str, zone: str | None
) -> Cluster:
    if session.scalar(select(Cluster.id).where(Cluster.name == name)) is not None:
        raise Conflict(f"cluster {name!r} already exists")
    cluster = Cluster(name=name, cloud=cloud, region=region, zone=zone, created_at=utcnow())
    session.add(cluster)
    session.flush()
    audit.record(
        session, team=team, actor=actor, action="create", object_type="cluster", object_id=name,
        details={"cloud": cloud, "region": region, "zone": zone},
    )
    return cluster


@dataclass(frozen=True, slots=True)
class PoolSpec:
    instance_type: str
    accelerator: str
    gpus_per_instance: int
    market: Market
    price_per_hour: float
    zone: str | None = None
    max_instances: int | None = None
    name: str | None = None

    @property
    def resolved_name(self) -> str:
        return self.name or pool_name(self.instance_type, self.market, self.zone)


def upsert_pool(cluster: Cluster, spec: PoolSpec) -> tuple[Pool, bool]:
    """Create or update a pool by its name; returns (pool, created). The caller writes the audit event."""
    name = spec.resolved_name
    pool = next((p for p in cluster.pools if p.name == name), None)
    created = pool is None
    if pool is None:
        pool = Pool(name=name, created_at=utcnow())
        cluster.pools.append(pool)
    pool.instance_type = spec.instance_type
    pool.accelerator = spec.accelerator
    pool.gpus_per_instance = spec.gpus_per_instance
    pool.market = spec.market
    pool.price_per_hour = spec.price_per_hour
    pool.zone = spec.zone
    pool.max_instances = spec.max_instances
    pool.updated_at = utcnow()
    return pool, created


def add_pool(session: Session, *, team: str, actor: str, cluster_name: str, spec: PoolSpec) -> Pool:
    cluster = get_cluster(session, cluster_name)
    if any(p.name == spec.resolved_name for p in cluster.pools):
        raise Conflict(f"pool {spec.resolved_name!r} already exists in cluster {cluster_name!r}")
    pool, _ = upsert_pool(cluster, spec)
    session.flush()
    audit.record(
        session, team=team, actor=actor, action="create_pool", object_type="cluster", object_id=cluster_name,
        details={"pool": pool.name, "price_per_hour": pool.price_per_hour, "market": pool.market.value},
    )
    return pool


def bump_desired_generation(session: Session, cluster_ids: set[int]) -> None:
    """Mark the desired replicas of these clusters as changed (one atomic UPDATE, safe under concurrency)."""
    if not cluster_ids:
        return
    session.execute(
        update(Cluster)
        .where(Cluster.id.in_(sorted(cluster_ids)))
        .values(desired_generation=Cluster.desired_generation + 1)
        .execution_options(synchronize_session="fetch")
    )


def record_agent_contact(
    cluster: Cluster, *, agent_version: str, applied_generation: int | None, now: datetime
) -> None:
    """What a heartbeat says about the cluster itself. Idempotent: a repeated or late heartbeat changes
    nothing a newer one set (times and generations only move forward)."""
    if cluster.last_heartbeat_at is None or now > cluster.last_heartbeat_at:
        cluster.last_heartbeat_at = now
        cluster.agent_version = agent_version
    if cluster.health is not ClusterHealth.CORDONED:  # an operator's cordon outlives heartbeats
        cluster.health = ClusterHealth.HEALTHY
    if applied_generation is not None and applied_generation > cluster.observed_generation:
        cluster.observed_generation = min(applied_generation, cluster.desired_generation)
