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

The duals of a pool the LP leaves unused are degenerate and are repaired first (see price_out). Where
the repair that re-admits options has to keep a pool's LP duals, a second certificate is priced for
the bound only — that pool at full GPU value too, its active options priced like left-out ones — and
lagrangian_bound takes the better of the two (both are valid; the second is usually much tighter on
large fleets, where many pools hold an active option the LP does not use).

All of it is computed with numpy, per deployment over all its options and slices at once (a thousand
pools give hundreds of thousands of left-out options), with the scalar formulas above applied
elementwise in the same order, so the results are those of pricing one option at a time
(tests/unit/scheduler/test_placement_pricing_reference.py keeps that version and compares).
"""

from __future__ import annotations

from collections import defaultdict
from collections.abc import Iterable
from dataclasses import dataclass, replace

import numpy as np

from scheduler.placement.milp import Built
from scheduler.placement.problem import Problem
from scheduler.placement.pruning import option_arrays

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


@dataclass(frozen=True)
class PricedSet:
    """Every option that can improve the LP, as arrays (one entry per option, ascending option index),
    and their positive gains as (option, slice, gain) triples."""

    cand: np.ndarray  # int64
    budget: np.ndarray
    max_replicas: np.ndarray  # int64
    violation: np.ndarray  # best gain + max(0, -budget)
    gain_cand: np.ndarray  # int64, the option of each gain
    gain_slice: np.ndarray  # int64
    gain: np.ndarray
    # Another certificate, for the bound only (see price_out): lagrangian_bound uses the better one.
    alternative: PricedSet | None = None

    def __len__(self) -> int:
        return len(self.cand)

    def items(self) -> list[Priced]:
        """The same content as Priced records (for tests and explanations; slow on large sets)."""
        gains: dict[int, list[tuple[int, float]]] = defaultdict(list)
        for k, s, g in zip(self.gain_cand.tolist(), self.gain_slice.tolist(), self.gain.tolist()):
            gains[k].append((s, g))
        return [
            Priced(k, b, tuple(gains.get(k, ())), m)
            for k, b, m in zip(self.cand.tolist(), self.budget.tolist(), self.max_replicas.tolist())
        ]


@dataclass
class _Duals:
    """The restricted LP's duals, by row key (the certificate pricing reads)."""

    pi: dict[int, float]
    theta: dict[str, float]
    rho: dict[str, float]
    mu: dict[tuple[str, str], float]
    phi: dict[tuple[str, str], float]
    phi_total: dict[str, float]
    alpha: dict[str, float]
    credit: dict[str, float]


def _duals(built: Built) -> _Duals:
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
    # The instance cover cuts (cuts.py) contain inst[p] of pools the model may not hold yet: their duals
    # are a credit on that pool's instances, so its GPUs are worth (price - credit) / gpus.
    credit: dict[str, float] = defaultdict(float)
    for key, c in rows.get("icover", {}).items():
        dual = c.pi or 0.0
        if dual:
            for pid, a in built.covers[key].coefs.items():
                credit[pid] += dual * a
    return _Duals(pi, theta, rho, mu, phi, dict(phi_total), alpha, dict(credit))


class _Arrays:
    """Per-option and per-pool data pricing reads, built once per problem."""

    def __init__(self, problem: Problem) -> None:
        pools = problem.snapshot.pools
        self.pool_index = {p.id: j for j, p in enumerate(pools)}
        self.pool_price = np.asarray([p.price_per_hour for p in pools], dtype=float)
        self.pool_gpus = np.asarray([p.gpus for p in pools], dtype=float)
        n = len(problem.candidates)
        self.pool = np.fromiter((self.pool_index[p.id] for p in problem.pool_of), dtype=np.int64, count=n)
        tp = np.fromiter((c.tp for c in problem.candidates), dtype=np.int64, count=n)
        self.tp = tp.astype(float)
        per_instance = np.asarray([p.max_instances * p.gpus for p in pools], dtype=np.int64)
        self.max_replicas = per_instance[self.pool] // tp
        dep_index = {d.name: i for i, d in enumerate(problem.snapshot.deployments)}
        self.dep_names = [d.name for d in problem.snapshot.deployments]
        self.dep = np.fromiter((dep_index[c.deployment] for c in problem.candidates), dtype=np.int64, count=n)
        self.headroom = np.asarray(problem.headroom_of, dtype=float)
        names: dict[str, int] = {}
        self.domain = np.fromiter(
            (names.setdefault(f, len(names)) for f in problem.domain_of), dtype=np.int64, count=n
        )
        self.domain_index = names


