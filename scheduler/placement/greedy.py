"""A fast constructive plan: a guaranteed starting point for CBC and a fallback when time runs out.

CBC's own primal heuristics can fail to find any plan on large models before the time limit (the
root LP alone may take seconds). This greedy builds one in milliseconds: hardest demand slices first,
each routed onto spare capacity of replicas already placed, then onto new replicas of the option with
the lowest marginal $ per rps (GPUs left over in an instance already bought are free), within quotas
and the spot cap; then spare replicas for min_replicas and spread. It may fail (returns None) when
quotas are tight; it never returns a plan that breaks a constraint.
"""

from __future__ import annotations

import math
from collections import defaultdict
from collections.abc import Iterable
from dataclasses import dataclass

import numpy as np

from scheduler.placement.eligibility import pool_spot_cap
from scheduler.placement.problem import Problem
from scheduler.placement.pruning import option_arrays
from scheduler.placement.snapshot import Deployment, Pool

EPS = 1e-9


@dataclass
class GreedyPlan:
    counts: dict[int, int]
    flows: dict[tuple[int, int], float]


class _Fleet:
    """GPUs used per pool, and what one more replica would cost."""

    def __init__(self, problem: Problem) -> None:
        self.problem = problem
        self.gpus: dict[str, int] = defaultdict(int)

    def marginal(self, k: int) -> float | None:
        pool = self.problem.pool_of[k]
        tp = self.problem.candidates[k].tp
        before = math.ceil(self.gpus[pool.id] / pool.gpus)
        after = math.ceil((self.gpus[pool.id] + tp) / pool.gpus)
        if after > pool.max_instances:
            return None
        return (after - before) * pool.price_per_hour

    def add(self, k: int) -> None:
        self.gpus[self.problem.pool_of[k].id] += self.problem.candidates[k].tp


@dataclass
class _SpotRoom:
    """What one deployment may still send to spot: in all (max_spot_share) and per spot pool with a known
    availability (eligibility.pool_spot_cap)."""

    left: float
    per_pool: dict[str, float]

    @classmethod
    def of(cls, deployment: Deployment, pools: Iterable[Pool], rps: float) -> _SpotRoom:
        caps = {p.id: cap * rps for p in pools if (cap := pool_spot_cap(deployment, p)) is not None}
        return cls(deployment.constraints.max_spot_share * rps, caps)

    def room(self, pool: Pool) -> float:
        """How much more traffic the pool may take from the deployment (inf on on-demand)."""
        if not pool.is_spot:
            return math.inf
        return min(self.left, self.per_pool.get(pool.id, math.inf))

    def take(self, pool: Pool, amount: float) -> None:
        if pool.is_spot:
            self.left -= amount
            if pool.id in self.per_pool:
                self.per_pool[pool.id] -= amount


