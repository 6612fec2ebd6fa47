"""The vectorised pricing (pricing.py) gives what pricing one option at a time gives, on random fleets.

The reference below is the straightforward per-option version the numpy code replaced: every left-out
option's budget and gains from the duals of the restricted LP, with the degenerate duals of unused
pools replaced when the pool's active options still price out. It is checked with the LP's own duals
and with random duals on every row (so every term — spot cap, per-pool cuts, min replicas, spread,
packing, cover-cut credit, churn — takes part), and the Lagrangian bound computed from both must agree.
"""

from __future__ import annotations

import random
from collections import defaultdict

import pytest

from scheduler.placement.cbc import run_cbc
from scheduler.placement.milp import Built, build_model
from scheduler.placement.options import SolveOptions
from scheduler.placement.pricing import Priced, PricedSet, lagrangian_bound, most_violated, price_out
from scheduler.placement.problem import Problem, compile_problem
from scheduler.placement.pruning import initial_active
from scheduler.placement.synthetic import synthetic_fleet

EPS = 1e-7
SIZES = [(3, 20, 0), (5, 40, 1), (8, 60, 2), (6, 120, 4), (10, 50, 5)]


def reference_price_out(
    problem: Problem, built: Built, candidates: list[int], churn_weight: float
) -> tuple[list[Priced], list[Priced]]:
    """The options that price out (the LP's duals, repaired) and the set of the second certificate:
    every unused pool at full GPU value with its mu at 0, its active options priced like left-out ones."""
    rows = built.rows
    pi = {s: c.pi or 0.0 for s, c in rows.get("demand", {}).items()}
    theta = {d: c.pi or 0.0 for d, c in rows.get("spot", {}).items()}
    rho = {d: c.pi or 0.0 for d, c in rows.get("minrep", {}).items()}
    mu = {key: c.pi or 0.0 for key, c in rows.get("vub_dp", {}).items()}
    for key, c in rows.get("spot_pool", {}).items():
        mu[key] = mu.get(key, 0.0) + (c.pi or 0.0)
    phi_total: dict[str, float] = defaultdict(float)
    phi: dict[tuple[str, str], float] = {}
    for (dep, dom), c in rows.get("spread", {}).items():
        phi[(dep, dom)] = c.pi or 0.0
        phi_total[dep] += c.pi or 0.0
    alpha = {p: c.pi or 0.0 for p, c in rows.get("pack", {}).items()}
    credit: dict[str, float] = defaultdict(float)
    for key, c in rows.get("icover", {}).items():
        if c.pi:
            for pid, a in built.covers[key].coefs.items():
                credit[pid] += c.pi * a
    unused = {p for p, v in built.inst.items() if (v.value() or 0.0) < 1e-9}
    alpha_a, mu_a = dict(alpha), dict(mu)
    for pid in sorted(unused):
        pool = problem.snapshot.pool_by_id[pid]
        alpha_a[pid] = -(pool.price_per_hour - credit.get(pid, 0.0)) / pool.gpus
        mu_a = {key: (0.0 if key[1] == pid else v) for key, v in mu_a.items()}
    for pid in sorted(unused):
        pool = problem.snapshot.pool_by_id[pid]
        trial_alpha = {**alpha, pid: -(pool.price_per_hour - credit.get(pid, 0.0)) / pool.gpus}
        trial_mu = {key: (0.0 if key[1] == pid else v) for key, v in mu.items()}
        ks = [k for k in built.active if problem.pool_of[k].id == pid]
        args = (pi, theta, rho, trial_mu, phi, phi_total, trial_alpha, credit, churn_weight)
        if all(_price(problem, k, *args) is None for k in ks):
            alpha, mu = trial_alpha, trial_mu
        else:  # keep mu; lower alpha as far as inst[p]'s reduced cost allows
            charge = sum(
                -c.get(built.inst[pid], 0.0) * c.pi
                for (_, p), c in rows.get("vub_dp", {}).items()
                if p == pid and c.pi
            )
            limit = (pool.price_per_hour - credit.get(pid, 0.0) + charge) / pool.gpus
            alpha = {**alpha, pid: min(alpha[pid], -limit)}
    out, alt = [], []
    for k in candidates:
        p = _price(problem, k, pi, theta, rho, mu, phi, phi_total, alpha, credit, churn_weight)
        if p is not None:
            out.append(p)
    for k in sorted(set(candidates) | {k for k in built.active if problem.pool_of[k].id in unused}):
        p = _price(problem, k, pi, theta, rho, mu_a, phi, phi_total, alpha_a, credit, churn_weight)
        if p is not None:
            alt.append(p)
    return out, alt


def _price(  # type: ignore[no-untyped-def]
    problem, k, pi, theta, rho, mu, phi, phi_total, alpha, credit, churn_weight
):
    cand, pool = problem.candidates[k], problem.pool_of[k]
    max_replicas = pool.max_instances * pool.gpus // cand.tp
    if max_replicas == 0:
        return None
    dep = cand.deployment
    outside = (pool.price_per_hour - credit.get(pool.id, 0.0)) / pool.gpus
    gpu_value = -alpha[pool.id] if pool.id in alpha else outside
    spread_credit = phi_total.get(dep, 0.0) - phi.get((dep, problem.domain(k)), 0.0)
    budget = churn_weight * problem.replica_price(k) + cand.tp * gpu_value - rho.get(dep, 0.0) - spread_credit
    shift = (theta.get(dep, 0.0) if pool.is_spot else 0.0) + mu.get((dep, pool.id), 0.0)
    h = problem.headroom(k)
    per_replica = max(budget, 0.0)
    tol = EPS * max(1.0, cand.tp * gpu_value)
    gains = []
    for r in problem.routes_of[k]:
        if r.slice in pi:
            g = pi[r.slice] + shift - per_replica / (h * r.capacity_rps)
            if g * h * r.capacity_rps > tol:
                gains.append((r.slice, g))
    if gains or budget < -tol:
        return Priced(k, budget, tuple(gains), max_replicas)
    return None