def _arrays(problem: Problem) -> _Arrays:
    arrays = problem.derived.get("pricing_arrays")
    if not isinstance(arrays, _Arrays):
        arrays = problem.derived["pricing_arrays"] = _Arrays(problem)
    return arrays


@dataclass
class _Evaluated:
    """One deployment's options under given duals: budget, gains [k, s] (nan: no gain), priced."""

    ks: np.ndarray
    slices: list[int]
    budget: np.ndarray
    gain: np.ndarray
    priced: np.ndarray


def _evaluate(
    problem: Problem,
    arr: _Arrays,
    dep: str,
    ks: np.ndarray,
    gpu_value: np.ndarray,
    mu_k: np.ndarray,
    duals: _Duals,
    churn_weight: float,
) -> _Evaluated:
    """The scalar pricing formulas (module docstring) for the options `ks` of deployment `dep`."""
    phi_of = np.zeros(len(arr.domain_index))
    for (d, dom), v in duals.phi.items():
        if d == dep and dom in arr.domain_index:
            phi_of[arr.domain_index[dom]] = v
    spread_credit = duals.phi_total.get(dep, 0.0) - phi_of[arr.domain[ks]]
    tp = arr.tp[ks]
    price = option_arrays(problem).price[ks]
    budget = churn_weight * price + tp * gpu_value - duals.rho.get(dep, 0.0) - spread_credit
    shift = np.where(option_arrays(problem).spot[ks], duals.theta.get(dep, 0.0), 0.0) + mu_k
    h = arr.headroom[ks]
    per_replica = np.maximum(budget, 0.0)
    tol = EPS * np.maximum(1.0, tp * gpu_value)
    slices, cap = option_arrays(problem).capacity(dep, ks)
    in_pi = [si in duals.pi for si in slices]
    pi = np.asarray([duals.pi.get(si, 0.0) for si in slices], dtype=float)
    hc = h[:, None] * cap  # [k, s]
    with np.errstate(divide="ignore", invalid="ignore"):
        g = pi[None, :] + shift[:, None] - per_replica[:, None] / hc
        is_gain = (cap > 0) & np.asarray(in_pi, dtype=bool)[None, :] & (g * h[:, None] * cap > tol[:, None])
    gain = np.where(is_gain, g, np.nan)
    priced = (arr.max_replicas[ks] > 0) & (is_gain.any(axis=1) | (budget < -tol))
    return _Evaluated(ks, slices, budget, gain, priced)


