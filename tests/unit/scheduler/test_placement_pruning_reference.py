"""The vectorised compile (problem.RouteTable) and pruning (pruning.py) give exactly what the
straightforward per-option versions give, on random synthetic fleets.

The references below are the plain loops the fast code replaced: routes from Candidate.best_point and
eligibility.meets_ttft per (option, slice); pruning as a heap merge of each route template's
price-sorted options. Prices are continuous, so $/rps ties (where only the tie order could differ)
do not occur.
"""

from __future__ import annotations

import heapq
import random
from collections import defaultdict
from collections.abc import Iterator, Set

import pytest

from scheduler.placement.eligibility import meets_ttft
from scheduler.placement.options import SolveOptions
from scheduler.placement.problem import Problem, compile_problem
from scheduler.placement.pruning import CandKey, initial_active
from scheduler.placement.synthetic import synthetic_fleet

SIZES = [(3, 20, 0), (5, 40, 1), (8, 60, 2), (12, 80, 3), (6, 120, 4), (10, 50, 5)]


def reference_routes(problem: Problem, k: int) -> list[tuple[int, float, float, float]]:
    c, d, region = problem.candidates[k], problem.deployment_of[k], problem.pool_of[k].region
    out = []
    for si in problem.slices_by_deployment.get(c.deployment, []):
        s = problem.slices[si]
        if s.shape not in c.perf:
            continue
        ms = problem.rtt.get(s.client_region, region)
        bp = c.best_point(s.shape, d.slo.ttft_p95_ms - ms)
        if bp is not None and meets_ttft(d, ms, bp.ttft_ms):
            out.append((si, bp.rps, ms, bp.ttft_ms))
    return out


def reference_active(problem: Problem, options: SolveOptions, current: Set[CandKey]) -> list[int]:
    active: set[int] = set()
    for d in problem.snapshot.deployments:
        ks = problem.cands_by_deployment.get(d.name, [])
        keep = {k for k in ks if problem.candidates[k].key in current}
        groups: dict[tuple[tuple[int, float], ...], list[int]] = defaultdict(list)
        for k in ks:
            groups[tuple((r.slice, r.capacity_rps) for r in problem.routes_of[k])].append(k)
        for g in groups.values():
            g.sort(key=lambda k: (problem.price_of[k], k))
        slice_groups: dict[int, list[tuple[float, list[int]]]] = defaultdict(list)
        for g in groups.values():
            for r in problem.routes_of[g[0]]:
                slice_groups[r.slice].append((r.capacity_rps, g))
        for si in problem.slices_by_deployment.get(d.name, []):
            need = problem.slices[si].rps
            if need <= 0:
                continue
            _take(problem, keep, _merge(problem, slice_groups[si], True), options.keep_per_slice, 2.0 * need)
            share = d.constraints.max_spot_share
            if share < 1.0:
                at_least = max(2, options.keep_per_slice // 2)
                _take(problem, keep, _merge(problem, slice_groups[si], False), at_least, 1.5 * need * (1 - share))
        keep.update(sorted(ks, key=lambda k: (problem.price_of[k], k))[:2])
        if d.constraints.spread:
            best: dict[str, list[tuple[float, int]]] = defaultdict(list)
            for k in ks:
                if problem.routes_of[k]:
                    top = max(r.capacity_rps for r in problem.routes_of[k])
                    best[problem.domain(k)].append((problem.price_of[k] / top, k))
            for items in sorted(best.values(), key=lambda items: min(items)[0])[:3]:
                keep.update(k for _, k in sorted(items)[: options.keep_per_slice])
        active |= keep
    return sorted(active)


def _merge(problem: Problem, groups: list[tuple[float, list[int]]], spot_ok: bool) -> Iterator[tuple[int, float]]:
    heap = []
    for gi, (cap, g) in enumerate(groups):
        members = [k for k in g if spot_ok or not problem.pool_of[k].is_spot]
        if members:
            heap.append((problem.price_of[members[0]] / cap, gi, 0, cap, members))
    heapq.heapify(heap)
    while heap:
        _, gi, pos, cap, members = heapq.heappop(heap)
        yield members[pos], cap
        if pos + 1 < len(members):
            heapq.heappush(heap, (problem.price_of[members[pos + 1]] / cap, gi, pos + 1, cap, members))


def _take(problem: Problem, keep: set[int], stream: Iterator[tuple[int, float]], at_least: int, cover: float) -> None:
    taken, covered = 0, 0.0
    for k, cap in stream:
        if taken >= at_least and covered >= cover:
            return
        keep.add(k)
        taken += 1
        pool = problem.pool_of[k]
        covered += pool.max_instances * pool.gpus // problem.candidates[k].tp * problem.headroom(k) * cap


@pytest.mark.parametrize(("deployments", "pools", "seed"), SIZES)
def test_routes_match_the_per_option_rules(deployments: int, pools: int, seed: int) -> None:
    fleet = synthetic_fleet(deployments, pools, seed=seed)
    problem = compile_problem(fleet.snapshot, fleet.table.candidates)
    assert problem.candidates
    for k in range(len(problem.candidates)):
        assert [tuple(r) for r in problem.routes_of[k]] == reference_routes(problem, k)
    # Options without any route are dropped (every synthetic deployment has demand).
    kept = {c.key for c in problem.candidates}
    dropped = [c for c in fleet.table.candidates if c.key not in kept]
    for c in dropped[:50]:
        single = compile_problem(fleet.snapshot, [c])
        assert not single.candidates


@pytest.mark.parametrize(("deployments", "pools", "seed"), SIZES)
@pytest.mark.parametrize("keep_per_slice", [1, 3, 6])
def test_pruning_keeps_what_the_reference_keeps(deployments: int, pools: int, seed: int, keep_per_slice: int) -> None:
    fleet = synthetic_fleet(deployments, pools, seed=seed)
    problem = compile_problem(fleet.snapshot, fleet.table.candidates)
    rng = random.Random(seed)
    current = {problem.candidates[k].key for k in rng.sample(range(len(problem.candidates)), 5)}
    opts = SolveOptions(prune_above=0, keep_per_slice=keep_per_slice)
    for cur in (set(), current):
        got = initial_active(problem, opts, cur)
        assert got == reference_active(problem, opts, cur)
        assert len(got) < len(problem.candidates)