def greedy_plan(problem: Problem, active: Iterable[int], widen: bool = True) -> GreedyPlan | None:
    """A plan using `active` options — and, when those run out of quota (`widen`), any option of the
    deployment, so pruning never leaves the MILP without a starting point."""
    fleet = _Fleet(problem)
    counts: dict[int, int] = defaultdict(int)
    flows: dict[tuple[int, int], float] = defaultdict(float)
    spare: dict[int, float] = defaultdict(float)  # replica-seconds per second left, per option
    by_dep: dict[str, list[int]] = defaultdict(list)
    for k in active:
        by_dep[problem.candidates[k].deployment].append(k)
    routes: dict[int, list[tuple[int, float]]] = defaultdict(list)  # slice -> (option, capacity)
    for ks in by_dep.values():
        for k in ks:
            for r in problem.routes_of[k]:
                routes[r.slice].append((k, r.capacity_rps))
    wide: dict[int, list[tuple[int, float]]] = {}

    def all_routes(dep: str, si: int) -> list[tuple[int, float]]:
        if si not in wide:
            # Every option's routes, from the route arrays (building Route tuples for a thousand pools'
            # options takes seconds); the same (option, capacity) pairs in the same order.
            ks = np.asarray(problem.cands_by_deployment.get(dep, []), dtype=np.int64)
            mine, cap = option_arrays(problem).capacity(dep, ks)
            for j, sj in enumerate(mine):
                has = cap[:, j] > 0
                wide.setdefault(sj, []).extend(zip(ks[has].tolist(), cap[has, j].tolist()))
        return wide.get(si, [])

    snap = problem.snapshot
    for d in sorted(snap.deployments, key=lambda d: -d.total_rps):
        slices = [si for si in problem.slices_by_deployment.get(d.name, []) if problem.slices[si].rps > 0]
        spot = _SpotRoom.of(d, snap.pools, sum(problem.slices[si].rps for si in slices))

        for si in sorted(slices, key=lambda si: len(routes[si])):
            need = problem.slices[si].rps
            options = routes[si]
            # 1. spare capacity of replicas already placed (cheapest first is irrelevant: it is paid for)
            for k, cap in options:
                if need <= EPS:
                    break
                if spare[k] <= EPS:
                    continue
                amount = min(need, spare[k] * cap, spot.room(problem.pool_of[k]))
                if amount <= EPS:
                    continue
                spot.take(problem.pool_of[k], amount)
                flows[(k, si)] += amount
                spare[k] -= amount / cap
                need -= amount
            # 2. new replicas, lowest marginal $ per rps first
            while need > EPS:
                best: tuple[float, int, float] | None = None
                for k, cap in options:
                    if spot.room(problem.pool_of[k]) <= EPS:
                        continue
                    cost = fleet.marginal(k)
                    if cost is None:
                        continue
                    h = problem.headroom(k)
                    usable = min(need, h * cap, spot.room(problem.pool_of[k]))
                    # Free GPUs still carry a small price so the choice between them stays sensible.
                    score = (cost if cost > 0 else 0.05 * problem.replica_price(k)) / usable
                    if best is None or score < best[0]:
                        best = (score, k, cap)
                if best is None:
                    if widen and options is routes[si]:
                        options = all_routes(d.name, si)
                        continue
                    return None
                _, k, cap = best
                fleet.add(k)
                counts[k] += 1
                h = problem.headroom(k)
                amount = min(need, h * cap, spot.room(problem.pool_of[k]))
                spot.take(problem.pool_of[k], amount)
                flows[(k, si)] += amount
                spare[k] += h - amount / cap
                need -= amount
        if not _spares(problem, fleet, counts, by_dep.get(d.name, []), d.name):
            if not (
                widen and _spares(problem, fleet, counts, problem.cands_by_deployment.get(d.name, []), d.name)
            ):
                return None
    return GreedyPlan(dict(counts), dict(flows))


def _spares(problem: Problem, fleet: _Fleet, counts: dict[int, int], ks: list[int], dep: str) -> bool:
    c = problem.snapshot.deployment_by_name[dep].constraints

    def cheapest(avoid: str | None) -> int | None:
        best: tuple[float, int] | None = None
        for k in ks:
            if avoid is not None and problem.domain(k) == avoid:
                continue
            cost = fleet.marginal(k)
            if cost is None:
                continue
            key = (cost if cost > 0 else 0.05 * problem.replica_price(k), k)
            if best is None or key < best:
                best = key
        return best[1] if best else None

    def add(k: int) -> None:
        fleet.add(k)
        counts[k] += 1

    # Spread first: a spare outside the most loaded domain also counts towards min_replicas.
    for _ in range(256):
        per_domain: dict[str, int] = defaultdict(int)
        for k in ks:
            if counts.get(k, 0):
                per_domain[problem.domain(k)] += counts[k]
        total = sum(per_domain.values())
        worst = max(per_domain, key=lambda f: per_domain[f], default=None)
        spread_ok = not c.spread or (
            worst is not None and total - per_domain[worst] >= c.spread_min_outside and len(per_domain) >= 2
        )
        if spread_ok and total >= c.min_replicas:
            return True
        k = cheapest(None if spread_ok else worst)
        if k is None:
            return False
        add(k)
    return False
