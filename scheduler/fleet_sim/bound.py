"""What perfect foresight could cost, per re-plan interval, summed over the day. Perfect foresight knows
each interval's true demand and the accelerators' true speeds (options built from the simulated truth's
model); pools of a region that is down at any time in the interval are removed for all of it.

- `mean`, `peak_minute`: the placement LP relaxation (the MILP's own model, scheduler.placement.milp.
  build_model, with its valid cuts) on the interval's mean demand or its busiest minute: fractional
  replicas, no cold starts, no churn. The first is a lower bound on any fleet that covers every minute's
  demand at the planner's headroom (the LP's cost is convex in demand), the second on any that covers
  each interval's busiest minute.
- `plan`: the perfect-foresight plan — the product's planner (scheduler.placement.solve, integer
  replicas on whole instances) on each interval's true busiest minute. What re-planning every interval
  would cost knowing the traffic and the hardware in advance, with no cold starts or churn; `lower_usd`
  is what the solver proved (its best bound), since a time-limited solve may stop short of the optimum.

Costs only: none of these plans is simulated.
"""

from __future__ import annotations

from collections.abc import Iterator
from dataclasses import dataclass

import numpy as np

from scheduler.fleet_sim.events import Events
from scheduler.fleet_sim.policies import Context, snapshot_for, without_spread
from scheduler.placement import CandidateTable, SolveOptions, solve
from scheduler.placement.cbc import run_cbc
from scheduler.placement.milp import build_model
from scheduler.placement.problem import compile_problem
from scheduler.placement.snapshot import Snapshot

STATISTICS = ("mean", "peak_minute", "plan")


@dataclass(frozen=True)
class BoundResult:
    cost_usd: float | None  # None when some interval has no plan (infeasible, or no solution in time)
    per_interval_usd: tuple[float | None, ...]
    statistic: str
    lower_usd: float | None = None  # proven lower bound on cost_usd: the same for an LP solved to optimality


@dataclass(frozen=True)
class _Interval:
    snapshot: Snapshot  # the scenario at the interval's demand, pools of regions down removed
    hours: float
    regions_down: bool


def _intervals(ctx: Context, events: Events, statistic: str) -> Iterator[_Interval]:
    traffic = ctx.traffic
    step_s = traffic.step_s
    for start in range(0, traffic.steps, ctx.replan_steps):
        end = min(traffic.steps, start + ctx.replan_steps)
        rates: np.ndarray = (
            traffic.mean_rps(start, end) if statistic == "mean" else traffic.peak_minute_rps(start, end)
        )
        down = events.regions_down(start * step_s, end * step_s)
        pools = [p.id for p in ctx.snapshot.pools if p.region in down]
        yield _Interval(snapshot_for(ctx, rates, pools), (end - start) * step_s / 3600.0, bool(pools))


def _summed(per: list[float | None], lower: list[float | None], statistic: str) -> BoundResult:
    complete = all(v is not None for v in per)
    total = sum(v for v in per if v is not None) if complete else None
    proven = sum(v for v in lower if v is not None) if all(v is not None for v in lower) else None
    return BoundResult(total, tuple(per), statistic, proven)


def perfect_foresight(ctx: Context, events: Events, table: CandidateTable, statistic: str = "mean") -> BoundResult:
    """`table`: the options with their true capacities (built from the simulated truth's model)."""
    if statistic == "plan":
        return perfect_foresight_plan(ctx, events, table)
    out: list[float | None] = []
    for iv in _intervals(ctx, events, statistic):
        problem = compile_problem(iv.snapshot, table.candidates)
        built = build_model(problem, range(len(problem.candidates)))
        outcome = run_cbc(
            built.prob, mip=False, time_limit_s=ctx.settings.solver_time_limit_s * 5, threads=2, gap_rel=1e-6
        )
        out.append(None if outcome.objective is None else (outcome.objective + built.constant) * iv.hours)
    return _summed(out, out, statistic)


def perfect_foresight_plan(ctx: Context, events: Events, table: CandidateTable) -> BoundResult:
    """The integer plan for each interval's true busiest minute (see the module's docstring)."""
    options = SolveOptions(time_limit_s=ctx.settings.plan_bound_seconds)
    cost: list[float | None] = []
    lower: list[float | None] = []
    for iv in _intervals(ctx, events, "peak_minute"):
        plan = solve(iv.snapshot, table, options)
        if not plan.ok and iv.regions_down:  # as the policies do after losing a failure domain
            plan = solve(without_spread(iv.snapshot), table, options)
        if not plan.ok or plan.cost_per_hour is None:
            cost.append(None)
            lower.append(None)
            continue
        cost.append(plan.cost_per_hour * iv.hours)
        # The solver's gap is against the best bound it proved for all options (pruned ones included).
        lower.append(plan.cost_per_hour * (1.0 - (plan.gap or 0.0)) * iv.hours)
    return _summed(cost, lower, "plan")
