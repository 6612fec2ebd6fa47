"""Pricing pruned options with the LP duals (column generation), and a bound that stays valid.

The restricted LP (over the active options) gives duals: pi[s] (demand), theta[d] (spot cap, <= 0),
rho[d] (min replicas), phi[d,f] (spread), alpha[p] (packing, <= 0) and mu[d,p] (the per-deployment
instance cut, <= 0). A left-out option k of deployment d in pool p (failure domain f) would bring
columns n[k], y[k,s]. Give every new row it creates (its cuts, a new pool's rows) dual 0 — always
allowed — and value a pool not yet in the model at its price per GPU less the duals of the instance
cover cuts that contain it (-alpha = (price - credit) / gpus, see cuts.py), so its instance column
prices out at exactly zero. Then

    budget(k) = c_n(k) + tp(k) * (-alpha[p]) - rho[d] - sum_{f' != f} phi[d,f']   ($/h per replica)
    w[s]      = pi[s] + theta[d] * spot(k) + mu[d,p]                             ($/h per rps of s)
    gain[k,s] = w[s] - budget(k) / (H * cap[k,s])      (what moving 1 rps of s to k saves in the LP)

k can improve the LP only if some gain[k,s] > 0; such options are re-admitted. Keeping k's capacity
row and the valid bounds sum_{new k} y[k,s] <= rps(s), the Lagrangian relaxation over the new columns
gives a valid lower bound on the LP over *all* options:

    LP(restricted) - sum_s rps(s) * max(0, max_k gain[k,s])  -  sum_{k: budget(k) < 0} |budget(k)| n_max(k)

When nothing is violated it equals the restricted LP, which is then the LP optimum over all options.
"""

from __future__ import annotations

from collections import defaultdict
from collections.abc import Iterable
from dataclasses import dataclass

from scheduler.placement.milp import Built
from scheduler.placement.problem import Problem

EPS = 1e-7


@dataclass(frozen=True, slots=True)
class Priced:
    cand: int
    budget: float  # $/h per replica of the option, in dual prices
    gains: tuple[tuple[int, float], ...]  # (slice, $/h saved per rps moved here), only positive ones
    max_replicas: int

    @property
    def violation(self) -> float:
        return max((g for _, g in self.gains), default=0.0) + max(0.0, -self.budget)


def price_out(problem: Problem, built: Built, candidates: Iterable[int], churn_weight: float) -> list[Priced]:
    rows = built.rows
    pi = {s: c.pi or 0.0 for s, c in rows.get("demand", {}).items()}
    theta = {d: c.pi or 0.0 for d, c in rows.get("spot", {}).items()}
    rho = {d: c.pi or 0.0 for d, c in rows.get("minrep", {}).items()}
    mu = {key: c.pi or 0.0 for key, c in rows.get("vub_dp", {}).items()}
    # The per-pool spot caps enter exactly like the instance cut: one row per (deployment, pool), <= 0.
    for key, c in rows.get("spot_pool", {}).items():
        mu[key] = mu.get(key, 0.0) + (c.pi or 0.0)
    phi_total: dict[str, float] = defaultdict(float)
    phi: dict[tuple[str, str], float] = {}
    for (dep, dom), c in rows.get("spread", {}).items():
        v = c.pi or 0.0
        phi[(dep, dom)] = v
        phi_total[dep] += v
    alpha = {p: c.pi or 0.0 for p, c in rows.get("pack", {}).items()}
    # A pool the LP does not use has a degenerate packing dual (anything in [-price/gpus, 0]; solvers
    # often return 0, which makes its GPUs look free and floods pricing with false positives). Its
    # duals may be replaced by alpha = -price/gpus and mu = 0 if the pool's active options still price
    # out non-negatively with them — then the replaced duals are as valid a certificate as the LP's.
    # The instance cover cuts (cuts.py) contain inst[p] of pools the model may not hold yet: their duals
    # are a credit on that pool's instances, so its GPUs are worth (price - credit) / gpus.
    credit: dict[str, float] = defaultdict(float)
    for key, c in rows.get("icover", {}).items():
        dual = c.pi or 0.0
        if dual:
            for pid, a in built.covers[key].coefs.items():
                credit[pid] += dual * a
    unused = {p for p, v in built.inst.items() if (v.value() or 0.0) < 1e-9}
    active_in: dict[str, list[int]] = defaultdict(list)
    for k in built.active:
        if problem.pool_of[k].id in unused:
            active_in[problem.pool_of[k].id].append(k)
    for pid in unused:
        pool = problem.snapshot.pool_by_id[pid]
        trial_alpha = {**alpha, pid: -(pool.price_per_hour - credit.get(pid, 0.0)) / pool.gpus}
        trial_mu = {key: (0.0 if key[1] == pid else v) for key, v in mu.items()}
        if all(
            _price(problem, k, pi, theta, rho, trial_mu, phi, phi_total, trial_alpha, credit, churn_weight)
            is None
            for k in active_in.get(pid, [])
        ):
            alpha, mu = trial_alpha, trial_mu
    out: list[Priced] = []
    for k in candidates:
        p = _price(problem, k, pi, theta, rho, mu, phi, phi_total, alpha, credit, churn_weight)
        if p is not None:
            out.append(p)
    return out


def _price(
    problem: Problem,
    k: int,
    pi: dict[int, float],
    theta: dict[str, float],
    rho: dict[str, float],
    mu: dict[tuple[str, str], float],
    phi: dict[tuple[str, str], float],
    phi_total: dict[str, float],
    alpha: dict[str, float],
    credit: dict[str, float],
    churn_weight: float,
) -> Priced | None:
    """The option's gains under these duals, or None when it cannot improve the LP."""
    cand = problem.candidates[k]
    pool = problem.pool_of[k]
    max_replicas = pool.max_instances * pool.gpus // cand.tp
    if max_replicas == 0:
        return None  # a pool without quota can add nothing
    dep = cand.deployment
    # A pool outside the model: its instance column prices out at zero with this GPU value (negative
    # when cut duals exceed its price: then the option's budget is negative and the bound pays for it).
    gpu_value = (
        -alpha[pool.id] if pool.id in alpha else (pool.price_per_hour - credit.get(pool.id, 0.0)) / pool.gpus
    )
    spread_credit = phi_total.get(dep, 0.0) - phi.get((dep, problem.domain(k)), 0.0)
    budget = churn_weight * problem.replica_price(k) + cand.tp * gpu_value - rho.get(dep, 0.0) - spread_credit
    shift = (theta.get(dep, 0.0) if pool.is_spot else 0.0) + mu.get((dep, pool.id), 0.0)
    h = problem.headroom(k)
    per_replica = max(budget, 0.0)
    tol = EPS * max(1.0, cand.tp * gpu_value)
    gains = tuple(
        (r.slice, g)
        for r in problem.routes_of[k]
        if r.slice in pi
        for g in (pi[r.slice] + shift - per_replica / (h * r.capacity_rps),)
        if g * h * r.capacity_rps > tol
    )
    if gains or budget < -tol:
        return Priced(k, budget, gains, max_replicas)
    return None


def lagrangian_bound(problem: Problem, lp_objective: float, priced: Iterable[Priced]) -> float:
    best: dict[int, float] = defaultdict(float)
    loss = 0.0
    for p in priced:
        for s, g in p.gains:
            best[s] = max(best[s], g)
        if p.budget < 0:
            loss += -p.budget * p.max_replicas
    return lp_objective - loss - sum(problem.slices[s].rps * g for s, g in best.items())
