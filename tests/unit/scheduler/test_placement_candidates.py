"""Candidate generation from a capacity model, RTT defaults, and the scenario-independent helpers."""

from __future__ import annotations

from dataclasses import dataclass

import pytest

from scheduler.model_spec import ModelArch, RequestShape, Slo, Variant
from scheduler.placement import (
    BucketPerf,
    Candidate,
    Constraints,
    DemandSlice,
    Deployment,
    Pool,
    Region,
    Snapshot,
    build_candidates,
    default_rtt_ms,
    great_circle_km,
)
from scheduler.placement.eligibility import tp_options
from scheduler.placement.rtt import RttMatrix

ARCH = ModelArch("m", 8, 32, 4096, 8, 128, 8192)
SHAPE = RequestShape(1000, 100)


@dataclass(frozen=True)
class Cap:
    feasible: bool
    rps: float
    ttft_ms: float
    reason: str


class FakeModel:
    """Fits from tp >= 2 on 'small' GPUs; capacity falls as the TTFT budget shrinks."""

    gpus = {"small": object(), "big": object()}

    def __init__(self) -> None:
        self.calls = 0

    def fits(self, arch: ModelArch, variant: Variant, gpu: str, tp: int) -> bool:
        return gpu == "big" or tp >= 2

    def replica_capacity(
        self, arch: ModelArch, variant: Variant, gpu: str, tp: int, shape: RequestShape, slo: Slo
    ) -> Cap:
        self.calls += 1
        if slo.ttft_p95_ms < 200:
            return Cap(False, 0.0, 0.0, "ttft")
        rps = min(10.0 * tp, slo.ttft_p95_ms / 50)
        return Cap(True, rps, min(slo.ttft_p95_ms, 150 + rps * 20), "ttft")


def snapshot(**constraints: object) -> Snapshot:
    regions = (Region("east", "c", 40.7, -74.0), Region("west", "c", 51.5, -0.1))
    pools = (
        Pool("s8", "c", "east", "t", "small", 8, "on-demand", 8.0, 2),
        Pool("b1", "c", "west", "t", "big", 1, "spot", 2.0, 4),
        Pool("x1", "c", "east", "t", "mystery", 1, "on-demand", 1.0, 4),
    )
    d = Deployment(
        "d",
        ARCH,
        (Variant("bf16", 2.0), Variant("int4", 0.5, 1.0)),
        Slo(400, 50),
        (DemandSlice("east", SHAPE, 5.0),),
        Constraints(**constraints),
    )  # type: ignore[arg-type]
    return Snapshot(regions, pools, (d,))


def test_options_cover_allowed_variants_pools_and_tp() -> None:
    table = build_candidates(snapshot(), FakeModel())
    keys = {c.key for c in table.candidates}
    assert ("d", "bf16", "s8", 1) not in keys  # does not fit
    assert {("d", v, "s8", tp) for v in ("bf16", "int4") for tp in (2, 4, 8)} <= keys
    assert ("d", "bf16", "b1", 1) in keys
    assert not any(c.pool == "x1" for c in table.candidates)  # unknown accelerator
    notes = " ".join(table.notes["d"])
    assert "memory" in notes and "unknown accelerators" in notes


def test_quality_budget_and_allowed_places_filter_options() -> None:
    table = build_candidates(snapshot(max_quality_drop=0.5, allowed_regions=frozenset({"east"})), FakeModel())
    assert {c.variant for c in table.candidates} == {"bf16"}
    assert {c.pool for c in table.candidates} == {"s8"}
    notes = " ".join(table.notes["d"])
    assert "quality" in notes and "allowed regions/clouds" in notes


def test_capacity_curve_has_lower_load_points_for_far_clients() -> None:
    table = build_candidates(snapshot(), FakeModel())
    c = next(c for c in table.candidates if c.key == ("d", "bf16", "b1", 1))
    points = c.perf[SHAPE]
    assert len(points) > 1
    assert [p.ttft_ms for p in points] == sorted(p.ttft_ms for p in points)
    assert [p.rps for p in points] == sorted(p.rps for p in points)
    far = c.best_point(SHAPE, 400 - 120)
    assert far is not None and far.ttft_ms <= 280 and far.rps < points[-1].rps


def test_model_is_called_once_per_accelerator_not_per_pool() -> None:
    model = FakeModel()
    snap = snapshot()
    many = tuple(Pool(f"s{i}", "c", "east", "t", "small", 8, "on-demand", 8.0, 2) for i in range(20))
    build_candidates(Snapshot(snap.regions, many, snap.deployments), model)
    calls = model.calls
    build_candidates(Snapshot(snap.regions, many[:1], snap.deployments), model)
    assert model.calls - calls == calls


def test_candidate_accepts_single_point_and_sorts_curves() -> None:
    c = Candidate("d", "v", "p", 1, {SHAPE: [BucketPerf(9, 300), BucketPerf(4, 100), BucketPerf(0, 50)]})
    assert c.perf[SHAPE] == (BucketPerf(4, 100), BucketPerf(9, 300))
    assert Candidate("d", "v", "p", 1, {SHAPE: BucketPerf(3, 10)}).perf[SHAPE] == (BucketPerf(3, 10),)
    assert c.best_point(SHAPE, 99) is None


def test_tp_options_pack_without_fragmentation() -> None:
    assert tp_options(1) == (1,)
    assert tp_options(8) == (1, 2, 4, 8)
    assert tp_options(6) == (1, 2)
    assert tp_options(9) == (1,)


def test_great_circle_rtt_defaults_and_overrides() -> None:
    assert great_circle_km(40.7, -74.0, 51.5, -0.1) == pytest.approx(5570, rel=0.01)
    assert default_rtt_ms(0) == pytest.approx(2.0)
    assert 70 < default_rtt_ms(5570) < 95
    regions = (Region("a", "c", 40.7, -74.0), Region("b", "c", 51.5, -0.1))
    m = RttMatrix.build(regions, {("a", "b"): 60.0})
    assert m.get("a", "b") == 60.0  # measured wins, and is directional
    assert m.get("b", "a") == pytest.approx(default_rtt_ms(great_circle_km(51.5, -0.1, 40.7, -74.0)))


def test_snapshot_rejects_dangling_references() -> None:
    snap = snapshot()
    with pytest.raises(ValueError, match="unknown region"):
        Snapshot(snap.regions, (Pool("p", "c", "mars", "t", "big", 1, "spot", 1.0, 1),), ())
    with pytest.raises(ValueError, match="duplicate pool"):
        Snapshot(snap.regions, snap.pools + snap.pools[:1], ())
    with pytest.raises(ValueError, match="max_spot_share"):
        Constraints(max_spot_share=1.5)
