"""Candidate options: every way a deployment could run a replica, with what one replica sustains.

This is the only placement module that talks to the performance model. It turns (snapshot + model) into
a table of (deployment, variant, pool, tp) options, each with per-request-bucket capacity (rps at the
SLO) and p95 TTFT. The MILP and the baselines consume the table, so they can be tested with hand-made
tables, and the performance model is evaluated once per (model, variant, accelerator, tp, bucket) no
matter how many pools share that accelerator.
"""

from __future__ import annotations

from collections import defaultdict
from collections.abc import Iterable, Mapping
from dataclasses import dataclass, field
from typing import Protocol

from scheduler.model_spec import ModelArch, RequestShape, Slo, Variant
from scheduler.placement.eligibility import pool_allowed, tp_options, variant_allowed
from scheduler.placement.snapshot import Deployment, Snapshot


class CapacityResult(Protocol):
    feasible: bool
    rps: float
    ttft_ms: float
    reason: str


class CapacityModel(Protocol):
    """The slice of scheduler.perf_model.PerfModel that placement needs."""

    gpus: Mapping[str, object]

    def fits(self, arch: ModelArch, variant: Variant, gpu: str, tp: int) -> bool: ...

    def replica_capacity(
        self, arch: ModelArch, variant: Variant, gpu: str, tp: int, shape: RequestShape, slo: Slo
    ) -> CapacityResult: ...


@dataclass(frozen=True, slots=True)
class BucketPerf:
    """One replica on one request bucket: sustained rps while meeting the SLO, and its p95 TTFT."""

    rps: float
    ttft_ms: float


@dataclass(frozen=True)
class Candidate:
    """One option: replicas of `variant` of `deployment` on `pool`, each using `tp` GPUs.

    `perf` maps each request bucket the option can serve to one or more operating points (rps, p95 TTFT).
    Several points form a curve: the further the client, the less TTFT is left for queueing, so a route
    with RTT r uses the highest-rps point whose TTFT + r still meets the SLO. A single BucketPerf is
    accepted and stored as a one-point curve.
    """

    deployment: str
    variant: str
    pool: str
    tp: int
    perf: Mapping[RequestShape, tuple[BucketPerf, ...]]

    def __post_init__(self) -> None:
        if all(isinstance(v, tuple) and _is_sorted_curve(v) for v in self.perf.values()):
            return  # already normal: keep the (possibly shared) mapping object as it is
        normal: dict[RequestShape, tuple[BucketPerf, ...]] = {}
        for shape, points in self.perf.items():
            pts = (points,) if isinstance(points, BucketPerf) else tuple(points)
            pts = tuple(sorted((p for p in pts if p.rps > 0), key=lambda p: (p.ttft_ms, -p.rps)))
            if pts:
                normal[shape] = pts
        object.__setattr__(self, "perf", normal)

    def best_point(self, shape: RequestShape, ttft_budget_ms: float) -> BucketPerf | None:
        """The highest-capacity operating point whose p95 TTFT fits in the budget left after RTT."""
        best: BucketPerf | None = None
        for p in self.perf.get(shape, ()):
            if p.ttft_ms <= ttft_budget_ms + 1e-9 and (best is None or p.rps > best.rps):
                best = p
        return best

    @property
    def key(self) -> tuple[str, str, str, int]:
        return (self.deployment, self.variant, self.pool, self.tp)


@dataclass(frozen=True)
class CandidateTable:
    candidates: tuple[Candidate, ...]
    # Per deployment: why options were left out (quality, allowed places, memory, SLO) — used to explain
    # an infeasible plan in words a user can act on.
    notes: Mapping[str, tuple[str, ...]] = field(default_factory=dict)

    def by_deployment(self) -> dict[str, list[Candidate]]:
        out: dict[str, list[Candidate]] = defaultdict(list)
        for c in self.candidates:
            out[c.deployment].append(c)
        return out

    def restricted(self, keep: Iterable[Candidate]) -> CandidateTable:
        return CandidateTable(tuple(keep), self.notes)


def build_candidates(snapshot: Snapshot, model: CapacityModel) -> CandidateTable:
    """Evaluate the performance model for every allowed (deployment, variant, pool, tp)."""
    fit_cache: dict[tuple[ModelArch, Variant, str, int], bool] = {}
    cap_cache: dict[tuple[ModelArch, Variant, str, int, RequestShape, Slo], CapacityResult] = {}
    candidates: list[Candidate] = []
    notes: dict[str, tuple[str, ...]] = {}
    for d in snapshot.deployments:
        found, why = _deployment_candidates(snapshot, d, model, fit_cache, cap_cache)
        candidates.extend(found)
        notes[d.name] = why
    return CandidateTable(tuple(candidates), notes)