def price_out(problem: Problem, built: Built, candidates: Iterable[int], churn_weight: float) -> PricedSet:
    duals = _duals(built)
    arr = _arrays(problem)
    # A pool the LP does not use has a degenerate packing dual (anything in [-price/gpus, 0]; solvers
    # often return 0, which makes its GPUs look free and floods pricing with false positives). Its
    # duals may be replaced by alpha = -price/gpus and mu = 0 if the pool's active options still price
    # out non-negatively with them — then the replaced duals are as valid a certificate as the LP's.
    # (Pools are independent here: an option's prices read only its own pool's alpha and mu.)
    # When that fails (the per-pool cuts' duals mu are what keeps the pool's options out), alpha alone is
    # lowered as far as inst[p]'s reduced cost allows with the LP's mu kept:
    #     -alpha <= (price - credit + sum_d L(d,p) mu[d,p]) / gpus      (mu of the vub_dp rows, <= 0)
    # Every active column stays dual feasible (n's reduced cost only grows; inst[p] = 0 keeps a
    # non-negative one) and the dual objective does not change (the packing row's rhs is 0), so the
    # restricted LP value is still the certificate's value: no check is needed.
    credit = np.zeros(len(arr.pool_price))
    for pid, v in duals.credit.items():
        credit[arr.pool_index[pid]] = v
    outside = (arr.pool_price - credit) / arr.pool_gpus  # GPU value of a pool outside the model
    gpu_value = outside.copy()
    for pid, a in duals.alpha.items():
        gpu_value[arr.pool_index[pid]] = -a
    unused = {p for p, v in built.inst.items() if (v.value() or 0.0) < 1e-9}
    trial_parts: list[_Evaluated] = []
    rejected: set[int] = set()
    pinned: set[int] = set()
    if unused:
        trial = np.asarray([problem.pool_of[k].id in unused for k in built.active], dtype=bool)
        ks = np.asarray(built.active, dtype=np.int64)[trial]
        for dep, group in _by_deployment(arr, ks):
            ev = _evaluate(
                problem, arr, dep, group, outside[arr.pool[group]], np.zeros(len(group)), duals, churn_weight
            )
            rejected.update(arr.pool[group[ev.priced]].tolist())
            trial_parts.append(ev)
        # Re-plan: an option running now has its own churn row (rhs = replicas running), which the
        # pricing formulas do not model; its pool keeps the LP's mu (only alpha is lowered, below).
        pinned = {
            arr.pool_index[problem.pool_of[k].id]
            for k in built.active
            if problem.pool_of[k].id in unused and k in built.running
        }
        rejected |= pinned
        cut_charge = _instance_cut_charge(built, unused)
        for pid in unused:
            j = arr.pool_index[pid]
            if j not in rejected:
                gpu_value[j] = outside[j]
                for key in [key for key in duals.mu if key[1] == pid]:
                    duals.mu[key] = 0.0
            else:
                limit = (arr.pool_price[j] - credit[j] + cut_charge.get(pid, 0.0)) / arr.pool_gpus[j]
                gpu_value[j] = max(gpu_value[j], limit)
    mu_by_dep: dict[str, list[tuple[int, float]]] = defaultdict(list)
    for (d, pid), v in duals.mu.items():
        mu_by_dep[d].append((arr.pool_index[pid], v))
    parts: list[_Evaluated] = []
    wanted = np.unique(np.fromiter(candidates, dtype=np.int64))
    for dep, group in _by_deployment(arr, wanted):
        mu_pool = np.zeros(len(gpu_value))
        for j, v in mu_by_dep.get(dep, ()):
            mu_pool[j] = v
        pools = arr.pool[group]
        parts.append(
            _evaluate(problem, arr, dep, group, gpu_value[pools], mu_pool[pools], duals, churn_weight)
        )
    priced = _collect(arr, parts)
    if not rejected:
        return priced
    # Certificate A, for the bound only: the rejected pools too at full GPU value with mu = 0. Only
    # their own columns' reduced costs change (no other column touches their packing and vub_dp rows,
    # whose rhs are 0), so the bound is the restricted LP less the violations of the left-out options
    # and of the rejected pools' active options, all priced alike (their cap and vub_k rows are theirs
    # alone: kept in the subproblem or given dual 0, as for left-out options).
    in_rejected = np.zeros(len(gpu_value), dtype=bool)
    in_rejected[list(rejected - pinned)] = True
    if not in_rejected.any():
        return priced
    alt_parts = [replace(ev, priced=ev.priced & in_rejected[arr.pool[ev.ks]]) for ev in trial_parts]
    alt_parts += [replace(ev, priced=ev.priced & ~in_rejected[arr.pool[ev.ks]]) for ev in parts]
    moved = wanted[in_rejected[arr.pool[wanted]]]
    for dep, group in _by_deployment(arr, moved):
        alt_parts.append(
            _evaluate(
                problem, arr, dep, group, outside[arr.pool[group]], np.zeros(len(group)), duals, churn_weight
            )
        )
    return replace(priced, alternative=_collect(arr, alt_parts))


