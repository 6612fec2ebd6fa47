"""The greedy starting plan and the pruned path on synthetic fleets: always within the rules."""

from __future__ import annotations

import pytest

from scheduler.placement import SolveOptions, solve
from scheduler.placement.greedy import greedy_plan
from scheduler.placement.problem import compile_problem
from scheduler.placement.synthetic import synthetic_fleet
from scheduler.placement.verify import violations


@pytest.mark.parametrize("seed", range(6))
def test_greedy_plans_satisfy_every_rule(seed: int) -> None:
    fleet = synthetic_fleet(6, 60, seed=seed)
    problem = compile_problem(fleet.snapshot, fleet.table.candidates)
    plan = greedy_plan(problem, range(len(problem.candidates)))
    if plan is not None:
        assert violations(problem, plan.counts, plan.flows) == []


def test_verify_catches_broken_solutions() -> None:
    fleet = synthetic_fleet(3, 30, seed=1)
    problem = compile_problem(fleet.snapshot, fleet.table.candidates)
    plan = greedy_plan(problem, range(len(problem.candidates)))
    assert plan is not None
    k, si = next(iter(plan.flows))
    flows = dict(plan.flows)
    flows[(k, si)] *= 0.5
    assert any("demand" in v for v in violations(problem, plan.counts, flows))
    counts = {key: 0 for key in plan.counts}
    assert any("headroom" in v or "min_replicas" in v for v in violations(problem, counts, plan.flows))


@pytest.mark.parametrize("seed", range(3))
def test_pruned_solve_of_a_synthetic_fleet_is_valid_and_bounded(seed: int) -> None:
    fleet = synthetic_fleet(8, 120, seed=seed)
    plan = solve(fleet.snapshot, fleet.table, SolveOptions(time_limit_s=2, prune_above=0))
    assert plan.status in ("optimal", "feasible", "infeasible")
    if plan.ok:
        assert plan.stats["verified"] == "ok"
        assert plan.lower_bound_per_hour is not None and plan.cost_per_hour is not None
        assert plan.lower_bound_per_hour <= plan.objective_per_hour  # type: ignore[operator]
