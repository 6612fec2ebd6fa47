"""cheapest_single_type: llmfleet's MILP, but each deployment on one GPU type (accelerator) only.

The "best single GPU type" reference of the Mélange paper, made multi-region: for each deployment,
every accelerator is tried alone (all its pools, regions, markets and tensor-parallel sizes, spot within
the cap, min_replicas and spread enforced by the MILP), with the full-quality variant; the cheapest
wins. Deployments are placed one after another (largest first), each using the quota the previous
ones left. It measures what heterogeneity alone is worth.
"""

from __future__ import annotations

from collections import defaultdict
from dataclasses import replace

from scheduler.placement.baselines.common import (
    BaselineResult,
    Placed,
    Quotas,
    full_quality,
    infeasible,
    instances_of,
    plan_placed,
    sub_snapshot,
)
from scheduler.placement.candidates import Candidate, CandidateTable
from scheduler.placement.options import SolveOptions
from scheduler.placement.rtt import RttMatrix
from scheduler.placement.snapshot import Snapshot
from scheduler.placement.solver import solve

NAME = "cheapest_single_type"


def cheapest_single_type(
    snapshot: Snapshot, table: CandidateTable, options: SolveOptions | None = None
) -> BaselineResult:
    base = options or SolveOptions()
    opts = replace(base, time_limit_s=min(base.time_limit_s, 5.0))
    rtt = RttMatrix.build(snapshot.regions, snapshot.rtt_overrides_ms)
    quotas = Quotas(snapshot.pools)
    by_dep = full_quality(table, snapshot)
    total = 0.0
    placed: list[Placed] = []
    per_dep: dict[str, float] = {}
    for d in sorted(snapshot.deployments, key=lambda d: -d.total_rps):
        by_acc: dict[str, list[Candidate]] = defaultdict(list)
        for k in by_dep.get(d.name, []):
            by_acc[snapshot.pool_by_id[k.pool].accelerator].append(k)
        ranked = sorted((_bound(snapshot, rtt, d.name, ks), acc) for acc, ks in by_acc.items())
        best: tuple[float, str, list[Placed], dict[str, int]] | None = None
        for lb, acc in ranked:
            if lb is None or (best is not None and lb >= best[0]):
                continue
            pools = quotas.restricted(snapshot, sorted({k.pool for k in by_acc[acc]}))
            plan = solve(sub_snapshot(snapshot, d, pools), CandidateTable(tuple(by_acc[acc])), opts)
            if plan.ok and plan.cost_per_hour is not None and (best is None or plan.cost_per_hour < best[0]):
                best = (plan.cost_per_hour, acc, list(plan_placed(plan)), instances_of(plan))
        if best is None:
            return infeasible(
                NAME, f"{d.name}: no single GPU type meets its SLO and constraints within quotas"
            )
        for pid, n in best[3].items():
            quotas.take(pid, n)
        total += best[0]
        per_dep[d.name] = best[0]
        placed += best[2]
    return BaselineResult(
        NAME, total, "each deployment on its cheapest single GPU type", tuple(placed), per_dep
    )


def _bound(snapshot: Snapshot, rtt: RttMatrix, dep: str, ks: list[Candidate]) -> float | None:
    """Cheapest $ per rps of any option times the demand: rules types out without solving."""
    d = snapshot.deployment_by_name[dep]
    h = snapshot.headroom_of(d)
    total = 0.0
    for s in d.demand:
        if s.rps <= 0:
            continue
        best = None
        for k in ks:
            pool = snapshot.pool_by_id[k.pool]
            p = k.best_point(s.shape, d.slo.ttft_p95_ms - rtt.get(s.client_region, pool.region))
            if p is not None:
                v = k.tp * pool.gpu_price_per_hour / (h * p.rps)
                best = v if best is None else min(best, v)
        if best is None:
            return None
        total += best * s.rps
    return total
