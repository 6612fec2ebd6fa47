"""The placement MILP (PuLP model), over an active subset of the compiled options.

Variables
  n[k]    integer  replicas of option k = (deployment, variant, pool, tp)
  inst[p] integer  instances bought in pool p
  y[k,s]  >= 0     rps of demand slice s routed to option k (only on SLO-feasible routes)
Rows (names are what the diagnosis and the pricing step look up)
  demand[s]   sum_k y[k,s] = rps(s)                      cover all demand
  cap[k]      sum_s y[k,s] / cap(k,s) <= headroom * n[k] load within headroom of capacity
  pack[p]     sum_k tp(k) n[k] <= gpus(p) * inst[p]      replicas x tp packed into whole instances
  quota[p]    inst[p] <= max_instances(p)
  minrep[d]   sum_k n[k] >= max(min_replicas(d), ceil(rps(d) / (headroom x best capacity)))
  spread[d,f] sum_{k not in f} n[k] >= m(d)               for every failure domain f: >= 2 domains used
  spot[d]     sum_{k spot, s} y[k,s] <= max_spot_share(d) * rps(d)
  spot_pool[d,p] sum_{k of d in p, s} y[k,s] <= cap(d,p) * rps(d), on spot pools with a cap below
              max_spot_share(d): availability(p) x max_spot_share(d), max_spot_pool_share(d) (pool_spot_cap)
  vub_k[k]    sum_s y[k,s] <= L(d,p) n[k]              (cuts, see below; L = d's demand, spot-capped
  vub_dp[d,p] sum_{k of d in p, s} y[k,s] <= L(d,p) inst[p]   on spot pools)
  icover[...] sum_{p in P} a(p) inst[p] >= b             (instance cover cuts, see cuts.py)
Objective: sum_p price(p) inst[p] (+ churn penalty in re-plan mode).
Elastic mode adds a slack to every row family and minimises the weighted slack instead; the
diagnosis uses it to name the constraints that cannot hold together.
"""

from __future__ import annotations

from collections import defaultdict
from collections.abc import Hashable, Iterable, Mapping
from dataclasses import dataclass, field

import pulp

from scheduler.placement.cuts import Cover, instance_covers
from scheduler.placement.eligibility import pool_spot_cap
from scheduler.placement.problem import Problem

# Elastic weights: uncovered demand is blamed last; every policy family before it.
ELASTIC_WEIGHT = {"demand": 1000.0, "quota": 1.0, "spot": 1.0, "spot_pool": 1.0, "minrep": 1.0, "spread": 1.0}


@dataclass
class Built:
    prob: pulp.LpProblem
    active: list[int]
    n: dict[int, pulp.LpVariable]
    y: dict[tuple[int, int], pulp.LpVariable]  # (cand, slice)
    inst: dict[str, pulp.LpVariable]
    rows: dict[str, dict[Hashable, pulp.LpConstraint]]
    slacks: dict[tuple[str, Hashable], pulp.LpVariable] = field(default_factory=dict)
    constant: float = 0.0  # churn penalty of current replicas that no option can keep
    covers: dict[Hashable, Cover] = field(default_factory=dict)  # the "icover" rows' definitions
    running: set[int] = field(default_factory=set)  # options with a churn row (replicas running now)


CandKey = tuple[str, str, str, int]


