"""Replicas: one model server each. The registry records facts; status is derived from them in one place."""

from __future__ import annotations

import enum
from datetime import datetime

from sqlalchemy import ForeignKey, Integer, String, select
from sqlalchemy.orm import Mapped, Session, mapped_column, relationship

from registry.base import Base, CreatedAtMixin
from registry.clusters import Cluster, Pool
from registry.enums import str_enum


class ReplicaStatus(enum.StrEnum):
    PENDING = "pending"
    PROVISIONING = "provisioning"
    STARTING = "starting"
    READY = "ready"
    DRAINING = "draining"
    TERMINATED = "terminated"
    FAILED = "failed"
    PREEMPTED = "preempted"

    @property
    def is_terminal(self) -> bool:
        return self in (ReplicaStatus.TERMINATED, ReplicaStatus.FAILED, ReplicaStatus.PREEMPTED)


class DesiredState(enum.StrEnum):
    RUNNING = "running"
    STOPPED = "stopped"  # drain, then stop


class Replica(CreatedAtMixin, Base):
    __tablename__ = "replicas"

    id: Mapped[int] = mapped_column(primary_key=True)
    name: Mapped[str] = mapped_column(String(128), unique=True)
    deployment_id: Mapped[int] = mapped_column(ForeignKey("deployments.id", ondelete="CASCADE"), index=True)
    version_id: Mapped[int] = mapped_column(ForeignKey("model_versions.id"))
    variant: Mapped[str] = mapped_column(String(64))
    cluster_id: Mapped[int] = mapped_column(ForeignKey("clusters.id"), index=True)
    pool_id: Mapped[int] = mapped_column(ForeignKey("pools.id"))
    tensor_parallel: Mapped[int] = mapped_column(Integer, default=1)
    desired_state: Mapped[DesiredState] = mapped_column(str_enum(DesiredState), default=DesiredState.RUNNING)
    # Recorded facts, each set once by whoever observed it (agent heartbeat, workflow activity).
    provisioning_at: Mapped[datetime | None] = mapped_column(default=None)
    started_at: Mapped[datetime | None] = mapped_column(default=None)
    ready_at: Mapped[datetime | None] = mapped_column(default=None)
    drain_requested_at: Mapped[datetime | None] = mapped_column(default=None)
    terminated_at: Mapped[datetime | None] = mapped_column(default=None)
    failed_at: Mapped[datetime | None] = mapped_column(default=None)
    preempted_at: Mapped[datetime | None] = mapped_column(default=None)
    failure_reason: Mapped[str | None] = mapped_column(String(1000), default=None)
    endpoint: Mapped[str | None] = mapped_column(String(256), default=None)
    restarts: Mapped[int] = mapped_column(Integer, default=0)

    cluster: Mapped[Cluster] = relationship()
    pool: Mapped[Pool] = relationship()

    @property
    def status(self) -> ReplicaStatus:
        return derive_status(self)


def derive_status(replica: Replica) -> ReplicaStatus:
    """The single place that turns recorded facts into a lifecycle status; later facts win."""
    if replica.terminated_at is not None:
        return ReplicaStatus.TERMINATED
    if replica.preempted_at is not None:
        return ReplicaStatus.PREEMPTED
    if replica.failed_at is not None:
        return ReplicaStatus.FAILED
    if replica.drain_requested_at is not None:
        return ReplicaStatus.DRAINING
    if replica.ready_at is not None:
        return ReplicaStatus.READY
    if replica.started_at is not None:
        return ReplicaStatus.STARTING
    if replica.provisioning_at is not None:
        return ReplicaStatus.PROVISIONING
    return ReplicaStatus.PENDING


def replicas_of(session: Session, deployment_id: int) -> list[Replica]:
    return list(session.scalars(select(Replica).where(Replica.deployment_id == deployment_id).order_by(Replica.id)))


def live_replicas_of(session: Session, deployment_id: int) -> list[Replica]:
    return [r for r in replicas_of(session, deployment_id) if not r.status.is_terminal]
