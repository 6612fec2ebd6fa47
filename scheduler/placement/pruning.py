"""Choosing a small starting set of options per deployment, so big fleets solve in seconds.

Per demand slice we keep the cheapest options in $ per rps (GPU price x tp / (headroom x capacity)),
enough of them to cover the slice twice over within pool quotas, and at least `keep_per_slice`; then
the cheapest on-demand ones when spot is capped, the cheapest single replicas (min_replicas on little
traffic), the best options in other failure domains when spreading, and whatever runs now (re-plan).
Pruning is a heuristic for the MILP only: the pricing step (see pricing.py) re-admits any option the LP
relaxation would use, so the reported LP bound still covers every option.
"""

from __future__ import annotations

import heapq
from collections import defaultdict
from collections.abc import Iterator, Set

from scheduler.placement.options import SolveOptions
from scheduler.placement.problem import Problem

CandKey = tuple[str, str, str, int]


def initial_active(problem: Problem, options: SolveOptions, current: Set[CandKey]) -> list[int]:
    if not options.prune or len(problem.candidates) <= options.prune_above:
        return list(range(len(problem.candidates)))
    active: list[int] = []
    for d in problem.snapshot.deployments:
        ks = problem.cands_by_deployment.get(d.name, [])
        active.extend(_prune_deployment(problem, d.name, ks, options, current))
    return sorted(set(active))


def _prune_deployment(
    problem: Problem, dep: str, ks: list[int], options: SolveOptions, current: Set[CandKey]
) -> set[int]:
    d = problem.snapshot.deployment_by_name[dep]
    keep_n = options.keep_per_slice
    keep: set[int] = {k for k in ks if problem.candidates[k].key in current}
    # Options sharing a route template differ only by pool price: sort each group once.
    groups: dict[int, list[int]] = defaultdict(list)
    for k in ks:
        groups[id(problem.routes_of[k])].append(k)
    for g in groups.values():
        g.sort(key=problem.replica_price)
    slice_groups: dict[int, list[tuple[float, list[int]]]] = defaultdict(list)  # slice -> (capacity, group)
    for g in groups.values():
        for r in problem.routes_of[g[0]]:
            slice_groups[r.slice].append((r.capacity_rps, g))
    positive = [si for si in problem.slices_by_deployment.get(dep, []) if problem.slices[si].rps > 0]
    spot_capped = d.constraints.max_spot_share < 1.0
    for si in positive:
        need = problem.slices[si].rps
        _take(problem, keep, _cheapest(problem, slice_groups[si], spot_ok=True), keep_n, 2.0 * need)
        if spot_capped:
            _take(
                problem,
                keep,
                _cheapest(problem, slice_groups[si], spot_ok=False),
                max(2, keep_n // 2),
                1.5 * need * (1.0 - d.constraints.max_spot_share),
            )
    # Cheapest single replicas: what min_replicas costs when traffic is light.
    by_price = sorted(ks, key=problem.replica_price)
    keep.update(by_price[:2])
    if d.constraints.spread:
        _add_other_domains(problem, keep, ks, keep_n)
    return keep


def _cheapest(
    problem: Problem, groups: list[tuple[float, list[int]]], *, spot_ok: bool
) -> Iterator[tuple[int, float]]:
    """Options able to serve a slice, cheapest $/rps first, with their capacity on it."""
    heap: list[tuple[float, int, int, float]] = []  # (score, group index, position, capacity)
    for gi, (cap, g) in enumerate(groups):
        pos = _next_pos(problem, g, 0, spot_ok)
        if pos is not None:
            heapq.heappush(heap, (problem.replica_price(g[pos]) / cap, gi, pos, cap))
    while heap:
        _, gi, pos, cap = heapq.heappop(heap)
        g = groups[gi][1]
        yield g[pos], cap
        nxt = _next_pos(problem, g, pos + 1, spot_ok)
        if nxt is not None:
            heapq.heappush(heap, (problem.replica_price(g[nxt]) / cap, gi, nxt, cap))


def _next_pos(problem: Problem, g: list[int], start: int, spot_ok: bool) -> int | None:
    for i in range(start, len(g)):
        if spot_ok or not problem.pool_of[g[i]].is_spot:
            return i
    return None


def _take(
    problem: Problem, keep: set[int], stream: Iterator[tuple[int, float]], at_least: int, cover_rps: float
) -> None:
    taken, covered = 0, 0.0
    for k, cap in stream:
        if taken >= at_least and covered >= cover_rps:
            return
        keep.add(k)
        taken += 1
        pool = problem.pool_of[k]
        per_pool = pool.max_instances * pool.gpus // problem.candidates[k].tp
        covered += per_pool * problem.headroom(k) * cap


def _add_other_domains(problem: Problem, keep: set[int], ks: list[int], per_domain: int) -> None:
    """Spreading needs options outside the cheapest domain: keep the best few of the best three domains."""
    best: dict[str, list[tuple[float, int]]] = defaultdict(list)
    for k in ks:
        routes = problem.routes_of[k]
        if routes:
            score = problem.replica_price(k) / max(r.capacity_rps for r in routes)
            best[problem.domain(k)].append((score, k))
    ranked = sorted(best.values(), key=lambda items: min(items)[0])
    for items in ranked[:3]:
        items.sort()
        keep.update(k for _, k in items[:per_domain])
