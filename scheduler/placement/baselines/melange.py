"""Mélange (Griggs et al., arXiv 2404.14527), rendered fairly for a multi-region fleet.

Mélange picks the cheapest heterogeneous mix of GPU types for one service in one place: request-size
buckets are sliced and assigned to GPU types by an ILP that minimises cost subject to each GPU's load
staying within its SLO-constrained capacity. We solve exactly that problem with llmfleet's own MILP
(which is its generalisation), restricted the way Mélange is: separately for each client region,
over the pools of the single region that gives that client region the cheapest Mélange solution among
the regions meeting its SLO; no sharing of replicas across client regions; the full-quality variant
only. Generous to it: infinitely fine slices (continuous routing), the same performance model and
headroom, spot pools allowed within the deployment's spot cap, and any tensor-parallel size.
min_replicas and spread, which Mélange does not know, are met by adding the cheapest spare instances.
"""

from __future__ import annotations

from collections import defaultdict
from dataclasses import replace

from scheduler.placement.baselines.common import (
    BaselineResult,
    Placed,
    Quotas,
    add_spares,
    full_quality,
    infeasible,
    instances_of,
    plan_placed,
    sub_snapshot,
)
from scheduler.placement.candidates import Candidate, CandidateTable
from scheduler.placement.eligibility import pool_allowed
from scheduler.placement.options import SolveOptions
from scheduler.placement.rtt import RttMatrix
from scheduler.placement.snapshot import Constraints, Deployment, Snapshot
from scheduler.placement.solver import solve

NAME = "melange"


def melange(snapshot: Snapshot, table: CandidateTable, options: SolveOptions | None = None) -> BaselineResult:
    opts = replace(
        options or SolveOptions(),
        prune=False,
        time_limit_s=min((options or SolveOptions()).time_limit_s, 5.0),
    )
    rtt = RttMatrix.build(snapshot.regions, snapshot.rtt_overrides_ms)
    quotas = Quotas(snapshot.pools)
    by_dep = full_quality(table, snapshot)
    total = 0.0
    placed: list[Placed] = []
    per_dep: dict[str, float] = {}
    for d in sorted(snapshot.deployments, key=lambda d: -d.total_rps):
        cands = [k for k in by_dep.get(d.name, []) if pool_allowed(d, snapshot.pool_by_id[k.pool])]
        cost = 0.0
        mine: list[Placed] = []
        for client in d.client_regions:
            result = _client_region(snapshot, rtt, d, client, cands, quotas, opts)
            if isinstance(result, str):
                return infeasible(NAME, f"{d.name}, clients in {client}: {result}")
            cost += result[0]
            mine += result[1]
        spares = add_spares(snapshot, rtt, d, cands, mine, quotas)
        if spares is None:
            return infeasible(NAME, f"{d.name}: cannot add the replicas min_replicas/spread require")
        cost += spares[0]
        mine += spares[1]
        total += cost
        per_dep[d.name] = cost
        placed += mine
    return BaselineResult(
        NAME,
        total,
        "per client region: GPU-mix ILP in the cheapest single region meeting the SLO",
        tuple(placed),
        per_dep,
    )


def _client_region(
    snapshot: Snapshot,
    rtt: RttMatrix,
    d: Deployment,
    client: str,
    cands: list[Candidate],
    quotas: Quotas,
    opts: SolveOptions,
) -> tuple[float, list[Placed]] | str:
    demand = tuple(s for s in d.demand if s.client_region == client and s.rps > 0)
    if not demand:
        return 0.0, []
    alone = replace(
        d,
        demand=demand,
        constraints=Constraints(
            min_replicas=0,
            spread=False,
            max_spot_share=d.constraints.max_spot_share,
            max_spot_pool_share=d.constraints.max_spot_pool_share,
            max_quality_drop=d.constraints.max_quality_drop,
        ),
    )
    by_region: dict[str, list[Candidate]] = defaultdict(list)
    for k in cands:
        by_region[snapshot.pool_by_id[k.pool].region].append(k)
    # Cheapest-first by a lower bound ($ per rps of the best option times the demand), so most regions
    # are ruled out without solving.
    bounds: list[tuple[float, str]] = []
    for region, ks in by_region.items():
        lb = _lower_bound(snapshot, rtt, alone, region, ks)
        if lb is not None:
            bounds.append((lb, region))
    if not bounds:
        return "no region meets the SLO"
    best: tuple[float, list[Placed], dict[str, int]] | None = None
    for lb, region in sorted(bounds):
        if best is not None and lb >= best[0]:
            break
        pools = quotas.restricted(snapshot, sorted({k.pool for k in by_region[region]}))
        sub = sub_snapshot(snapshot, alone, pools)
        plan = solve(sub, CandidateTable(tuple(by_region[region])), opts)
        if plan.ok and plan.cost_per_hour is not None and (best is None or plan.cost_per_hour < best[0]):
            best = (plan.cost_per_hour, list(plan_placed(plan)), instances_of(plan))
    if best is None:
        return "no region can serve it within the SLO, spot cap and quotas"
    for pid, n in best[2].items():
        quotas.take(pid, n)
    return best[0], best[1]


def _lower_bound(
    snapshot: Snapshot, rtt: RttMatrix, d: Deployment, region: str, ks: list[Candidate]
) -> float | None:
    h = snapshot.headroom_of(d)
    total = 0.0
    for s in d.demand:
        ms = rtt.get(s.client_region, region)
        best = None
        for k in ks:
            p = k.best_point(s.shape, d.slo.ttft_p95_ms - ms)
            if p is None:
                continue
            per_rps = k.tp * snapshot.pool_by_id[k.pool].gpu_price_per_hour / (h * p.rps)
            best = per_rps if best is None else min(best, per_rps)
        if best is None:
            return None
        total += best * s.rps
    return total