def build_model(
    problem: Problem,
    active: Iterable[int],
    *,
    current: Mapping[CandKey, int] | None = None,
    churn_weight: float = 0.0,
    elastic: bool = False,
    cuts: bool = True,
) -> Built:
    snap = problem.snapshot
    act = sorted(set(active))
    prob = pulp.LpProblem("placement", pulp.LpMinimize)
    rows: dict[str, dict[Hashable, pulp.LpConstraint]] = defaultdict(dict)
    slacks: dict[tuple[str, Hashable], pulp.LpVariable] = {}

    def slack(family: str, key: Hashable) -> pulp.LpVariable:
        v = prob.add_variable(f"e_{family}_{len(slacks)}", 0)
        slacks[(family, key)] = v
        return v

    def add(family: str, key: Hashable, expr: pulp.LpAffineExpression, sense: int, rhs: float) -> None:
        name = f"{family}_{len(rows[family])}"
        if elastic and family in ELASTIC_WEIGHT:
            s = slack(family, key)
            # The slack always moves the row towards feasibility.
            expr = expr + s if sense in (pulp.LpConstraintGE, pulp.LpConstraintEQ) else expr - s
        c = pulp.LpConstraint(expr, sense, name, rhs)
        prob.addConstraint(c, name)
        rows[family][key] = c

    # --- variables
    pools_used: dict[str, list[int]] = defaultdict(list)
    for k in act:
        pools_used[problem.pool_of[k].id].append(k)
    n: dict[int, pulp.LpVariable] = {}
    for k in act:
        pool = problem.pool_of[k]
        # The bound is implied by the quota row; elastic mode drops it so a quota slack can lift it.
        ub = None if elastic else pool.max_instances * pool.gpus // problem.candidates[k].tp
        n[k] = prob.add_variable(f"n_{k}", 0, ub, cat=pulp.LpInteger)
    # Names are stable across models built over different option sets (a MIP start is passed by name).
    pool_index = {p.id: j for j, p in enumerate(snap.pools)}
    inst = {
        pid: prob.add_variable(f"i_{pool_index[pid]}", 0, None, cat=pulp.LpInteger)
        for pid in sorted(pools_used)
    }
    y: dict[tuple[int, int], pulp.LpVariable] = {}
    by_slice: dict[int, list[pulp.LpVariable]] = defaultdict(list)
    for k in act:
        for r in problem.routes_of[k]:
            if problem.slices[r.slice].rps <= 0:
                continue
            v = prob.add_variable(f"y_{k}_{r.slice}", 0)
            y[(k, r.slice)] = v
            by_slice[r.slice].append(v)

    # --- demand coverage
    for si, s in enumerate(problem.slices):
        if s.rps > 0:
            add(
                "demand",
                si,
                pulp.LpAffineExpression([(v, 1.0) for v in by_slice.get(si, [])]),
                pulp.LpConstraintEQ,
                s.rps,
            )
    # --- capacity with headroom
    for k in act:
        terms = [(y[(k, r.slice)], 1.0 / r.capacity_rps) for r in problem.routes_of[k] if (k, r.slice) in y]
        if terms:
            terms.append((n[k], -problem.headroom(k)))
            add("cap", k, pulp.LpAffineExpression(terms), pulp.LpConstraintLE, 0.0)
    # --- variable-upper-bound cuts (valid for integer plans; they tighten the LP relaxation): a
    # deployment whose traffic is smaller than what one replica (one instance) of an option carries
    # still pays a whole replica (instance) as soon as any of it goes there. The limit is d's demand, or
    # its spot-capped part on a spot pool. (Per-slice versions were tried: 8x the rows, little gain.)
    dep_total: dict[str, float] = defaultdict(float)
    for s_ in problem.slices:
        dep_total[s_.deployment] += s_.rps
    per_dp: dict[tuple[str, str], list[int]] = defaultdict(list)
    for k in act:
        per_dp[(problem.candidates[k].deployment, problem.pool_of[k].id)].append(k)
    for (dep, pid), ks in per_dp.items():
        pool = snap.pool_by_id[pid]
        d_ = snap.deployment_by_name[dep]
        c = d_.constraints
        cap = pool_spot_cap(d_, pool)  # below max_spot_share when set
        share = cap if cap is not None else c.max_spot_share if pool.is_spot else 1.0
        limit = dep_total[dep] * share
        reach = 0.0  # the most one instance could carry for d
        terms: list[tuple[pulp.LpVariable, float]] = []
        for k in ks:
            caps = [r.capacity_rps for r in problem.routes_of[k] if (k, r.slice) in y]
            if not caps:
                continue
            h = problem.headroom(k)
            reach = max(reach, h * max(caps) * (pool.gpus // problem.candidates[k].tp))
            terms += [(y[(k, r.slice)], 1.0) for r in problem.routes_of[k] if (k, r.slice) in y]
            if limit < h * max(caps):
                add(
                    "vub_k",
                    k,
                    pulp.LpAffineExpression(
                        [(y[(k, r.slice)], 1.0) for r in problem.routes_of[k] if (k, r.slice) in y]
                        + [(n[k], -limit)]
                    ),
                    pulp.LpConstraintLE,
                    0.0,
                )
        if terms and limit < reach:
            add(
                "vub_dp",
                (dep, pid),
                pulp.LpAffineExpression(terms + [(inst[pid], -limit)]),
                pulp.LpConstraintLE,
                0.0,
            )
        # A spot pool that serves only part of the time may carry only that part of the spot share, and
        # none more than max_spot_pool_share (what one reclaim of the pool may take away at once).
        if terms and cap is not None and dep_total[dep] > 0:
            add("spot_pool", (dep, pid), pulp.LpAffineExpression(terms), pulp.LpConstraintLE, cap * dep_total[dep])
    # --- packing and quotas
    for pid, ks in pools_used.items():
        pool = snap.pool_by_id[pid]
        terms = [(n[k], float(problem.candidates[k].tp)) for k in ks] + [(inst[pid], -float(pool.gpus))]
        add("pack", pid, pulp.LpAffineExpression(terms), pulp.LpConstraintLE, 0.0)
        add(
            "quota",
            pid,
            pulp.LpAffineExpression([(inst[pid], 1.0)]),
            pulp.LpConstraintLE,
            float(pool.max_instances),
        )
    # --- instance cover cuts (valid for integer plans, see cuts.py); not in elastic mode, where a row
    # the user did not write must not be blamed
    covers: dict[Hashable, Cover] = {}
    if cuts and not elastic:
        for cover in instance_covers(problem):
            terms = [(inst[pid], float(a)) for pid, a in cover.coefs.items() if pid in inst]
            if terms:
                covers[cover.key] = cover
                add("icover", cover.key, pulp.LpAffineExpression(terms), pulp.LpConstraintGE, float(cover.rhs))
    # --- per deployment: min replicas, spread, spot share
    by_dep: dict[str, list[int]] = defaultdict(list)
    for k in act:
        by_dep[problem.candidates[k].deployment].append(k)
    for d in snap.deployments:
        ks = by_dep.get(d.name, [])
        c = d.constraints
        # No replica carries more than headroom x the best capacity of any of d's options (over all
        # options, not just the active ones, so the row stays valid for the pricing step): rounding that
        # up is a valid cut that lifts the LP bound when replicas are large.
        need = float(c.min_replicas)
        if not elastic:  # the diagnosis should blame the user's rule, not our cut
            need = max(need, problem.replicas_needed.get(d.name, 0.0))
        if need > 0:
            add(
                "minrep",
                d.name,
                pulp.LpAffineExpression([(n[k], 1.0) for k in ks]),
                pulp.LpConstraintGE,
                need,
            )
        if c.spread:
            domains = sorted({problem.domain(k) for k in ks}) or ["(none)"]
            for f in domains:
                outside = [(n[k], 1.0) for k in ks if problem.domain(k) != f]
                add(
                    "spread",
                    (d.name, f),
                    pulp.LpAffineExpression(outside),
                    pulp.LpConstraintGE,
                    float(c.spread_min_outside),
                )
        total = sum(problem.slices[si].rps for si in problem.slices_by_deployment.get(d.name, []))
        if c.max_spot_share < 1.0 and total > 0:
            spot_terms = [
                (y[(k, r.slice)], 1.0)
                for k in ks
                if problem.pool_of[k].is_spot
                for r in problem.routes_of[k]
                if (k, r.slice) in y
            ]
            add(
                "spot",
                d.name,
                pulp.LpAffineExpression(spot_terms),
                pulp.LpConstraintLE,
                c.max_spot_share * total,
            )

    # --- objective
    built = Built(prob, act, n, y, inst, dict(rows), slacks, covers=covers)
    if elastic:
        prob.setObjective(
            pulp.LpAffineExpression(
                [(v, ELASTIC_WEIGHT[fam] / _scale(problem, fam, key)) for (fam, key), v in slacks.items()]
            )
        )
        return built
    cost = [(inst[pid], snap.pool_by_id[pid].price_per_hour) for pid in inst]
    if current:
        cost += _churn_terms(problem, built, current, churn_weight)
    prob.setObjective(pulp.LpAffineExpression(cost))
    return built


def _scale(problem: Problem, family: str, key: Hashable) -> float:
    # Demand slack is measured as a fraction of the slice, so big and small slices weigh the same.
    if family == "demand":
        return max(problem.slices[key].rps, 1e-9)  # type: ignore[index]
    return 1.0


def _churn_terms(
    problem: Problem, built: Built, current: Mapping[CandKey, int], weight: float
) -> list[tuple[pulp.LpVariable, float]]:
    """Penalise every replica added or removed against the healthy replicas running now."""
    terms: list[tuple[pulp.LpVariable, float]] = []
    index = {problem.candidates[k].key: k for k in built.active}
    for k in built.active:
        price = weight * problem.replica_price(k)
        have = current.get(problem.candidates[k].key, 0)
        if have == 0:
            terms.append((built.n[k], price))  # every replica here is new
            continue
        built.running.add(k)
        up = built.prob.add_variable(f"up_{k}", 0)
        down = built.prob.add_variable(f"down_{k}", 0)
        built.prob.addConstraint(
            pulp.LpConstraint(
                pulp.LpAffineExpression([(built.n[k], 1.0), (up, -1.0), (down, 1.0)]),
                pulp.LpConstraintEQ,
                f"churn_{k}",
                float(have),
            ),
            f"churn_{k}",
        )
        terms += [(up, price), (down, price)]
    snap = problem.snapshot
    for key, have in current.items():
        if key not in index and have > 0:
            pool = snap.pool_by_id.get(key[2])
            if pool is not None:
                built.constant += weight * key[3] * pool.gpu_price_per_hour * have  # must go: no option left
    return terms
