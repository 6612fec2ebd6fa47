"""The perfect-foresight bound: for each re-plan interval, the placement LP relaxation (the same model
the MILP solves, scheduler.placement.milp.build_model, with its valid cuts) on the true mean demand of
that interval, with the pools down at any time in it removed, and the options' capacities at the
accelerators' true speeds (perfect foresight knows the hardware as well as the demand). Summed over the
day it is a lower bound on what any plan at the planner's headroom could cost — no cold starts, no
integer replicas, no forecast error, no speed to learn. It is a cost only: an LP solution has fractional
replicas and is not simulated.
"""

from __future__ import annotations

from dataclasses import dataclass

from scheduler.fleet_sim.events import Events
from scheduler.fleet_sim.policies import Context, snapshot_for
from scheduler.placement import CandidateTable
from scheduler.placement.cbc import run_cbc
from scheduler.placement.milp import build_model
from scheduler.placement.problem import compile_problem


@dataclass(frozen=True)
class BoundResult:
    cost_usd: float | None  # None when some interval's LP is infeasible
    per_interval_usd: tuple[float | None, ...]
    statistic: str


def perfect_foresight(ctx: Context, events: Events, table: CandidateTable, statistic: str = "mean") -> BoundResult:
    """`table`: the options with their true capacities (built from the simulated truth's model)."""
    traffic = ctx.traffic
    step_s = traffic.step_s
    out: list[float | None] = []
    for start in range(0, traffic.steps, ctx.replan_steps):
        end = min(traffic.steps, start + ctx.replan_steps)
        rates = traffic.mean_rps(start, end) if statistic == "mean" else traffic.peak_minute_rps(start, end)
        down = events.regions_down(start * step_s, end * step_s)
        pools = [p.id for p in ctx.snapshot.pools if p.region in down]
        problem = compile_problem(snapshot_for(ctx, rates, pools), table.candidates)
        built = build_model(problem, range(len(problem.candidates)))
        outcome = run_cbc(
            built.prob, mip=False, time_limit_s=ctx.settings.solver_time_limit_s * 5, threads=2, gap_rel=1e-6
        )
        hours = (end - start) * step_s / 3600.0
        out.append(None if outcome.objective is None else (outcome.objective + built.constant) * hours)
    total = None if any(v is None for v in out) else sum(v for v in out if v is not None)
    return BoundResult(total, tuple(out), statistic)
