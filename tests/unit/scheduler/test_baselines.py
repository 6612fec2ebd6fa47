"""The peers' policies on small hand-made fleets: each behaves like the peer, and llmfleet is never worse."""

from __future__ import annotations

import pytest

from scheduler.placement import CandidateTable, Snapshot, SolveOptions, solve
from scheduler.placement.baselines import BASELINES, run_baselines
from scheduler.placement.baselines.melange import melange
from scheduler.placement.baselines.on_demand import on_demand_only
from scheduler.placement.baselines.single_type import cheapest_single_type
from scheduler.placement.baselines.skyserve import skyserve
from tests.unit.scheduler.test_placement_milp import BF16, EAST, INT4, WEST, dep, option, pool

OPTS = SolveOptions(time_limit_s=30)


def fleet(deployments, pools, options, headroom=1.0):  # type: ignore[no-untyped-def]
    return Snapshot((EAST, WEST), tuple(pools), tuple(deployments), headroom=headroom), CandidateTable(
        tuple(options)
    )


def test_skyserve_uses_cheapest_hourly_type_and_ceil_replicas() -> None:
    # Type "small" is cheapest per hour ($1) but poor per rps; SkyServe still picks it: ceil(10/3) = 4.
    snap, table = fleet(
        [dep()],
        [pool("small", price=1.0), pool("big", price=2.0, acc="H")],
        [option("d", "small", rps=3.0), option("d", "big", rps=12.0)],
    )
    result = skyserve(snap, table)
    assert result.cost_per_hour == pytest.approx(4.0)
    assert [(p[2], p[4]) for p in result.replicas] == [("small", 4)]
    assert solve(snap, table, OPTS).cost_per_hour == pytest.approx(2.0)


def test_skyserve_skips_a_type_that_cannot_meet_the_slo() -> None:
    snap, table = fleet(
        [dep(slo_ms=300)],
        [pool("small", price=1.0), pool("big", price=2.0, acc="H")],
        [option("d", "small", rps=30.0, ttft=400), option("d", "big", rps=12.0)],
    )
    assert skyserve(snap, table).cost_per_hour == pytest.approx(2.0)


def test_skyserve_spot_takes_floor_of_cap_times_replicas() -> None:
    snap, table = fleet(
        [dep(max_spot_share=0.5)],
        [pool("od", price=1.0), pool("sp", price=0.4, market="spot")],
        [option("d", "od", rps=2.0), option("d", "sp", rps=2.0)],
    )
    result = skyserve(snap, table)
    # 10 rps / 2 = 5 replicas: floor(2.5) = 2 spot, 3 on-demand.
    assert sorted((p[2], p[4]) for p in result.replicas) == [("od", 3), ("sp", 2)]
    assert result.cost_per_hour == pytest.approx(3.8)


def test_skyserve_serves_each_client_region_from_its_cheapest_nearby_region() -> None:
    snap, table = fleet(
        [dep(demand=(("east", 4.0), ("west", 4.0)), slo_ms=150)],
        [pool("e", price=1.0), pool("w", region="west", price=1.5)],
        [option("d", "e", rps=4.0), option("d", "w", rps=4.0)],
    )
    result = skyserve(snap, table)
    assert sorted((p[2], p[4]) for p in result.replicas) == [("e", 1), ("w", 1)]


def test_skyserve_reports_none_with_reason_when_impossible() -> None:
    snap, table = fleet([dep(min_replicas=2, spread=True)], [pool("a")], [option("d", "a", rps=10.0)])
    result = skyserve(snap, table)
    assert result.cost_per_hour is None and "min_replicas/spread" in result.reason


def test_baselines_use_the_full_quality_variant_only() -> None:
    snap, table = fleet(
        [dep(variants=(BF16, INT4), max_quality_drop=1.0)],
        [pool("a")],
        [option("d", "a", rps=2.0), option("d", "a", rps=10.0, variant="int4")],
    )
    assert solve(snap, table, OPTS).cost_per_hour == pytest.approx(1.0)
    for name, result in run_baselines(
        snap, table, ["skyserve", "melange", "cheapest_single_type"], OPTS
    ).items():
        assert result.cost_per_hour == pytest.approx(5.0), name
        assert {p[1] for p in result.replicas} == {"bf16"}


