"""The autoscaler's re-plan on hand-made fleets: it sizes for the forecast, keeps running replicas where a
move does not pay, honours the policy's floor, and caps at max_replicas and the budget by serving less."""

from __future__ import annotations

from dataclasses import replace

import pytest

from scheduler.autoscale_replan import (
    ReplanLimits, deployment_cost_per_hour, placed_capacity_rps, planning_demand, replan, with_demand,
)
from scheduler.model_spec import ModelArch, RequestShape, Slo, Variant
from scheduler.placement import (
    BucketPerf,
    Candidate,
    CandidateTable,
    Constraints,
    DemandSlice,
    Deployment,
    PlacedReplicas,
    Pool,
    Region,
    Snapshot,
    SolveOptions,
)

ARCH = ModelArch("m", 8, 32, 4096, 8, 128, 8192)
SHORT = RequestShape(500, 100)
LONG = RequestShape(4000, 200)
OPTS = SolveOptions(time_limit_s=20)
EAST = Region("east", "c1", 40.7, -74.0)
WEST = Region("west", "c1", 41.0, -75.0)


def pool(pid: str, price: float, quota: int = 20, region: str = "east") -> Pool:
    return Pool(pid, "c1", region, "g", "G", 1, "on-demand", price, quota)


def snapshot(current: tuple[PlacedReplicas, ...] = (), min_replicas: int = 1) -> Snapshot:
    dep = Deployment("d", ARCH, (Variant("bf16", 2.0, 0.0),), Slo(500, 50),
                     (DemandSlice("east", SHORT, 3.0), DemandSlice("west", SHORT, 1.0)),
                     Constraints(min_replicas=min_replicas))
    return Snapshot((EAST, WEST), (pool("cheap", 1.0), pool("dear", 1.5)), (dep,), headroom=1.0, current=current)


# One replica on "cheap" serves 2 rps, on "dear" 4 rps: per rps "dear" is cheaper (0.375 vs 0.5 $/h).
TABLE = CandidateTable((
    Candidate("d", "bf16", "cheap", 1, {SHORT: BucketPerf(2.0, 100.0)}),
    Candidate("d", "bf16", "dear", 1, {SHORT: BucketPerf(4.0, 100.0)}),
))


def replicas(result_plan) -> dict[str, int]:  # type: ignore[no-untyped-def]
    out: dict[str, int] = {}
    for r in result_plan.replicas:
        out[r.pool] = out.get(r.pool, 0) + r.count
    return out


def test_demand_is_scaled_to_the_forecast_in_the_declared_mix() -> None:
    scaled = with_demand(snapshot(), "d", 10.0)
    assert [s.rps for s in scaled.deployments[0].demand] == pytest.approx([7.5, 2.5])
    with pytest.raises(ValueError, match="not in the snapshot"):
        with_demand(snapshot(), "nope", 1.0)


def test_fresh_plan_for_the_forecast_is_the_cheapest_cover() -> None:
    out = replan(snapshot(), TABLE, "d", 16.0, ReplanLimits(), OPTS)
    assert out.plan.status == "optimal" and out.capped_by is None
    assert replicas(out.plan) == {"dear": 4}  # 16 rps / 4 = 4 at $1.5: $6/h (cheap would need 8: $8/h)


def test_running_replicas_stay_where_a_move_would_not_pay_for_its_churn() -> None:
    # 3.5 rps: a fresh plan is one "dear" replica ($1.5/h). With two "cheap" replicas running ($2/h), moving
    # would save $0.5/h but cost 3 x 0.25 x replica price in churn: the running replicas stay.
    assert replicas(replan(snapshot(), TABLE, "d", 3.5, ReplanLimits(), OPTS).plan) == {"dear": 1}
    now = (PlacedReplicas("d", "bf16", "cheap", 1, 2),)
    out = replan(snapshot(current=now), TABLE, "d", 3.5, ReplanLimits(), OPTS)
    assert replicas(out.plan) == {"cheap": 2}
    assert sum(r.rps for r in out.plan.routing) == pytest.approx(3.5)


