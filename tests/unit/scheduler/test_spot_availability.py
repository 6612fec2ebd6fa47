"""Per-pool spot availability in the placement: a spot pool that serves only part of the time may carry
only that part of a deployment's spot share (MILP, greedy, verification, diagnosis), and per-zone hints
(`scheduler.spot_hints`) set it; scenario files may state it."""

from __future__ import annotations

from dataclasses import replace
from pathlib import Path

import pytest

from scheduler.placement import CandidateTable, Plan, Pool, Snapshot, solve
from scheduler.placement.greedy import greedy_plan
from scheduler.placement.problem import compile_problem
from scheduler.placement.verify import violations
from scheduler.scenario import ScenarioError, parse_scenario
from scheduler.spot_hints import SpotHintPolicy, ZoneHint, with_spot_availability
from tests.unit.scheduler.test_placement_milp import EAST, OPTS, WEST, counts, dep, option, pool
from tests.unit.scheduler.test_scenario import minimal

NOW = 1_800_000_000.0


def spot(pid: str, price: float, availability: float | None = None, zone: str | None = "z1") -> Pool:
    return replace(pool(pid, price=price, market="spot"), zone=zone, spot_availability=availability)


def fleet(sp1: float | None, max_spot_share: float = 1.0, min_replicas: int = 0) -> tuple[Snapshot, CandidateTable]:
    pools = (pool("od", price=2.0), spot("sp1", 0.5, sp1), spot("sp2", 0.6, zone="z2"))
    deployment = dep(max_spot_share=max_spot_share, min_replicas=min_replicas)
    table = CandidateTable(tuple(option("d", p.id, rps=3.0) for p in pools))
    return Snapshot((EAST, WEST), pools, (deployment,), headroom=1.0), table


def routed(plan: Plan, pid: str) -> float:
    return sum(r.rps for r in plan.routing if r.pool == pid)


def test_no_availability_plans_as_before() -> None:
    plan = solve(*fleet(None), OPTS)
    assert counts(plan) == {"sp1": 4} and plan.cost_per_hour == pytest.approx(2.0)


def test_a_pool_serving_half_the_time_carries_half_the_spot_share() -> None:
    plan = solve(*fleet(0.5), OPTS)
    assert plan.status == "optimal" and plan.stats["verified"] == "ok"
    assert routed(plan, "sp1") <= 5.0 + 1e-6
    # 5 rps on sp1 (2 replicas) and the other 5 on the next cheapest spot pool (2 replicas).
    assert counts(plan) == {"sp1": 2, "sp2": 2} and plan.cost_per_hour == pytest.approx(2.2)


def test_the_cap_is_a_part_of_max_spot_share() -> None:
    plan = solve(*fleet(0.5, max_spot_share=0.6), OPTS)
    assert routed(plan, "sp1") <= 0.3 * 10 + 1e-6
    assert routed(plan, "sp1") + routed(plan, "sp2") <= 6.0 + 1e-6
    assert plan.stats["verified"] == "ok"


def test_an_unavailable_pool_is_not_used_even_as_a_spare() -> None:
    plan = solve(*fleet(0.0, min_replicas=6), OPTS)
    assert "sp1" not in counts(plan) and plan.stats["verified"] == "ok"


def test_greedy_respects_the_cap_and_verify_catches_a_breach() -> None:
    snap, table = fleet(0.5)
    problem = compile_problem(snap, table.candidates)
    plan = greedy_plan(problem, range(len(problem.candidates)))
    assert plan is not None and violations(problem, plan.counts, plan.flows) == []
    on_sp1 = sum(f for (k, _), f in plan.flows.items() if problem.pool_of[k].id == "sp1")
    assert 0 < on_sp1 <= 5.0 + 1e-6
    # All ten on sp1 (with replicas for it) breaks the pool's cap.
    k1 = next(k for k, c in enumerate(problem.candidates) if c.pool == "sp1")
    found = violations(problem, {k1: 4}, {(k1, 0): 10.0})
    assert any(v.startswith("spot_pool") and "spot_availability 50%" in v for v in found), found


def test_an_infeasible_cap_is_named_in_the_diagnosis() -> None:
    pools = (spot("sp1", 0.5, 0.5),)
    snap = Snapshot((EAST, WEST), pools, (dep(),), headroom=1.0)
    plan = solve(snap, CandidateTable((option("d", "sp1", rps=3.0),)), OPTS)
    assert plan.status == "infeasible"
    assert any("spot_availability" in r for r in plan.reasons), plan.reasons


def test_availability_must_be_a_fraction() -> None:
    with pytest.raises(ValueError, match="spot_availability"):
        spot("bad", 0.5, 1.5)


def test_hints_set_the_availability_of_the_pools_they_concern() -> None:
    snap, _ = fleet(None)
    snap = replace(snap, pools=(*snap.pools, spot("sp3", 0.4, 0.9, zone="z3"), spot("sp4", 0.4, zone=None)))
    hints = [
        ZoneHint("c1", "east", "z1", preemptions=30, replica_hours=20.0, observed_at=NOW - 60),
        ZoneHint("c1", "east", "z2", capacity_available=False, observed_at=NOW - 60),
        ZoneHint("c1", "east", "z3", preemptions=0, replica_hours=100.0, observed_at=NOW - 60),
        ZoneHint("c1", "west", "z9", preemptions=50, replica_hours=1.0, observed_at=NOW - 60),
    ]
    got = {p.id: p.spot_availability for p in with_spot_availability(snap, hints, NOW).pools}
    assert got["od"] is None  # on-demand: untouched
    assert got["sp1"] is not None and 0.5 <= got["sp1"] < 0.9  # many preemptions: usable, capped
    assert got["sp2"] == 0.0  # no capacity at the last launch
    assert got["sp3"] == pytest.approx(0.9)  # a lower value already set wins over a good hint
    assert got["sp4"] is not None and got["sp4"] > 0.9  # zoneless: the best zone of its region (z3)
    # Stale hints say nothing: every pool keeps what it had.
    stale = with_spot_availability(snap, hints, NOW + 2 * SpotHintPolicy().max_age_s)
    assert {p.id: p.spot_availability for p in stale.pools} == {p.id: p.spot_availability for p in snap.pools}


def test_hints_move_the_plan() -> None:
    snap, table = fleet(None)
    hints = [ZoneHint("c1", "east", "z1", preemptions=30, replica_hours=10.0, observed_at=NOW)]
    plan = solve(with_spot_availability(snap, hints, NOW), table, OPTS)
    assert plan.stats["verified"] == "ok" and routed(plan, "sp1") < 10.0 - 1e-6 and routed(plan, "sp2") > 0


def test_scenario_pools_may_state_availability() -> None:
    data = minimal()
    data["pools"][0]["spot_availability"] = 0.7
    assert parse_scenario(data, base_dir=Path(".")).snapshot.pools[0].spot_availability == 0.7
    data["pools"][0]["spot_availability"] = 1.2
    with pytest.raises(ScenarioError, match=r"pools\[0\]\.spot_availability"):
        parse_scenario(data, base_dir=Path("."))
    del data["pools"][0]["spot_availability"]
    assert parse_scenario(data, base_dir=Path(".")).snapshot.pools[0].spot_availability is None
