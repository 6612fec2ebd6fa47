"""Infeasible inputs: the plan says so and names the constraint that cannot hold."""

from __future__ import annotations

from scheduler.model_spec import RequestShape, Variant
from scheduler.placement import BucketPerf, Candidate, CandidateTable, Snapshot, SolveOptions, solve
from tests.unit.scheduler.test_placement_milp import BF16, EAST, INT4, SHAPE, WEST, dep, option, pool, run

OPTS = SolveOptions(time_limit_s=30)


def binding(plan) -> str:  # type: ignore[no-untyped-def]
    assert plan.status == "infeasible"
    assert plan.cost_per_hour is None
    return " | ".join(plan.binding)


def test_no_pool_meets_the_slo_names_slo_and_the_closest_option() -> None:
    plan = run([pool("far", region="west")], [dep(slo_ms=300)], [option("d", "far", rps=10.0, ttft=250)])
    text = binding(plan)
    assert text.startswith("slo:")
    assert "east" in text and "far" in text


def test_quality_budget_names_quality() -> None:
    plan = run(
        [pool("a")],
        [dep(variants=(BF16, INT4), max_quality_drop=0.5)],
        [option("d", "a", rps=10.0, variant="int4")],
    )
    text = binding(plan)
    assert "no option" in text and "quality" in text


def test_quota_names_quota_and_pool() -> None:
    plan = run([pool("a", quota=2)], [dep(demand=(("east", 20.0),))], [option("d", "a", rps=3.0)])
    text = binding(plan)
    assert "quota" in text and "pool a" in text


def test_quota_shared_between_deployments() -> None:
    d1, d2 = dep("d1", demand=(("east", 5.0),)), dep("d2", demand=(("east", 5.0),))
    plan = run([pool("a", quota=3)], [d1, d2], [option("d1", "a", rps=3.0), option("d2", "a", rps=3.0)])
    text = binding(plan)
    assert "quota" in text and "d1" in text and "d2" in text


def test_spot_only_capacity_names_max_spot_share() -> None:
    plan = run([pool("sp", market="spot")], [dep(max_spot_share=0.5)], [option("d", "sp", rps=10.0)])
    assert "max_spot_share" in binding(plan)


def test_spread_in_one_region_names_spread() -> None:
    plan = run(
        [pool("a"), pool("b")],
        [dep(min_replicas=2, spread=True)],
        [option("d", "a", rps=10.0), option("d", "b", rps=10.0)],
    )
    assert binding(plan).startswith("spread:")


def test_min_replicas_beyond_quota_names_it() -> None:
    plan = run(
        [pool("a", quota=2)], [dep(demand=(("east", 1.0),), min_replicas=3)], [option("d", "a", rps=10.0)]
    )
    text = binding(plan)
    assert "min_replicas" in text or "quota" in text


def test_allowed_regions_excluding_everything_names_allowed() -> None:
    plan = run([pool("a")], [dep(allowed_regions=frozenset({"west"}))], [option("d", "a", rps=10.0)])
    text = binding(plan)
    assert "no option" in text


def test_model_that_fits_nowhere_is_reported_with_the_table_notes() -> None:
    snap = Snapshot((EAST, WEST), (pool("a"),), (dep(),))
    table = CandidateTable((), notes={"d": ("memory: does not fit on bf16@Gx1",)})
    plan = solve(snap, table, OPTS)
    assert "memory" in binding(plan)


def test_hand_made_table_cannot_bypass_the_rules() -> None:
    # The table offers a disallowed variant and a tp that does not divide the instance; both are ignored.
    bad = [
        Candidate("d", "int4", "a", 1, {SHAPE: BucketPerf(10.0, 100.0)}),
        Candidate("d", "bf16", "a", 3, {SHAPE: BucketPerf(10.0, 100.0)}),
        Candidate("ghost", "bf16", "a", 1, {SHAPE: BucketPerf(10.0, 100.0)}),
        Candidate("d", "bf16", "a", 1, {RequestShape(9, 9): BucketPerf(10.0, 100.0)}),
    ]
    snap = Snapshot(
        (EAST, WEST),
        (pool("a", gpus=4),),
        (dep(variants=(BF16, Variant("int4", 0.5, 1.0)), max_quality_drop=0.1),),
    )
    assert solve(snap, CandidateTable(tuple(bad)), OPTS).status == "infeasible"
