"""Plans: what the scheduler decided (replica counts and routing shares), kept as the record of each decision."""

from __future__ import annotations

from typing import Any

from sqlalchemy import Float, ForeignKey, String, select
from sqlalchemy.orm import Mapped, Session, mapped_column

from registry.base import Base, CreatedAtMixin


# A plan recorded by a workflow activity starts its reasons with this tag plus the activity's key, so a
# retried activity finds its own plan instead of solving again.
PLAN_KEY_PREFIX = "key:"


class Plan(CreatedAtMixin, Base):
    __tablename__ = "plans"

    id: Mapped[int] = mapped_column(primary_key=True)
    deployment_id: Mapped[int | None] = mapped_column(
        ForeignKey("deployments.id", ondelete="CASCADE"), index=True, default=None
    )
    status: Mapped[str] = mapped_column(String(32))  # optimal, feasible, infeasible
    cost_per_hour: Mapped[float | None] = mapped_column(Float, default=None)
    lower_bound_per_hour: Mapped[float | None] = mapped_column(Float, default=None)
    solve_seconds: Mapped[float] = mapped_column(Float, default=0.0)
    replicas: Mapped[list[Any]] = mapped_column(default=list)  # [{deployment, variant, pool, tp, count}]
    routing: Mapped[list[Any]] = mapped_column(default=list)  # [{deployment, client_region, pool, share}]
    reasons: Mapped[list[Any]] = mapped_column(default=list)


def latest_plan(session: Session, deployment_id: int) -> Plan | None:
    return session.scalar(
        select(Plan).where(Plan.deployment_id == deployment_id).order_by(Plan.id.desc()).limit(1)
    )