def _instance_cut_charge(built: Built, pools: set[str]) -> dict[str, float]:
    """Per pool: sum over its vub_dp rows of (coefficient of inst[p]) x dual, i.e. sum_d L(d,p) mu[d,p]
    with the coefficient -L(d,p) and the dual <= 0 (what those rows add to inst[p]'s reduced cost)."""
    out: dict[str, float] = defaultdict(float)
    for (_, pid), c in built.rows.get("vub_dp", {}).items():
        if pid in pools and c.pi:
            out[pid] -= c.get(built.inst[pid], 0.0) * c.pi
    return out


def _by_deployment(arr: _Arrays, ks: np.ndarray) -> list[tuple[str, np.ndarray]]:
    """`ks` split by deployment, each part in ascending option order."""
    if not len(ks):
        return []
    ks = np.sort(ks)
    order = np.argsort(arr.dep[ks], kind="stable")
    ks = ks[order]
    deps = arr.dep[ks]
    cuts = np.flatnonzero(deps[1:] != deps[:-1]) + 1
    parts = zip(np.split(ks, cuts), np.split(deps, cuts))
    return [(arr.dep_names[int(part_deps[0])], part) for part, part_deps in parts]


def _collect(arr: _Arrays, parts: list[_Evaluated]) -> PricedSet:
    cand, budget, maxr, viol, gk, gs, gv = [], [], [], [], [], [], []
    for ev in parts:
        p = ev.priced
        if not p.any():
            continue
        ks, gain = ev.ks[p], ev.gain[p]
        cand.append(ks)
        budget.append(ev.budget[p])
        maxr.append(arr.max_replicas[ks])
        best = np.where(np.isnan(gain), -np.inf, gain).max(axis=1, initial=-np.inf)
        viol.append(np.where(np.isfinite(best), best, 0.0) + np.maximum(0.0, -ev.budget[p]))
        rows, cols = np.nonzero(~np.isnan(gain))  # row-major: per option, in slice order
        gk.append(ks[rows])
        gs.append(np.asarray(ev.slices, dtype=np.int64).reshape(-1)[cols])
        gv.append(gain[rows, cols])
    if not cand:
        empty_i, empty_f = np.zeros(0, dtype=np.int64), np.zeros(0)
        return PricedSet(empty_i, empty_f, empty_i, empty_f, empty_i, empty_i, empty_f)
    c = np.concatenate(cand)
    order = np.argsort(c, kind="stable")
    gain_k = np.concatenate(gk)
    gorder = np.argsort(gain_k, kind="stable")
    return PricedSet(
        c[order],
        np.concatenate(budget)[order],
        np.concatenate(maxr)[order],
        np.concatenate(viol)[order],
        gain_k[gorder],
        np.concatenate(gs)[gorder],
        np.concatenate(gv)[gorder],
    )


def lagrangian_bound(problem: Problem, lp_objective: float, priced: PricedSet) -> float:
    """The restricted LP less what the priced options could still save (module docstring), under the
    better of the certificates pricing built."""
    loss = _correction(problem, priced)
    if priced.alternative is not None:
        loss = min(loss, _correction(problem, priced.alternative))
    return lp_objective - loss


def _correction(problem: Problem, priced: PricedSet) -> float:
    best = np.zeros(len(problem.slices))
    if len(priced.gain):
        np.maximum.at(best, priced.gain_slice, priced.gain)
    neg = priced.budget < 0
    loss = float(np.sum(-priced.budget[neg] * priced.max_replicas[neg]))
    rps = np.asarray([s.rps for s in problem.slices], dtype=float)
    return loss + float(np.sum(rps * best))


def most_violated(problem: Problem, priced: PricedSet, per_deployment: int) -> set[int]:
    """Per deployment, the `per_deployment` options with the largest violation (ties: lowest index)."""
    if not len(priced):
        return set()
    dep = _arrays(problem).dep[priced.cand]
    order = np.lexsort((priced.cand, -priced.violation, dep))
    d = dep[order]
    start = np.concatenate(([0], np.flatnonzero(d[1:] != d[:-1]) + 1))
    rank = np.arange(len(d)) - np.repeat(start, np.diff(np.concatenate((start, [len(d)]))))
    return set(priced.cand[order[rank < per_deployment]].tolist())