def reference_bound(problem: Problem, lp_objective: float, priced: tuple[list[Priced], ...]) -> float:
    return lp_objective - min(_correction(problem, priced[0]), _correction(problem, priced[1]))


def _correction(problem: Problem, priced: list[Priced]) -> float:
    best: dict[int, float] = defaultdict(float)
    loss = 0.0
    for p in priced:
        for s, g in p.gains:
            best[s] = max(best[s], g)
        if p.budget < 0:
            loss += -p.budget * p.max_replicas
    return loss + sum(problem.slices[s].rps * g for s, g in best.items())


def _restricted_lp(deployments: int, pools: int, seed: int) -> tuple[Problem, Built, list[int], float]:
    fleet = synthetic_fleet(deployments, pools, seed=seed)
    problem = compile_problem(fleet.snapshot, fleet.table.candidates)
    active = initial_active(problem, SolveOptions(prune_above=0, keep_per_slice=2), set())
    built = build_model(problem, active)
    outcome = run_cbc(built.prob, mip=False, time_limit_s=30, threads=1, gap_rel=1e-6)
    assert outcome.objective is not None
    left_out = sorted(set(range(len(problem.candidates))) - set(active))
    assert left_out
    return problem, built, left_out, outcome.objective


def _same_sets(got: PricedSet, want: tuple[list[Priced], list[Priced]]) -> None:
    _same(got.items(), want[0])
    # The second certificate exists when some unused pool's active options priced out at full value.
    _same(got.alternative.items() if got.alternative is not None else want[0], want[1])


def _same(got: list[Priced], want: list[Priced]) -> None:
    assert [p.cand for p in got] == [p.cand for p in want]
    for g, w in zip(got, want):
        assert g.max_replicas == w.max_replicas
        assert g.budget == pytest.approx(w.budget, rel=1e-12, abs=1e-12)
        assert [s for s, _ in g.gains] == [s for s, _ in w.gains]
        assert [v for _, v in g.gains] == pytest.approx([v for _, v in w.gains], rel=1e-12, abs=1e-12)
        assert g.violation == pytest.approx(w.violation, rel=1e-12, abs=1e-12)


@pytest.mark.parametrize(("deployments", "pools", "seed"), SIZES)
def test_pricing_with_the_lp_duals_matches_the_reference(deployments: int, pools: int, seed: int) -> None:
    problem, built, left_out, lp = _restricted_lp(deployments, pools, seed)
    for churn in (0.0, 0.25):
        got = price_out(problem, built, set(left_out), churn)
        want = reference_price_out(problem, built, left_out, churn)
        _same_sets(got, want)
        bound = lagrangian_bound(problem, lp, got)
        assert bound == pytest.approx(reference_bound(problem, lp, want), rel=1e-9)
        assert bound <= lp + 1e-9


@pytest.mark.parametrize(("deployments", "pools", "seed"), SIZES)
def test_pricing_with_random_duals_matches_the_reference(deployments: int, pools: int, seed: int) -> None:
    problem, built, left_out, lp = _restricted_lp(deployments, pools, seed)
    rng = random.Random(seed)
    families = {"demand": (0.0, 5.0), "minrep": (0.0, 3.0), "spread": (0.0, 2.0), "icover": (0.0, 4.0)}
    nonpositive = ("spot", "spot_pool", "vub_dp", "pack")
    seen = set()
    for family, rows in built.rows.items():
        for c in rows.values():
            if family in families:
                c.pi = rng.uniform(*families[family]) if rng.random() < 0.7 else 0.0
            elif family in nonpositive:
                c.pi = -rng.uniform(0.0, 2.0) if rng.random() < 0.7 else 0.0
            seen.add(family)
    assert {"demand", "minrep", "pack", "icover"} <= seen
    for churn in (0.0, 0.25):
        got = price_out(problem, built, set(left_out), churn)
        want = reference_price_out(problem, built, left_out, churn)
        assert want[0]  # random duals make some options attractive
        _same_sets(got, want)
        bound = lagrangian_bound(problem, lp, got)
        assert bound == pytest.approx(reference_bound(problem, lp, want), rel=1e-9)


def test_most_violated_takes_the_worst_per_deployment() -> None:
    problem, built, left_out, _ = _restricted_lp(6, 60, 3)
    for c in built.rows["demand"].values():
        c.pi = (c.pi or 0.0) + 3.0  # make demand expensive: many options price out
    got = price_out(problem, built, set(left_out), 0.0)
    items = got.items()
    by_dep: dict[str, list[Priced]] = defaultdict(list)
    for p in items:
        by_dep[problem.candidates[p.cand].deployment].append(p)
    assert any(len(v) > 2 for v in by_dep.values())
    want = set()
    for v in by_dep.values():
        v.sort(key=lambda p: (-p.violation, p.cand))
        want.update(p.cand for p in v[:2])
    assert most_violated(problem, got, 2) == want
