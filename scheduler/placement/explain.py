"""Turning solver values into the plan's decisions, and a short reason for each."""

from __future__ import annotations

import math
from collections import defaultdict
from dataclasses import dataclass

from scheduler.placement.milp import Built
from scheduler.placement.plan import PoolUsage, ReplicaDecision, RoutingShare
from scheduler.placement.problem import Problem

IDLE = 0.05  # below this utilisation a replica is there for min_replicas / spread, not for traffic


@dataclass(frozen=True)
class Extracted:
    counts: dict[int, int]  # cand -> replicas
    flows: dict[tuple[int, int], float]  # (cand, slice) -> rps
    replicas: tuple[ReplicaDecision, ...]
    routing: tuple[RoutingShare, ...]
    pools: tuple[PoolUsage, ...]
    cost_per_hour: float
    reasons: tuple[str, ...]


def extract(problem: Problem, built: Built) -> Extracted:
    counts = {k: int(round(v.value() or 0.0)) for k, v in built.n.items()}
    counts = {k: c for k, c in counts.items() if c > 0}
    flows = {key: v.value() or 0.0 for key, v in built.y.items()}
    flows = {key: f for key, f in flows.items() if f > 1e-9}
    return from_values(problem, counts, flows)


def extract_nothing(problem: Problem) -> Extracted:
    return from_values(problem, {}, {})


def from_values(problem: Problem, counts: dict[int, int], flows: dict[tuple[int, int], float]) -> Extracted:
    snap = problem.snapshot
    gpus: dict[str, int] = defaultdict(int)
    for k, c in counts.items():
        gpus[problem.pool_of[k].id] += c * problem.candidates[k].tp
    pools: list[PoolUsage] = []
    cost = 0.0
    for pid in sorted(gpus):
        pool = snap.pool_by_id[pid]
        # Power-of-two TP sizes dividing the instance pack without waste: ceil is exact.
        inst = math.ceil(gpus[pid] / pool.gpus - 1e-9)
        pools.append(PoolUsage(pid, inst, gpus[pid], inst * pool.price_per_hour))
        cost += inst * pool.price_per_hour
    load: dict[int, float] = defaultdict(float)
    routed: dict[int, dict[str, float]] = defaultdict(lambda: defaultdict(float))
    worst: dict[int, float] = defaultdict(float)
    caps = {(k, r.slice): r for k in counts for r in problem.routes_of[k]}
    share: dict[tuple[str, str, str], float] = defaultdict(float)
    for (k, si), f in flows.items():
        r = caps.get((k, si))
        if r is None:
            continue
        s = problem.slices[si]
        load[k] += f / r.capacity_rps
        routed[k][s.client_region] += f
        worst[k] = max(worst[k], r.rtt_ms + r.ttft_ms)
        share[(s.deployment, s.client_region, problem.pool_of[k].id)] += f
    demand: dict[tuple[str, str], float] = defaultdict(float)
    for s in problem.slices:
        demand[(s.deployment, s.client_region)] += s.rps
    routing = tuple(
        RoutingShare(dep, client, pid, rps / demand[(dep, client)], rps)
        for (dep, client, pid), rps in sorted(share.items())
        if demand[(dep, client)] > 0
    )
    replicas = tuple(
        sorted(
            (_decision(problem, k, c, load[k], routed[k], worst[k]) for k, c in counts.items()),
            key=lambda r: (r.deployment, r.pool, r.variant, r.tp),
        )
    )
    reasons = tuple(_deployment_summary(problem, counts, flows, d.name) for d in snap.deployments)
    return Extracted(counts, flows, replicas, routing, tuple(pools), cost, reasons)


def _decision(
    problem: Problem, k: int, count: int, load: float, routed: dict[str, float], worst_ms: float
) -> ReplicaDecision:
    cand = problem.candidates[k]
    pool = problem.pool_of[k]
    d = problem.deployment_of[k]
    util = load / count
    where = f"{pool.accelerator}x{cand.tp} {pool.market} in {pool.region}"
    if util < IDLE:
        why = f"{where}: held for min_replicas/spread (carries {util:.0%} load)"
    else:
        per_rps = problem.replica_price(k) * count / max(sum(routed.values()), 1e-9)
        clients = ", ".join(f"{c} {rps:.2f} rps" for c, rps in sorted(routed.items()))
        why = (
            f"{where}: serves {clients} at ${per_rps:.3f} per rps-hour, load {util:.0%} of capacity; "
            f"worst RTT+TTFT {worst_ms:.0f} ms <= SLO {d.slo.ttft_p95_ms:g} ms"
        )
    return ReplicaDecision(cand.deployment, cand.variant, cand.pool, cand.tp, count, util, why)


def _deployment_summary(
    problem: Problem, counts: dict[int, int], flows: dict[tuple[int, int], float], dep: str
) -> str:
    d = problem.snapshot.deployment_by_name[dep]
    mine = {k: c for k, c in counts.items() if problem.candidates[k].deployment == dep}
    total = sum(mine.values())
    if total == 0:
        return f"{dep}: no replicas (no demand and min_replicas 0)"
    gpu_cost = sum(problem.replica_price(k) * c for k, c in mine.items())
    variants = sorted({problem.candidates[k].variant for k in mine})
    deltas = ", ".join(f"{v} (quality -{d.variant(v).quality_delta:g})" for v in variants)
    rps = sum(s.rps for s in problem.slices if s.deployment == dep)
    spot = sum(
        f
        for (k, _), f in flows.items()
        if problem.candidates[k].deployment == dep and problem.pool_of[k].is_spot
    )
    domains = sorted({problem.domain(k) for k in mine})
    c = d.constraints
    parts = [f"{dep}: {total} replicas, ${gpu_cost:.2f}/h of GPUs, variants {deltas}"]
    if c.max_quality_drop is not None:
        parts.append(f"quality budget {c.max_quality_drop:g}")
    if rps > 0:
        parts.append(f"spot serves {spot / rps:.0%} of traffic (cap {c.max_spot_share:.0%})")
    parts.append(f"failure domains {', '.join(domains)}" + (" (spread required)" if c.spread else ""))
    if total <= c.min_replicas:
        parts.append(f"replica count set by min_replicas {c.min_replicas}")
    return "; ".join(parts)
