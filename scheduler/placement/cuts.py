"""Instance cover cuts: valid inequalities on whole instances that tighten the LP relaxation.

The LP relaxation buys fractions of instances; every integer plan buys whole ones. Each cut below
says "deployment d needs at least b whole instances among the pools P where it has options", with
P, coefficients and b derived from d's own requirements, so every integer plan satisfies it (proofs
inline; tests/unit/scheduler/test_placement_cuts.py checks them against brute-forced plans):

  icover[d, "gpus", q]  sum_{p in P_d} ceil(gpus(p)/q) inst[p] >= ceil(G_d / q)
      G_d = sum_s rps(s) * min_k tp(k) / (H cap(k,s)): the GPUs d's demand needs at least (each rps
      of slice s occupies at least that many GPUs on any option), or min_replicas x the smallest tp
      when larger. sum_p gpus(p) inst[p] >= GPUs used by d >= G_d; divide by q and round
      (Chvatal-Gomory: inst is a non-negative integer). One cut per distinct instance size q > 1.
  icover[d, "replicas"] sum_{p in P_d} inst[p] >= ceil(need_d / R_d)
      need_d replicas (min_replicas, or demand over the best capacity); one instance of p holds at
      most gpus(p) / min tp(d, p) of them, R_d the largest such number.
  icover[d, "outside", f] sum_{p in P_d, domain(p) != f} inst[p] >= ceil(m_d / R_d(not f))
      spread: m_d = spread_min_outside replicas outside every failure domain f.

The pools are those of *all* of d's options (not only the active ones), so the rows mean the same
whichever options the model holds; pricing.py credits their duals to the instances of pools the
model does not hold yet, which keeps its bound valid.
"""

from __future__ import annotations

import math
from collections.abc import Hashable
from dataclasses import dataclass

import numpy as np

from scheduler.placement.problem import Problem
from scheduler.placement.pruning import best_per_rps

EPS = 1e-9


@dataclass(frozen=True, slots=True)
class Cover:
    key: Hashable
    coefs: dict[str, int]  # pool id -> coefficient on inst[pool]
    rhs: int


def instance_covers(problem: Problem) -> list[Cover]:
    """All cover cuts of the problem, computed once per problem (they look at every option)."""
    cached = problem.derived.get("instance_covers")
    if cached is None:
        cached = problem.derived["instance_covers"] = _covers(problem)
    return cached  # type: ignore[return-value]


def _covers(problem: Problem) -> list[Cover]:
    out: list[Cover] = []
    for d in problem.snapshot.deployments:
        ks = problem.cands_by_deployment.get(d.name, [])
        if not ks:
            continue
        gpus_needed = _gpus_needed(problem, d.name, ks)
        pools: dict[str, int] = {}  # pool -> GPUs per instance
        min_tp: dict[str, int] = {}  # pool -> smallest tp of d there
        for k in ks:
            pool = problem.pool_of[k]
            pools[pool.id] = pool.gpus
            tp = problem.candidates[k].tp
            min_tp[pool.id] = min(min_tp.get(pool.id, tp), tp)
        per_instance = {pid: pools[pid] // min_tp[pid] for pid in pools}
        for q in sorted({g for g in pools.values() if g > 1} | {1}):
            rhs = math.ceil(gpus_needed / q - EPS)
            if rhs >= 1:
                out.append(Cover((d.name, "gpus", q), {pid: math.ceil(g / q) for pid, g in pools.items()}, rhs))
        c = d.constraints
        need = max(float(c.min_replicas), problem.replicas_needed.get(d.name, 0.0))
        if need > 0:
            rhs = math.ceil(need / max(per_instance.values()) - EPS)
            out.append(Cover((d.name, "replicas"), {pid: 1 for pid in pools}, max(1, rhs)))
        m = c.spread_min_outside
        if c.spread and m > 0:
            domain = {problem.pool_of[k].id: problem.domain(k) for k in ks}
            for f in sorted(set(domain.values())):
                outside = [pid for pid in pools if domain[pid] != f]
                if outside:
                    rhs = math.ceil(m / max(per_instance[pid] for pid in outside) - EPS)
                    out.append(Cover((d.name, "outside", f), {pid: 1 for pid in outside}, max(1, rhs)))
    return out


def _gpus_needed(problem: Problem, dep: str, ks: list[int]) -> float:
    """GPUs d occupies at least in any plan: each slice at its best GPUs per rps, or min_replicas
    replicas of the smallest tp."""
    tp = problem.derived.get("tp_array")
    if not isinstance(tp, np.ndarray):
        tp = problem.derived["tp_array"] = np.asarray([c.tp for c in problem.candidates], dtype=float)
    best = best_per_rps(problem, dep, tp)
    serve = sum(problem.slices[s].rps * v for s, v in best.items() if problem.slices[s].rps > 0)
    smallest = min(problem.candidates[k].tp for k in ks)
    return max(serve, problem.snapshot.deployment_by_name[dep].constraints.min_replicas * smallest)
