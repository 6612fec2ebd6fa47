"""Rollouts: moving a deployment's traffic from one version to another in SLO-gated steps."""

from __future__ import annotations

import enum
from datetime import datetime
from typing import Any

from sqlalchemy import ForeignKey, Integer, String
from sqlalchemy.orm import Mapped, mapped_column

from registry.base import Base, CreatedAtMixin, utcnow
from registry.enums import str_enum


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
