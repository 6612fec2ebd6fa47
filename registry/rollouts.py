"""Rollouts: moving a deployment's traffic from one version to another in SLO-gated steps."""

from __future__ import annotations

import enum
from datetime import datetime
from typing import Any

from sqlalchemy import ForeignKey, Integer, String, select
from sqlalchemy.orm import Mapped, Session, mapped_column

from registry.base import Base, CreatedAtMixin, utcnow
from registry.enums import str_enum
from registry.errors import Conflict


class RolloutState(enum.StrEnum):
    RUNNING = "running"
    PAUSED = "paused"
    PROMOTED = "promoted"
    ROLLED_BACK = "rolled_back"
    ABORTED = "aborted"

    @property
    def is_final(self) -> bool:
        return self in (RolloutState.PROMOTED, RolloutState.ROLLED_BACK, RolloutState.ABORTED)


class Rollout(CreatedAtMixin, Base):
    __tablename__ = "rollouts"

    id: Mapped[int] = mapped_column(primary_key=True)
    deployment_id: Mapped[int] = mapped_column(ForeignKey("deployments.id", ondelete="CASCADE"), index=True)
    from_version_id: Mapped[int] = mapped_column(ForeignKey("model_versions.id"))
    to_version_id: Mapped[int] = mapped_column(ForeignKey("model_versions.id"))
    steps: Mapped[list[Any]] = mapped_column(default=list)  # canary percentages, e.g. [5, 25, 50, 100]
    current_step: Mapped[int] = mapped_column(Integer, default=0)
    state: Mapped[RolloutState] = mapped_column(str_enum(RolloutState), default=RolloutState.RUNNING)
    verdicts: Mapped[list[Any]] = mapped_column(default=list)  # one {step, verdict, metrics} per analysed step
    workflow_id: Mapped[str | None] = mapped_column(String(256), default=None)
    updated_at: Mapped[datetime] = mapped_column(default=utcnow)


ACTIVE_STATES = (RolloutState.RUNNING, RolloutState.PAUSED)


def active_rollout(session: Session, deployment_id: int) -> Rollout | None:
    """The deployment's unfinished rollout, if any (at most one runs at a time)."""
    return session.scalar(
        select(Rollout).where(Rollout.deployment_id == deployment_id, Rollout.state.in_(ACTIVE_STATES))
        .order_by(Rollout.id.desc()).limit(1)
    )


def latest_rollouts(session: Session, deployment_id: int, limit: int = 20) -> list[Rollout]:
    return list(session.scalars(
        select(Rollout).where(Rollout.deployment_id == deployment_id).order_by(Rollout.id.desc()).limit(limit)
    ))


def rollout_by_workflow(session: Session, workflow_id: str) -> Rollout | None:
    return session.scalar(select(Rollout).where(Rollout.workflow_id == workflow_id).order_by(Rollout.id.desc()).limit(1))


def begin_rollout(
    session: Session, *, deployment_id: int, from_version_id: int, to_version_id: int, steps: list[float],
    workflow_id: str, now: datetime | None = None,
) -> Rollout:
    """Record the start of a rollout once per workflow id (a retried activity finds the same row)."""
    existing = rollout_by_workflow(session, workflow_id)
    if existing is not None and not existing.state.is_final:
        return existing
    other = active_rollout(session, deployment_id)
    if other is not None:
        raise Conflict(f"rollout {other.workflow_id!r} is still {other.state.value}")
    now = now or utcnow()
    row = Rollout(deployment_id=deployment_id, from_version_id=from_version_id, to_version_id=to_version_id,
                  steps=list(steps), current_step=0, state=RolloutState.RUNNING, verdicts=[],
                  workflow_id=workflow_id, created_at=now, updated_at=now)
    session.add(row)
    session.flush()
    return row


def record_progress(
    row: Rollout, *, state: RolloutState, current_step: int, steps: list[float], verdict: dict[str, Any] | None,
    now: datetime | None = None,
) -> None:
    """Set the rollout's state and step; a verdict for a step already recorded replaces it (idempotent)."""
    if row.state.is_final:
        return  # a final state is never left: a late retry must not reopen it
    row.state = state
    row.current_step = current_step
    row.steps = list(steps)
    if verdict is not None:
        kept = [v for v in row.verdicts if v.get("step") != verdict.get("step")]
        row.verdicts = kept + [verdict]
    row.updated_at = now or utcnow()
