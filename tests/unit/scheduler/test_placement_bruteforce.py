"""The MILP matches an exhaustive search on small random instances, exactly.

The brute force enumerates every replica vector; routing feasibility is decided by max-flow (client
regions -> options, capacities in rps; one request bucket, so an option's capacity is the same for
every client that can reach it). With a spot cap, on-demand options alone must carry (1 - cap) of the
demand: augmenting paths never reduce flow into the sink, so max-flow over on-demand options first,
then the rest, decides it exactly.
"""

from __future__ import annotations

import itertools
import math
import random
from collections import defaultdict, deque

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
    SolveOptions,
    solve,
)
from scheduler.placement.problem import compile_problem

ARCH = ModelArch("m", 8, 32, 4096, 8, 128, 8192)
SHAPE = RequestShape(500, 100)
REGIONS = (Region("r0", "c", 40.7, -74.0), Region("r1", "c", 41.9, -87.6), Region("r2", "c", 51.5, -0.1))
HEADROOM = 0.8


def instance(seed: int) -> tuple[Snapshot, CandidateTable]:
    rng = random.Random(seed)
    pools = []
    for i in range(rng.randint(2, 3)):
        gpus = rng.choice((1, 2))
        spot = rng.random() < 0.4
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
                rng.randint(1, 4),
            )
        )
    clients = rng.sample(["r0", "r1", "r2"], k=rng.randint(1, 2))
    demand = tuple(DemandSlice(c, SHAPE, round(rng.uniform(1, 6), 2)) for c in clients)
    cons = Constraints(
        min_replicas=rng.randint(0, 2), spread=rng.random() < 0.3, max_spot_share=rng.choice((0.0, 0.5, 1.0))
    )
    d = Deployment("d", ARCH, (Variant("bf16", 2.0),), Slo(rng.choice((300.0, 400.0)), 50), demand, cons)
    options = []
    for p in pools:
        for tp in (1, 2):
            if p.gpus % tp == 0 and rng.random() < 0.8:
                options.append(
                    Candidate(
                        "d",
                        "bf16",
                        p.id,
                        tp,
                        {SHAPE: BucketPerf(round(rng.uniform(1, 5) * tp, 2), rng.uniform(150, 330))},
                    )
                )
    snap = Snapshot(REGIONS, tuple(pools), (d,), headroom=HEADROOM)
    return snap, CandidateTable(tuple(options))


def max_flow(demand: dict[str, float], caps: dict[int, float], edges: set[tuple[str, int]]) -> float:
    nodes = ["s", *(f"c{c}" for c in demand), *(f"k{k}" for k in caps), "t"]
    cap: dict[tuple[str, str], float] = defaultdict(float)
    adj: dict[str, set[str]] = defaultdict(set)

    def arc(a: str, b: str, c: float) -> None:
        cap[(a, b)] += c
        adj[a].add(b)
        adj[b].add(a)

    for c, rps in demand.items():
        arc("s", f"c{c}", rps)
    for k, c in caps.items():
        arc(f"k{k}", "t", c)
    for c, k in edges:
        if k in caps:
            arc(f"c{c}", f"k{k}", math.inf)
    flow = 0.0
    while True:
        parent: dict[str, str] = {"s": "s"}
        queue = deque(["s"])
        while queue and "t" not in parent:
            u = queue.popleft()
            for v in adj[u]:
                if v not in parent and cap[(u, v)] > 1e-12:
                    parent[v] = u
                    queue.append(v)
        if "t" not in parent:
            return flow
        path, v = [], "t"
        while v != "s":
            path.append((parent[v], v))
            v = parent[v]
        push = min(cap[e] for e in path)
        for a, b in path:
            cap[(a, b)] -= push
            cap[(b, a)] += push
        flow += push
    del nodes


def brute_force(snap: Snapshot, table: CandidateTable) -> float | None:
    problem = compile_problem(snap, table.candidates)
    d = snap.deployments[0]
    ks = list(range(len(problem.candidates)))
    demand = {s.client_region: s.rps for s in problem.slices}
    total = sum(demand.values())
    edges = {(problem.slices[r.slice].client_region, k) for k in ks for r in problem.routes_of[k]}
    cap_of = {k: problem.routes_of[k][0].capacity_rps * HEADROOM for k in ks if problem.routes_of[k]}
    # A spot cap of 0 means no spot replicas at all (not even idle spares).
    no_spot = d.constraints.max_spot_share == 0.0
    bounds = [
        range(
            1
            if (no_spot and problem.pool_of[k].is_spot)
            else problem.pool_of[k].max_instances * problem.pool_of[k].gpus // problem.candidates[k].tp + 1
        )
        for k in ks
    ]
    best = None
    for n in itertools.product(*bounds):
        gpus: dict[str, int] = defaultdict(int)
        for k, c in zip(ks, n):
            gpus[problem.pool_of[k].id] += c * problem.candidates[k].tp
        if any(
            math.ceil(g / snap.pool_by_id[p].gpus) > snap.pool_by_id[p].max_instances for p, g in gpus.items()
        ):
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
        cost = sum(
            math.ceil(g / snap.pool_by_id[p].gpus) * snap.pool_by_id[p].price_per_hour
            for p, g in gpus.items()
        )
        best = cost if best is None else min(best, cost)
    return best


def test_instances_cover_feasible_and_infeasible_cases() -> None:
    outcomes = [brute_force(*instance(seed)) is None for seed in range(40)]
    assert 5 <= sum(outcomes) <= 35


@pytest.mark.parametrize("seed", range(40))
def test_milp_matches_brute_force(seed: int) -> None:
    snap, table = instance(seed)
    expected = brute_force(snap, table)
    plan = solve(snap, table, SolveOptions(time_limit_s=60))
    if expected is None:
        assert plan.status == "infeasible"
        assert plan.binding
    else:
        assert plan.status == "optimal", plan.reasons
        assert plan.cost_per_hour == pytest.approx(expected, abs=1e-6)
        assert plan.stats["verified"] == "ok"
