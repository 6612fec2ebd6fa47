"""max_spot_pool_share: no one spot pool (an instance type in one zone, what a cloud reclaims together)
carries more of a deployment's traffic than the deployment says one preemption may take away — in the
MILP, the greedy fallback, the verification, the diagnosis and scenario files."""

from __future__ import annotations

from dataclasses import replace
from pathlib import Path

import pytest

from scheduler.placement import CandidateTable, Constraints, Snapshot, solve
from scheduler.placement.baselines.melange import melange
from scheduler.placement.eligibility import pool_spot_cap
from scheduler.placement.greedy import greedy_plan
from scheduler.placement.problem import compile_problem
from scheduler.placement.verify import violations
from scheduler.scenario import ScenarioError, parse_scenario
from tests.unit.scheduler.test_placement_milp import EAST, OPTS, WEST, counts, option
from tests.unit.scheduler.test_scenario import minimal
from tests.unit.scheduler.test_spot_availability import fleet as availability_fleet
from tests.unit.scheduler.test_spot_availability import routed, spot


def fleet(pool_share: float | None, sp1: float | None = None) -> tuple[Snapshot, CandidateTable]:
    """test_spot_availability's fleet (on-demand od, spot sp1 and sp2), with the per-pool limit set."""
    snap, table = availability_fleet(sp1)
    d = snap.deployments[0]
    d = replace(d, constraints=replace(d.constraints, max_spot_pool_share=pool_share))
    return replace(snap, deployments=(d,)), table


def test_without_the_limit_one_spot_pool_takes_everything() -> None:
    plan = solve(*fleet(None), OPTS)
    assert counts(plan) == {"sp1": 4} and plan.cost_per_hour == pytest.approx(2.0)


def test_each_spot_pool_carries_at_most_its_share_and_on_demand_the_rest() -> None:
    plan = solve(*fleet(0.3), OPTS)
    assert plan.status == "optimal" and plan.stats["verified"] == "ok"
    assert routed(plan, "sp1") <= 3.0 + 1e-6 and routed(plan, "sp2") <= 3.0 + 1e-6
    # 3 rps on each spot pool (one replica each), the other 4 rps on two on-demand replicas.
    assert counts(plan) == {"sp1": 1, "sp2": 1, "od": 2}
    assert plan.cost_per_hour == pytest.approx(0.5 + 0.6 + 2 * 2.0)


def test_the_tightest_of_the_spot_rules_wins() -> None:
    snap, _ = fleet(0.3, sp1=0.2)
    d = snap.deployments[0]
    od, sp1, sp2 = snap.pools
    assert pool_spot_cap(d, sp1) == pytest.approx(0.2)  # availability 0.2 x max_spot_share 1.0
    assert pool_spot_cap(d, sp2) == pytest.approx(0.3)  # max_spot_pool_share
    assert pool_spot_cap(d, od) is None  # on-demand pools are not capped
    capped = replace(d, constraints=replace(d.constraints, max_spot_share=0.25))
    assert pool_spot_cap(capped, sp2) is None  # no tighter than the deployment's spot share: that one applies


def test_greedy_respects_the_limit_and_verify_names_it() -> None:
    snap, table = fleet(0.3)
    problem = compile_problem(snap, table.candidates)
    plan = greedy_plan(problem, range(len(problem.candidates)))
    assert plan is not None
    assert violations(problem, plan.counts, plan.flows) == []
    for pid in ("sp1", "sp2"):
        assert sum(f for (k, _), f in plan.flows.items() if problem.pool_of[k].id == pid) <= 3.0 + 1e-6
    k1 = next(k for k, c in enumerate(problem.candidates) if c.pool == "sp1")
    found = violations(problem, {k1: 4}, {(k1, 0): 10.0})
    assert any(v.startswith("spot_pool") and "max_spot_pool_share 30%" in v for v in found), found


def test_a_limit_spot_pools_cannot_meet_is_named_in_the_diagnosis() -> None:
    only_spot = (spot("sp1", 0.5), spot("sp2", 0.6, zone="z2"))
    snap = Snapshot((EAST, WEST), only_spot, fleet(0.3)[0].deployments, headroom=1.0)
    table = CandidateTable((option("d", "sp1", rps=3.0), option("d", "sp2", rps=3.0)))
    plan = solve(snap, table, OPTS)
    assert plan.status == "infeasible"
    assert any("max_spot_pool_share 30%" in r for r in plan.reasons), plan.reasons


def test_the_limit_must_be_a_fraction() -> None:
    with pytest.raises(ValueError, match="max_spot_pool_share"):
        Constraints(max_spot_pool_share=1.5)


def test_scenario_deployments_may_state_the_limit() -> None:
    data = minimal()
    data["deployments"][0]["max_spot_pool_share"] = 0.2
    parsed = parse_scenario(data, base_dir=Path("."))
    assert parsed.snapshot.deployments[0].constraints.max_spot_pool_share == 0.2
    data["deployments"][0]["max_spot_pool_share"] = -0.1
    with pytest.raises(ScenarioError, match=r"deployments\[0\]\.max_spot_pool_share"):
        parse_scenario(data, base_dir=Path("."))


def test_the_melange_baseline_keeps_the_limit_too() -> None:
    assert melange(*fleet(None), OPTS).cost_per_hour == pytest.approx(2.0)
    assert melange(*fleet(0.3), OPTS).cost_per_hour == pytest.approx(0.5 + 0.6 + 2 * 2.0)
