"""Plans: what the scheduler decided (replica counts and routing shares), kept as the record of each decision."""

from __future__ import annotations

from datetime import datetime
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


def find_keyed_plan(session: Session, deployment_id: int, key: str, look_back: int = 20) -> Plan | None:
    """The plan an activity recorded under `key`, among the deployment's latest ones."""
    tag = PLAN_KEY_PREFIX + key
    recent = session.scalars(
        select(Plan).where(Plan.deployment_id == deployment_id).order_by(Plan.id.desc()).limit(look_back)
    )
    return next((p for p in recent if p.reasons and p.reasons[0] == tag), None)


def record_keyed_plan(session: Session, deployment_id: int, key: str, *, status: str, cost_per_hour: float | None,
                      lower_bound_per_hour: float | None, solve_seconds: float,
                      items: list[tuple[str, str, str, int, int]], shares: list[tuple[str, str, float]],
                      reasons: list[str], created_at: datetime) -> Plan:
    """Record a plan as (cluster, pool, variant, tp, count) items and (client region, cluster, share) shares."""
    row = Plan(
        deployment_id=deployment_id, status=status, cost_per_hour=cost_per_hour,
        lower_bound_per_hour=lower_bound_per_hour, solve_seconds=solve_seconds,
        replicas=[{"cluster": c, "pool": p, "variant": v, "tensor_parallel": tp, "count": n}
                  for c, p, v, tp, n in items],
        routing=[{"client_region": r, "cluster": c, "share": s} for r, c, s in shares],
        reasons=[PLAN_KEY_PREFIX + key, *reasons], created_at=created_at,
    )
    session.add(row)
    session.flush()
    return row