def test_the_policy_wish_becomes_a_demand_not_a_replica_count() -> None:
    # The MILP loads replicas to its headroom (0.8), the policy wants them at 0.5: plan for 1.6x the forecast.
    assert planning_demand(10.0, target_utilisation=0.5, headroom=0.8) == pytest.approx(16.0)
    # Replicas observed to do half of what the model believes: twice the demand as well.
    assert planning_demand(10.0, target_utilisation=0.8, headroom=0.8, observed_capacity_rps=2.0,
                           model_capacity_rps=4.0) == pytest.approx(20.0)
    # Doing more than the model believes never plans for less than the forecast at the policy's utilisation.
    assert planning_demand(10.0, target_utilisation=0.8, headroom=0.8, observed_capacity_rps=8.0,
                           model_capacity_rps=4.0) == pytest.approx(10.0)
    with pytest.raises(ValueError):
        planning_demand(1.0, target_utilisation=0.0, headroom=0.8)
    # On the fleet: 3 rps at 0.5 utilisation on headroom 1.0 is 6 rps, two "dear" replicas (4 rps each).
    demand = planning_demand(3.0, target_utilisation=0.5, headroom=1.0)
    assert replan(snapshot(), TABLE, "d", demand, ReplanLimits(), OPTS).plan.replicas_of("d") == 2


def test_max_replicas_caps_capacity_and_serves_as_much_as_fits() -> None:
    out = replan(snapshot(), TABLE, "d", 40.0, ReplanLimits(max_replicas=3), OPTS)
    assert out.capped_by == "max_replicas" and out.plan.ok
    assert out.plan.replicas_of("d") <= 3
    assert 8.0 <= out.demand_rps <= 12.0  # 3 dear replicas carry 12 rps; bisection lands within 1/128 x 40
    assert "capped by max_replicas" in out.reason


def test_the_budget_caps_cost_but_never_the_promised_minimum() -> None:
    out = replan(snapshot(), TABLE, "d", 40.0, ReplanLimits(budget_per_hour=4.6), OPTS)
    assert out.capped_by == "budget"
    assert deployment_cost_per_hour(out.plan, snapshot(), "d") <= 4.6
    assert out.plan.replicas_of("d") == 3  # 3 x dear = $4.5/h, the most the budget buys
    tight = replan(snapshot(min_replicas=2), TABLE, "d", 40.0, ReplanLimits(budget_per_hour=0.5), OPTS)
    assert tight.plan.replicas_of("d") == 2  # min_replicas is a promise: kept above the budget ...
    assert replicas(tight.plan) == {"cheap": 2}  # ... at the promise's own cost ($2/h), and they serve what they can
    assert 3.0 <= tight.demand_rps <= 4.0


def test_more_than_the_quotas_hold_serves_what_they_can() -> None:
    tiny = Snapshot((EAST, WEST), (pool("cheap", 1.0, quota=2),), snapshot().deployments, headroom=1.0)
    table = CandidateTable((TABLE.candidates[0],))
    out = replan(tiny, table, "d", 50.0, ReplanLimits(), OPTS)
    assert out.plan.ok and out.capped_by == "capacity" and out.plan.replicas_of("d") == 2
    assert 3.0 <= out.demand_rps <= 4.0  # two 2-rps replicas
    assert "capped by capacity" in out.reason


def test_an_unplaceable_deployment_says_why() -> None:
    nowhere = Snapshot((EAST, WEST), (pool("cheap", 1.0, quota=0),), snapshot(min_replicas=1).deployments,
                       headroom=1.0)
    out = replan(nowhere, CandidateTable((TABLE.candidates[0],)), "d", 5.0, ReplanLimits(), OPTS)
    assert not out.plan.ok and out.reason.startswith("re-plan infeasible") and out.capped_by is None


def test_placed_capacity_is_the_mix_weighted_harmonic_mean_averaged_over_replicas() -> None:
    mixed = Deployment("d", ARCH, (Variant("bf16", 2.0, 0.0),), Slo(500, 50),
                       (DemandSlice("east", SHORT, 3.0), DemandSlice("west", LONG, 1.0)))
    table = CandidateTable((
        Candidate("d", "bf16", "cheap", 1, {SHORT: BucketPerf(2.0, 100.0), LONG: BucketPerf(0.5, 300.0)}),
        Candidate("d", "bf16", "dear", 1, {SHORT: BucketPerf(4.0, 100.0), LONG: BucketPerf(1.0, 900.0)}),
    ))
    now = (PlacedReplicas("d", "bf16", "cheap", 1, 3),)
    snap = Snapshot((EAST, WEST), (pool("cheap", 1.0), pool("dear", 1.5)), (mixed,), headroom=1.0, current=now)
    # 3/4 of requests at 2 rps, 1/4 at 0.5 rps: 1 / (0.75/2 + 0.25/0.5) = 8/7 rps per replica.
    assert placed_capacity_rps(snap, table, "d") == pytest.approx(8 / 7)
    # "dear" misses the SLO on long prompts (900 ms > 500 ms): its replicas have no capacity for this mix.
    assert placed_capacity_rps(replace(snap, current=(PlacedReplicas("d", "bf16", "dear", 1, 2),)), table, "d") is None
    assert placed_capacity_rps(replace(snap, current=()), table, "d") is None
