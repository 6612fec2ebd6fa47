"""on_demand_only: llmfleet's own MILP with every spot pool removed (what spot is worth)."""

from __future__ import annotations

from dataclasses import replace

from scheduler.placement.baselines.common import BaselineResult, infeasible, plan_placed
from scheduler.placement.candidates import CandidateTable
from scheduler.placement.options import SolveOptions
from scheduler.placement.snapshot import Snapshot
from scheduler.placement.solver import solve

NAME = "on_demand_only"


def on_demand_only(
    snapshot: Snapshot, table: CandidateTable, options: SolveOptions | None = None
) -> BaselineResult:
    pools = tuple(p for p in snapshot.pools if not p.is_spot)
    kept = {p.id for p in pools}
    # Drop re-plan state on spot pools too: the snapshot would reject a placement on a missing pool.
    current = tuple(c for c in snapshot.current if c.pool in kept)
    plan = solve(replace(snapshot, pools=pools, current=current), table, options)
    if not plan.ok or plan.cost_per_hour is None:
        return infeasible(NAME, "; ".join(plan.binding) or f"solver status {plan.status}")
    by_dep: dict[str, float] = {}
    return BaselineResult(
        NAME,
        plan.cost_per_hour,
        f"llmfleet MILP without spot pools ({plan.status})",
        plan_placed(plan),
        by_dep,
    )
