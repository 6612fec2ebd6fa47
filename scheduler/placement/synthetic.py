"""Synthetic fleets of any size, for the solver's scaling benchmark and property tests.

Shapes follow the real catalog loosely (accelerators, 1- and 8-GPU instances, spot at a discount,
regional price spread) and capacities follow a simple closed form instead of the performance model,
so thousands of pools cost nothing to generate. Deterministic for a given seed.
"""

from __future__ import annotations

import random
from dataclasses import dataclass

from scheduler.model_spec import ModelArch, RequestShape, Slo, Variant
from scheduler.placement.candidates import BucketPerf, Candidate, CandidateTable
from scheduler.placement.eligibility import tp_options
from scheduler.placement.snapshot import Constraints, DemandSlice, Deployment, Pool, Region, Snapshot

# accelerator: (memory GiB, relative decode speed, $ per GPU-hour on-demand)
ACCELERATORS: dict[str, tuple[float, float, float]] = {
    "L4": (24, 0.30, 0.80),
    "A10G": (24, 0.55, 1.00),
    "L40S": (48, 0.85, 1.86),
    "A100-80GB": (80, 1.30, 3.40),
    "H100": (80, 2.20, 6.90),
    "H200": (141, 3.00, 7.90),
    "B200": (180, 5.00, 14.2),
}
VARIANTS = (Variant("bf16", 2.0, 0.0), Variant("fp8", 1.0, 0.2), Variant("awq-int4", 0.5625, 1.0))
SPEEDUP = {"bf16": 1.0, "fp8": 1.6, "awq-int4": 1.9}
SIZES = (8.0, 32.0, 70.0)  # billions of parameters
SHAPES = (RequestShape(300, 110), RequestShape(900, 320), RequestShape(2300, 200))


@dataclass(frozen=True)
class Synthetic:
    snapshot: Snapshot
    table: CandidateTable


def synthetic_fleet(
    deployments: int, pools: int, seed: int = 0, pool_regions: int | None = None, client_regions: int = 5
) -> Synthetic:
    rng = random.Random(seed)
    n_regions = pool_regions or max(3, min(40, pools // 25))
    regions: list[Region] = []
    for i in range(client_regions):
        regions.append(Region(f"client-{i}", "internet", rng.uniform(-40, 60), rng.uniform(-150, 150)))
    for i in range(n_regions):
        regions.append(Region(f"region-{i}", f"cloud-{i % 3}", rng.uniform(-40, 60), rng.uniform(-150, 150)))
    pool_list: list[Pool] = []
    accs = list(ACCELERATORS)
    for i in range(pools):
        region = regions[client_regions + i % n_regions]
        acc = rng.choice(accs)
        gpus = rng.choice((1, 1, 2, 4, 8, 8))
        spot = rng.random() < 0.35
        price = (
            ACCELERATORS[acc][2] * gpus * rng.uniform(0.85, 1.3) * (rng.uniform(0.3, 0.6) if spot else 1.0)
        )
        quota = rng.choice((2, 4, 8, 16)) if gpus >= 4 else rng.choice((8, 16, 32))
        pool_list.append(
            Pool(
                f"p{i}",
                region.cloud,
                region.name,
                f"{acc.lower()}x{gpus}",
                acc,
                gpus,
                "spot" if spot else "on-demand",
                round(price, 4),
                quota,
                zone=f"z{rng.randint(1, 3)}",
            )
        )
    deps: list[Deployment] = []
    cands: list[Candidate] = []
    for j in range(deployments):
        size = rng.choice(SIZES)
        arch = ModelArch(f"m{int(size)}b", size, 32 if size < 20 else 80, 4096, 8, 128, 8192)
        slo = Slo(rng.choice((800.0, 1200.0, 2000.0)), rng.choice((50.0, 80.0)))
        clients = rng.sample(range(client_regions), k=rng.randint(1, min(3, client_regions)))
        scale = rng.uniform(2, 60) * (8.0 / size) ** 0.5
        demand = tuple(
            DemandSlice(f"client-{c}", shape, round(scale * rng.uniform(0.2, 1.0), 3))
            for c in clients
            for shape in SHAPES
        )
        cons = Constraints(
            min_replicas=rng.choice((1, 2)),
            spread=rng.random() < 0.5,
            max_spot_share=rng.choice((0.3, 0.5, 1.0)),
            max_quality_drop=rng.choice((0.0, 0.5, 1.0)),
        )
        d = Deployment(f"d{j}", arch, VARIANTS, slo, demand, cons)
        deps.append(d)
        cands += _options(d, pool_list)
    snap = Snapshot(tuple(regions), tuple(pool_list), tuple(deps))
    return Synthetic(snap, CandidateTable(tuple(cands)))


def _options(d: Deployment, pools: list[Pool]) -> list[Candidate]:
    """Closed-form capacities: decode speed x tp^0.9 x variant speed-up / model size, less for long
    requests; two operating points per bucket (lower load, lower TTFT) so RTT matters."""
    out: list[Candidate] = []
    curves: dict[tuple[str, str, int], dict[RequestShape, tuple[BucketPerf, ...]]] = {}
    for p in pools:
        mem, speed, _ = ACCELERATORS[p.accelerator]
        for v in d.variants:
            if (
                d.constraints.max_quality_drop is not None
                and v.quality_delta > d.constraints.max_quality_drop
            ):
                continue
            for tp in tp_options(p.gpus):
                if d.arch.params_b * v.bytes_per_param > 0.75 * mem * tp:
                    continue  # weights leave no room for the KV cache
                key = (p.accelerator, v.name, tp)
                if key not in curves:
                    curves[key] = _curve(d, speed, v, tp)
                if curves[key]:
                    out.append(Candidate(d.name, v.name, p.id, tp, curves[key]))
    return out


def _curve(d: Deployment, speed: float, v: Variant, tp: int) -> dict[RequestShape, tuple[BucketPerf, ...]]:
    out: dict[RequestShape, tuple[BucketPerf, ...]] = {}
    for shape in SHAPES:
        work = shape.prompt_tokens / 2000 + shape.output_tokens / 100
        rps = 40.0 * speed * tp**0.9 * SPEEDUP[v.name] * (8.0 / d.arch.params_b) / work
        ttft = 60.0 + shape.prompt_tokens * d.arch.params_b / (20.0 * speed * tp**0.8 * SPEEDUP[v.name])
        if rps < 0.05 or ttft > d.slo.ttft_p95_ms:
            continue
        high = BucketPerf(round(rps, 4), round(min(d.slo.ttft_p95_ms, ttft * 2.2), 2))
        low = BucketPerf(round(rps * 0.6, 4), round(ttft, 2))
        out[shape] = (low, high) if high.ttft_ms > low.ttft_ms else (high,)
    return out
