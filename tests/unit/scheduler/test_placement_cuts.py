"""The instance cover cuts (scheduler/placement/cuts.py) never cut off an integer-feasible plan.

On small random fleets every replica vector is enumerated; each one that satisfies every hard rule
(quotas, min_replicas, spread, demand coverage by max-flow, the spot cap) is turned into the
instances it buys, and every cut must hold for it. The cuts must also matter: on some instances the
LP relaxation with them is strictly above the LP without them.
"""

from __future__ import annotations

import itertools
import math
import random
from collections import defaultdict

import pytest

from scheduler.model_spec import ModelArch, RequestShape, Slo, Variant
from scheduler.placement import (
    BucketPerf,
    Candidate,
    CandidateTable,
    Constraints,
    DemandSlice,
    Deployment,
    Pool,
    Region,
    Snapshot,
)
from scheduler.placement.cbc import run_cbc
from scheduler.placement.cuts import instance_covers
from scheduler.placement.milp import build_model
from scheduler.placement.problem import Problem, compile_problem
from tests.unit.scheduler.test_placement_bruteforce import max_flow

ARCH = ModelArch("m", 8, 32, 4096, 8, 128, 8192)
SHAPE = RequestShape(500, 100)
REGIONS = (Region("r0", "c", 40.7, -74.0), Region("r1", "c", 41.9, -87.6), Region("r2", "c", 51.5, -0.1))
HEADROOM = 0.8


def instance(seed: int) -> tuple[Snapshot, CandidateTable]:
    """One deployment, 2-3 pools of 1, 2 or 4 GPUs in up to three failure domains, tp 1/2/4."""
    rng = random.Random(seed)
    pools = []
    for i in range(rng.randint(2, 3)):
        gpus = rng.choice((1, 2, 4))
        spot = rng.random() < 0.3
        pools.append(
            Pool(
                f"p{i}",
                "c",
                f"r{rng.randint(0, 2)}",
                "t",
                "G",
                gpus,
                "spot" if spot else "on-demand",
                round(rng.uniform(0.5, 3.0) * gpus, 2),
                rng.randint(1, 3 if gpus < 4 else 2),
            )
        )
    clients = rng.sample(["r0", "r1", "r2"], k=rng.randint(1, 2))
    demand = tuple(DemandSlice(c, SHAPE, round(rng.uniform(0.5, 9), 2)) for c in clients)
    cons = Constraints(
        min_replicas=rng.randint(0, 3), spread=rng.random() < 0.5, max_spot_share=rng.choice((0.5, 1.0))
    )
    d = Deployment("d", ARCH, (Variant("bf16", 2.0),), Slo(400.0, 50), demand, cons)
    options = []
    for p in pools:
        for tp in (1, 2, 4):
            if p.gpus % tp == 0 and rng.random() < 0.7:
                perf = {SHAPE: BucketPerf(round(rng.uniform(1, 4) * tp**0.9, 2), rng.uniform(150, 330))}
                options.append(Candidate("d", "bf16", p.id, tp, perf))
    return Snapshot(REGIONS, tuple(pools), (d,), headroom=HEADROOM), CandidateTable(tuple(options))


def feasible_instances(problem: Problem) -> list[dict[str, int]]:
    """Instances bought by every integer plan that satisfies all hard rules (exhaustive)."""
    snap = problem.snapshot
    d = snap.deployments[0]
    ks = list(range(len(problem.candidates)))
    demand = {s.client_region: s.rps for s in problem.slices}
    total = sum(demand.values())
    edges = {(problem.slices[r.slice].client_region, k) for k in ks for r in problem.routes_of[k]}
    cap_of = {k: problem.routes_of[k][0].capacity_rps * HEADROOM for k in ks if problem.routes_of[k]}
    bounds = [
        range(problem.pool_of[k].max_instances * problem.pool_of[k].gpus // problem.candidates[k].tp + 1)
        for k in ks
    ]
    out = []
    for n in itertools.product(*bounds):
        gpus: dict[str, int] = defaultdict(int)
        for k, c in zip(ks, n):
            gpus[problem.pool_of[k].id] += c * problem.candidates[k].tp
        inst = {p: math.ceil(g / snap.pool_by_id[p].gpus) for p, g in gpus.items()}
        if any(i > snap.pool_by_id[p].max_instances for p, i in inst.items()):
            continue
        if sum(n) < d.constraints.min_replicas:
            continue
        if d.constraints.spread:
            per: dict[str, int] = defaultdict(int)
            for k, c in zip(ks, n):
                if c:
                    per[problem.domain(k)] += c
            if len(per) < 2 or any(sum(n) - v < d.constraints.spread_min_outside for v in per.values()):
                continue
        caps = {k: cap_of[k] * c for k, c in zip(ks, n) if c and k in cap_of}
        od = {k: v for k, v in caps.items() if not problem.pool_of[k].is_spot}
        if max_flow(demand, caps, edges) < total - 1e-7:
            continue
        if max_flow(demand, od, edges) < (1 - d.constraints.max_spot_share) * total - 1e-7:
            continue
        out.append(inst)
    return out


def lp_value(problem: Problem, with_cuts: bool) -> float | None:
    built = build_model(problem, range(len(problem.candidates)), cuts=with_cuts)
    out = run_cbc(built.prob, mip=False, time_limit_s=30, threads=1, gap_rel=1e-6)
    return out.objective


@pytest.mark.parametrize("seed", range(60))
def test_no_cut_removes_an_integer_feasible_plan(seed: int) -> None:
    snap, table = instance(seed)
    problem = compile_problem(snap, table.candidates)
    covers = instance_covers(problem)
    for inst in feasible_instances(problem):
        for cover in covers:
            lhs = sum(a * inst.get(pid, 0) for pid, a in cover.coefs.items())
            assert lhs >= cover.rhs, (cover, inst)


def test_every_cut_family_is_generated_and_tightens_the_lp() -> None:
    families: set[str] = set()
    tighter = 0
    for seed in range(60):
        snap, table = instance(seed)
        problem = compile_problem(snap, table.candidates)
        covers = instance_covers(problem)
        families |= {str(c.key[1]) for c in covers}  # type: ignore[index]
        if not feasible_instances(problem):
            continue
        plain, cut = lp_value(problem, False), lp_value(problem, True)
        assert plain is not None and cut is not None
        assert cut >= plain - 1e-6  # adding rows can only raise a minimum
        tighter += cut > plain + 1e-6
    assert families == {"gpus", "replicas", "outside"}
    assert tighter >= 5