def _deployment_candidates(
    snapshot: Snapshot,
    d: Deployment,
    model: CapacityModel,
    fit_cache: dict[tuple[ModelArch, Variant, str, int], bool],
    cap_cache: dict[tuple[ModelArch, Variant, str, int, RequestShape, Slo], CapacityResult],
) -> tuple[list[Candidate], tuple[str, ...]]:
    why: list[str] = []
    variants = [v for v in d.variants if variant_allowed(d, v)]
    for v in d.variants:
        if v not in variants:
            why.append(
                f"quality: variant {v.name} loses {v.quality_delta:g} > max_quality_drop "
                f"{d.constraints.max_quality_drop:g}"
            )
    pools = [p for p in snapshot.pools if pool_allowed(d, p)]
    if len(pools) < len(snapshot.pools):
        why.append(
            f"allowed regions/clouds: {len(snapshot.pools) - len(pools)} of {len(snapshot.pools)} pools excluded"
        )
    unknown = sorted({p.accelerator for p in pools if p.accelerator not in model.gpus})
    if unknown:
        why.append(f"unknown accelerators (no spec): {', '.join(unknown)}")
    out: list[Candidate] = []
    no_fit: set[str] = set()
    slo_miss: dict[str, str] = {}
    # One curve dict per (variant, accelerator, tp), shared by every pool with that accelerator: the
    # problem compiler groups options by it.
    perf_cache: dict[tuple[ModelArch, Variant, str, int], dict[RequestShape, tuple[BucketPerf, ...]]] = {}
    for v in variants:
        for p in pools:
            if p.accelerator not in model.gpus:
                continue
            for tp in tp_options(p.gpus):
                fk = (d.arch, v, p.accelerator, tp)
                if fk not in fit_cache:
                    fit_cache[fk] = model.fits(d.arch, v, p.accelerator, tp)
                if not fit_cache[fk]:
                    no_fit.add(f"{v.name}@{p.accelerator}x{tp}")
                    continue
                ck = (d.arch, v, p.accelerator, tp)
                perf = perf_cache.get(ck)
                if perf is None:
                    perf = perf_cache[ck] = _curves(d, v, p.accelerator, tp, model, cap_cache, slo_miss)
                if perf:
                    out.append(Candidate(d.name, v.name, p.id, tp, perf))
    if no_fit:
        why.append(
            f"memory: does not fit on {', '.join(sorted(no_fit)[:12])}{' ...' if len(no_fit) > 12 else ''}"
        )
    for key, reason in sorted(slo_miss.items())[:12]:
        why.append(f"slo: {key} misses the SLO on some bucket ({reason})")
    return out, tuple(why)


# RTT allowances at which capacity is evaluated (ms). A route with RTT r uses the point computed for the
# smallest allowance >= r, i.e. capacity is never overstated; 9 points keep the model calls bounded.
RTT_ALLOWANCES_MS: tuple[float, ...] = (0.0, 10.0, 25.0, 50.0, 75.0, 100.0, 150.0, 200.0, 300.0)


def _curves(
    d: Deployment,
    v: Variant,
    gpu: str,
    tp: int,
    model: CapacityModel,
    cap_cache: dict[tuple[ModelArch, Variant, str, int, RequestShape, Slo], CapacityResult],
    slo_miss: dict[str, str],
) -> dict[RequestShape, tuple[BucketPerf, ...]]:
    out: dict[RequestShape, tuple[BucketPerf, ...]] = {}
    for shape in d.shapes:
        points: list[BucketPerf] = []
        for allowance in RTT_ALLOWANCES_MS:
            budget = d.slo.ttft_p95_ms - allowance
            if budget <= 0:
                break
            slo = Slo(budget, d.slo.tpot_p95_ms)
            ck = (d.arch, v, gpu, tp, shape, slo)
            if ck not in cap_cache:
                cap_cache[ck] = model.replica_capacity(d.arch, v, gpu, tp, shape, slo)
            cap = cap_cache[ck]
            if not (cap.feasible and cap.rps > 0):
                if allowance == 0.0:
                    slo_miss.setdefault(f"{v.name}@{gpu}x{tp}", cap.reason)
                break  # a smaller TTFT budget cannot do better
            # Report the budget as the point's TTFT when it binds, so RTT + TTFT <= SLO selects it
            # exactly for routes with RTT <= allowance.
            point = BucketPerf(rps=cap.rps, ttft_ms=min(max(cap.ttft_ms, 0.0), budget))
            if not points or point.rps < points[-1].rps - 1e-12 or point.ttft_ms < points[-1].ttft_ms - 1e-9:
                points.append(point)
            if cap.ttft_ms + RTT_ALLOWANCES_MS[-1] <= d.slo.ttft_p95_ms:
                break  # this point already serves every allowance: smaller budgets change nothing
        if points:
            out[shape] = tuple(reversed(points))  # ascending TTFT, as Candidate keeps curves
    return out


def _is_sorted_curve(points: tuple[object, ...]) -> bool:
    if not points or not all(isinstance(p, BucketPerf) and p.rps > 0 for p in points):
        return False
    return all((a.ttft_ms, -a.rps) <= (b.ttft_ms, -b.rps) for a, b in zip(points, points[1:]))  # type: ignore[attr-defined]
