"""What every baseline shares: its result type, quota bookkeeping, sub-problems, and the spare replicas
it must add to honour min_replicas and spread (constraints the peers' own policies do not know about)."""

from __future__ import annotations

import math
from collections import defaultdict
from collections.abc import Iterable, Mapping
from dataclasses import dataclass, field, replace

from scheduler.placement.candidates import Candidate, CandidateTable
from scheduler.placement.eligibility import pool_allowed
from scheduler.placement.plan import Plan
from scheduler.placement.rtt import RttMatrix
from scheduler.placement.snapshot import Deployment, Pool, Snapshot

Placed = tuple[str, str, str, int, int]  # deployment, variant, pool, tp, replicas


@dataclass(frozen=True)
class BaselineResult:
    name: str
    cost_per_hour: float | None  # None: the policy cannot meet the constraints
    reason: str
    replicas: tuple[Placed, ...] = ()
    per_deployment: Mapping[str, float] = field(default_factory=dict)

    @property
    def ok(self) -> bool:
        return self.cost_per_hour is not None


def infeasible(name: str, reason: str) -> BaselineResult:
    return BaselineResult(name, None, reason)


class Quotas:
    """Instances still available per pool, shared by every deployment a baseline places in turn."""

    def __init__(self, pools: Iterable[Pool]) -> None:
        self.left: dict[str, int] = {p.id: p.max_instances for p in pools}

    def take(self, pool: str, instances: int) -> bool:
        if self.left.get(pool, 0) < instances:
            return False
        self.left[pool] -= instances
        return True

    def restricted(self, snapshot: Snapshot, pools: Iterable[str]) -> tuple[Pool, ...]:
        by_id = snapshot.pool_by_id
        return tuple(replace(by_id[p], max_instances=self.left.get(p, 0)) for p in pools)


def full_quality(table: CandidateTable, snapshot: Snapshot) -> dict[str, list[Candidate]]:
    """Per deployment, the options of its full-quality variant: the peers do not choose quantisation."""
    out: dict[str, list[Candidate]] = defaultdict(list)
    for c in table.candidates:
        d = snapshot.deployment_by_name.get(c.deployment)
        if d is not None and c.variant == d.full_quality_variant.name:
            out[c.deployment].append(c)
    return out


def sub_snapshot(snapshot: Snapshot, deployment: Deployment, pools: tuple[Pool, ...]) -> Snapshot:
    """One deployment alone on some pools (baselines solve their sub-problems with the same MILP)."""
    return Snapshot(
        regions=snapshot.regions,
        pools=pools,
        deployments=(deployment,),
        rtt_overrides_ms=snapshot.rtt_overrides_ms,
        headroom=snapshot.headroom,
        failure_domain=snapshot.failure_domain,
    )


def plan_placed(plan: Plan) -> tuple[Placed, ...]:
    return tuple((r.deployment, r.variant, r.pool, r.tp, r.count) for r in plan.replicas)


def instances_of(plan: Plan) -> dict[str, int]:
    return {u.pool: u.instances for u in plan.pools}


def add_spares(
    snapshot: Snapshot,
    rtt: RttMatrix,
    d: Deployment,
    options: list[Candidate],
    placed: list[Placed],
    quotas: Quotas,
) -> tuple[float, list[Placed]] | None:
    """Cheapest whole instances to add so that d has min_replicas and, if asked, spread.

    A spare goes on an option able to serve some of d's traffic within the SLO (a replica nobody can
    reach protects nothing), in a failure domain that lacks replicas. Returns the extra cost and the
    spares, or None when no option can supply them.
    """
    c = d.constraints
    kind = snapshot.failure_domain
    by_domain: dict[str, int] = defaultdict(int)
    for _, _, pid, _, count in placed:
        by_domain[snapshot.pool_by_id[pid].failure_domain(kind)] += count
    usable = [k for k in options if _reachable(snapshot, rtt, d, k)]
    extra_cost = 0.0
    spares: list[Placed] = []

    def cheapest(avoid: str | None) -> Candidate | None:
        best: tuple[float, Candidate] | None = None
        for k in usable:
            pool = snapshot.pool_by_id[k.pool]
            if avoid is not None and pool.failure_domain(kind) == avoid:
                continue
            if quotas.left.get(pool.id, 0) < 1:
                continue
            price = pool.price_per_hour  # a spare is a whole instance
            if best is None or price < best[0]:
                best = (price, k)
        return best[1] if best else None

    def add(k: Candidate) -> None:
        nonlocal extra_cost
        pool = snapshot.pool_by_id[k.pool]
        quotas.take(pool.id, 1)
        extra_cost += pool.price_per_hour
        spares.append((d.name, k.variant, k.pool, k.tp, 1))
        by_domain[pool.failure_domain(kind)] += 1

    # Spread first (a spare outside the most loaded domain also counts towards min_replicas).
    for _ in range(256):
        total = sum(by_domain.values())
        worst = max(by_domain, key=lambda f: by_domain[f], default=None)
        spread_ok = not c.spread or (
            worst is not None
            and total - by_domain[worst] >= c.spread_min_outside
            and sum(1 for f in by_domain if by_domain[f]) >= 2
        )
        if spread_ok and total >= c.min_replicas:
            return extra_cost, spares
        k = cheapest(None if spread_ok else worst)
        if k is None:
            return None
        add(k)
    return None


def _reachable(snapshot: Snapshot, rtt: RttMatrix, d: Deployment, k: Candidate) -> bool:
    pool = snapshot.pool_by_id.get(k.pool)
    if pool is None or not pool_allowed(d, pool) or pool.max_instances < 1:
        return False
    for s in d.demand:
        ms = rtt.get(s.client_region, pool.region)
        if k.best_point(s.shape, d.slo.ttft_p95_ms - ms) is not None:
            return True
    return False


def ceil_div(a: float, b: float) -> int:
    return max(0, math.ceil(a / b - 1e-9))