def test_melange_mixes_gpu_types_within_one_region() -> None:
    snap, table = fleet(
        [dep()],
        [pool("a", price=1.9), pool("b", price=3.0, acc="H")],
        [option("d", "a", rps=3.0), option("d", "b", rps=8.0)],
    )
    assert melange(snap, table, OPTS).cost_per_hour == pytest.approx(4.9)


def test_melange_does_not_share_replicas_across_client_regions() -> None:
    # One big replica could serve both client regions (SLO allows the RTT); Mélange solves each
    # client region alone and pays twice.
    snap, table = fleet(
        [dep(demand=(("east", 4.0), ("west", 4.0)), slo_ms=1000)],
        [pool("e", price=1.0)],
        [option("d", "e", rps=10.0)],
    )
    assert melange(snap, table, OPTS).cost_per_hour == pytest.approx(2.0)
    assert solve(snap, table, OPTS).cost_per_hour == pytest.approx(1.0)


def test_melange_adds_spare_for_spread() -> None:
    snap, table = fleet(
        [dep(min_replicas=2, spread=True, slo_ms=1000)],
        [pool("e", price=1.0), pool("w", region="west", price=2.0)],
        [option("d", "e", rps=20.0), option("d", "w", rps=20.0)],
    )
    result = melange(snap, table, OPTS)
    assert result.cost_per_hour == pytest.approx(3.0)
    assert sorted(p[2] for p in result.replicas) == ["e", "w"]


def test_cheapest_single_type_picks_best_accelerator() -> None:
    snap, table = fleet(
        [dep()],
        [pool("a", price=1.9), pool("b", price=3.0, acc="H")],
        [option("d", "a", rps=3.0), option("d", "b", rps=8.0)],
    )
    result = cheapest_single_type(snap, table, OPTS)
    assert result.cost_per_hour == pytest.approx(6.0)  # 2 x b beats 4 x a ($7.6)


def test_on_demand_only_drops_spot() -> None:
    snap, table = fleet(
        [dep()],
        [pool("od", price=1.0), pool("sp", price=0.3, market="spot")],
        [option("d", "od", rps=5.0), option("d", "sp", rps=5.0)],
    )
    assert on_demand_only(snap, table, OPTS).cost_per_hour == pytest.approx(2.0)
    assert solve(snap, table, OPTS).cost_per_hour == pytest.approx(0.6)


def test_llmfleet_is_never_costlier_than_any_baseline() -> None:
    d1 = dep(
        "d1",
        demand=(("east", 7.0), ("west", 3.0)),
        slo_ms=400,
        min_replicas=2,
        spread=True,
        max_spot_share=0.5,
    )
    d2 = dep("d2", demand=(("west", 5.0),), slo_ms=400, variants=(BF16, INT4), max_quality_drop=1.0)
    pools = [
        pool("e1", price=1.0),
        pool("e2", price=3.5, gpus=4, acc="H"),
        pool("es", price=0.4, market="spot"),
        pool("w1", region="west", price=1.2),
        pool("ws", region="west", price=0.5, market="spot"),
    ]
    options = [
        option(d, p, rps)
        for d in ("d1", "d2")
        for p, rps in (("e1", 2.0), ("es", 2.0), ("w1", 2.0), ("ws", 2.0))
    ]
    options += [option(d, "e2", 9.0, tp=4) for d in ("d1", "d2")] + [option("d2", "w1", 6.0, variant="int4")]
    snap, table = fleet([d1, d2], pools, options, headroom=0.8)
    plan = solve(snap, table, OPTS)
    assert plan.status == "optimal"
    results = run_baselines(snap, table, list(BASELINES), OPTS)
    assert all(r.cost_per_hour is not None for r in results.values()), {
        n: r.reason for n, r in results.items()
    }
    for name, result in results.items():
        assert plan.cost_per_hour <= result.cost_per_hour + 1e-6, name  # type: ignore[operator]


def test_unknown_baseline_is_rejected() -> None:
    snap, table = fleet([dep()], [pool("a")], [option("d", "a", rps=10.0)])
    with pytest.raises(ValueError, match="unknown baseline"):
        run_baselines(snap, table, ["nope"])
