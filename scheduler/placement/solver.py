"""Placement end to end: compile, pre-check, LP bound with pricing, MILP, honest status, explanation.

`solve(snapshot, table)` takes a candidate table (hand-made in tests, or from `build_candidates`);
`plan_placement(snapshot, perf_model)` builds the table first. Pure apart from the CBC subprocess:
no database, no network; wall time is measured with perf_counter for the report only.
"""

from __future__ import annotations

import math
import time
from collections.abc import Set
from dataclasses import dataclass, replace

from scheduler.placement.candidates import CandidateTable, CapacityModel, build_candidates
from scheduler.placement.cbc import SOL_FEASIBLE, SOL_INFEASIBLE, SOL_OPTIMAL, CbcOutcome, run_cbc
from scheduler.placement.diagnose import elastic_diagnosis, precheck
from scheduler.placement.explain import extract, extract_nothing
from scheduler.placement.greedy import GreedyPlan, greedy_plan
from scheduler.placement.milp import Built, build_model
from scheduler.placement.options import SolveOptions
from scheduler.placement.plan import Plan
from scheduler.placement.pricing import Priced, lagrangian_bound, price_out
from scheduler.placement.problem import Problem, compile_problem
from scheduler.placement.pruning import CandKey, initial_active
from scheduler.placement.snapshot import Snapshot
from scheduler.placement.verify import violations

MAX_ADDED_PER_ROUND = 100  # per deployment: most-violated first, so rounds stay small
MIN_CBC_SECONDS = 0.1  # CBC needs a moment even when the budget is spent; a plan beats no plan
LP_SHARE = 0.25  # of the time limit for the LP bound and pricing; the MILP gets the rest
NARROW_SHARE = 0.55  # of the remaining time for phase A over the LP's support alone
SUPPORT_SHARE = 0.4  # of the remaining time for phase A over the widened support
SPARE_PER_SLICE = 3  # phase A also gets this many cheap options per slice in pools with quota left
BOUND_TOLERANCE = 1e-4  # stop pricing once the valid bound is this close to the restricted LP


def plan_placement(snapshot: Snapshot, model: CapacityModel, options: SolveOptions | None = None) -> Plan:
    return solve(snapshot, build_candidates(snapshot, model), options)


def solve(snapshot: Snapshot, table: CandidateTable, options: SolveOptions | None = None) -> Plan:
    opts = options or SolveOptions()
    started = time.perf_counter()
    problem = compile_problem(snapshot, table.candidates)
    t_compiled = time.perf_counter()
    stats: dict[str, float | int | str] = {
        "seconds_compile": round(t_compiled - started, 3),
        "options": len(problem.candidates),
        "slices": sum(1 for s in problem.slices if s.rps > 0),
    }
    blocked = precheck(problem, table)
    if blocked:
        return _infeasible(blocked, started, stats)
    if not any(s.rps > 0 for s in problem.slices) and not any(
        d.constraints.min_replicas for d in snapshot.deployments
    ):
        ex = extract_nothing(problem)
        stats["verified"] = "ok"
        return Plan(
            status="optimal",
            cost_per_hour=0.0,
            objective_per_hour=0.0,
            lower_bound_per_hour=0.0,
            mip_bound_per_hour=0.0,
            gap=0.0,
            solve_seconds=time.perf_counter() - started,
            reasons=("nothing to place: no demand and no min_replicas",) + ex.reasons,
            stats=stats,
        )
    current: dict[CandKey, int] = {}
    for c in snapshot.current:
        key = (c.deployment, c.variant, c.pool, c.tp)
        current[key] = current.get(key, 0) + c.count
    churn = opts.churn_weight if current else 0.0
    everything = set(range(len(problem.candidates)))
    active = set(initial_active(problem, opts, set(current)))

    lp_deadline = started + LP_SHARE * opts.time_limit_s
    lp = _lp_bound(problem, active, everything, current, churn, opts, lp_deadline)
    if lp is None and active != everything:
        active = everything  # pruning lost something the LP needs: fall back to all options
        lp = _lp_bound(problem, active, everything, current, churn, opts, lp_deadline)
    if lp is None:
        return _infeasible(elastic_diagnosis(problem, opts), started, stats)
    active = lp.active
    pruned = active != everything
    floor = simple_bound(problem)
    kind = (
        "exact LP over all options"
        if lp.exact
        else "Lagrangian bound over all options"
        if lp.bound >= floor
        else "demand x best $/rps (no LP bound within the time limit)"
    )
    lp = replace(lp, bound=max(lp.bound, floor))
    stats.update(
        {
            "seconds_lp": round(time.perf_counter() - t_compiled, 3),
            "active_options": len(active),
            "pricing_rounds": lp.rounds,
            "lp_bound": kind,
        }
    )

    def remaining() -> float:
        return max(MIN_CBC_SECONDS, opts.time_limit_s - (time.perf_counter() - started))

    # Phase A: the MILP over the options the LP uses (plus what runs now) finds a good plan fast.
    # Phase B: the MILP over all active options, started from it, improves it and proves the bound.
    start: dict[str, float] | None = None
    best: tuple[Built, CbcOutcome] | None = None
    keep_now = {k for k in active if problem.candidates[k].key in current}
    greedy = greedy_plan(problem, active)
    if greedy is not None:
        active = active | set(greedy.counts)  # the greedy may have widened past the pruned set
        pruned = active != everything
    # Phase A tries the LP's support first (small: CBC solves it fast); if rounding that support runs
    # into quotas, it widens to cheap options with quota left and the greedy plan's options.
    narrow = lp.support | keep_now
    wide = narrow | _spare_options(problem, active, lp) | set(greedy.counts if greedy else ())
    if greedy is not None and time.perf_counter() - started >= opts.time_limit_s:
        # The budget went on compiling and the LP: return the greedy plan rather than overrun further.
        built_g = build_model(problem, set(greedy.counts) | keep_now, current=current, churn_weight=churn)
        values = rounded_start(
            problem, built_g, {k: float(c) for k, c in greedy.counts.items()}, greedy.flows, current
        )
        if values is not None:
            best = (built_g, _assign(built_g, values))
            stats["milp"] = "skipped: time limit spent before the MILP; greedy plan"
    phases = () if best is not None else ((NARROW_SHARE, narrow), (SUPPORT_SHARE, wide))
    for share, subset in phases:
        if len(subset) >= len(active) or (best is not None):
            continue
        built_a = build_model(problem, subset, current=current, churn_weight=churn)
        out_a = run_cbc(
            built_a.prob,
            mip=True,
            time_limit_s=share * remaining(),
            threads=opts.threads,
            gap_rel=opts.gap_rel,
            start=_start(problem, built_a, lp, greedy, current),
        )
        if out_a.has_solution:
            best = (built_a, out_a)
            start = {v.name: v.value() or 0.0 for v in built_a.prob.variables()}
    if phases:
        built = build_model(problem, active, current=current, churn_weight=churn)
        stats.update({"variables": len(built.prob.variables()), "constraints": built.prob.numConstraints()})
        if start is None:
            start = _start(problem, built, lp, greedy, current)
        outcome = run_cbc(
            built.prob,
            mip=True,
            time_limit_s=remaining(),
            threads=opts.threads,
            gap_rel=opts.gap_rel,
            start=start,
        )
    else:
        built, outcome = best  # type: ignore[misc]
    if outcome.sol_status == SOL_INFEASIBLE and pruned:
        active = everything
        built = build_model(problem, active, current=current, churn_weight=churn)
        pruned = False
        outcome = run_cbc(
            built.prob, mip=True, time_limit_s=remaining(), threads=opts.threads, gap_rel=opts.gap_rel
        )
    if outcome.has_solution and (
        best is None or (outcome.objective or 0.0) <= (best[1].objective or 0.0) + 1e-9
    ):
        best = (built, outcome)
    if best is None and start is not None and outcome.sol_status != SOL_INFEASIBLE:
        # CBC ran out of time before accepting anything: the rounded LP plan is feasible by construction.
        best = (built, _assign(built, start))
    if best is None:
        if outcome.sol_status == SOL_INFEASIBLE:
            return _infeasible(elastic_diagnosis(problem, opts), started, stats)
        return Plan(
            status="no_solution",
            cost_per_hour=None,
            objective_per_hour=None,
            lower_bound_per_hour=lp.bound,
            mip_bound_per_hour=outcome.best_bound,
            gap=None,
            solve_seconds=time.perf_counter() - started,
            reasons=(f"no integer plan found within {opts.time_limit_s:g} s; feasibility unknown",),
            stats=stats,
        )
    bound = lp.bound
    if best[0] is not built:
        # Phase B found nothing better: its bound still holds for the active options.
        best = (best[0], CbcOutcome(SOL_FEASIBLE, best[1].objective, outcome.best_bound, best[1].seconds))
    built, outcome = best
    ex = extract(problem, built)
    broken = violations(problem, ex.counts, ex.flows)
    stats["verified"] = "ok" if not broken else "; ".join(broken[:5])
    objective = ex.cost_per_hour + _churn_penalty(problem, built, ex.counts, current, churn)
    # CBC's bound covers only the options it was given; it is a valid bound for the whole problem
    # only when nothing was pruned.
    mip_bound = outcome.best_bound
    if mip_bound is None and outcome.sol_status == SOL_OPTIMAL:
        mip_bound = objective * (1.0 - opts.gap_rel)
    valid = max(bound, mip_bound) if (mip_bound is not None and not pruned) else bound
    gap = max(0.0, (objective - valid) / objective) if objective > 0 else 0.0
    proven = outcome.sol_status == SOL_OPTIMAL and (not pruned or gap <= opts.gap_rel)
    notes: list[str] = []
    if outcome.sol_status == SOL_OPTIMAL and not proven:
        notes.append(
            f"optimal over the {len(active)} options kept after pruning; gap to the all-options LP "
            f"bound {gap:.2%}"
        )
    elif not proven:
        notes.append(f"time limit reached: best plan found is within {gap:.2%} of the bound")
    if broken:
        notes.append(f"verification found {len(broken)} violation(s): {broken[0]}")
    if current:
        notes.append(
            f"re-plan: churn penalty ${objective - ex.cost_per_hour:.2f}/h "
            f"(weight {churn:g} x replica price per replica added or removed)"
        )
    return Plan(
        status="optimal" if proven else "feasible",
        cost_per_hour=ex.cost_per_hour,
        objective_per_hour=objective,
        lower_bound_per_hour=bound,
        mip_bound_per_hour=mip_bound,
        gap=gap,
        solve_seconds=time.perf_counter() - started,
        replicas=ex.replicas,
        routing=ex.routing,
        pools=ex.pools,
        reasons=tuple(notes) + ex.reasons,
        stats=stats,
    )


@dataclass(frozen=True)
class LpResult:
    bound: float  # valid for all options
    exact: bool  # the bound is the LP optimum over all options (pricing converged)
    active: set[int]
    rounds: int
    support: set[int]  # options with replicas in the final LP solution
    n: dict[int, float]  # the final LP solution: replicas per option
    y: dict[tuple[int, int], float]  # and routed rps per (option, slice)


def _lp_bound(
    problem: Problem,
    active: set[int],
    everything: Set[int],
    current: dict[CandKey, int],
    churn: float,
    opts: SolveOptions,
    deadline: float,
) -> LpResult | None:
    """LP relaxation over `active`, re-admitting priced-out options until none improves it.

    Returns None when the restricted LP is infeasible. Every round's Lagrangian bound is valid, so the
    best one is kept; rounds stop early once it is within BOUND_TOLERANCE of the restricted LP.
    """
    rounds = 0
    best = float("-inf")
    while True:
        rounds += 1
        built = build_model(problem, active, current=current, churn_weight=churn)
        outcome = run_cbc(
            built.prob, mip=False, time_limit_s=opts.time_limit_s, threads=opts.threads, gap_rel=opts.gap_rel
        )
        if outcome.objective is None:
            return None
        lp_value = outcome.objective + built.constant
        n_lp = {k: v.value() or 0.0 for k, v in built.n.items()}
        y_lp = {key: v.value() or 0.0 for key, v in built.y.items()}
        support = {k for k, v in n_lp.items() if v > 1e-6}
        if active != everything and time.perf_counter() >= deadline and rounds > 1:
            # Out of time: keep the best Lagrangian bound of the rounds already priced.
            return LpResult(best, False, active, rounds, support, n_lp, y_lp)
        if active != everything and time.perf_counter() >= deadline:
            # Not even one round priced: the restricted LP is no bound; simple_bound() stands in.
            return LpResult(float("-inf"), False, active, rounds, support, n_lp, y_lp)
        priced = price_out(problem, built, everything - active, churn) if active != everything else []
        if not priced:
            return LpResult(lp_value, True, active, rounds, support, n_lp, y_lp)
        best = max(best, lagrangian_bound(problem, lp_value, priced))
        out_of_time = time.perf_counter() >= deadline
        if (
            lp_value - best <= BOUND_TOLERANCE * max(abs(lp_value), 1e-9)
            or rounds >= opts.pricing_rounds
            or out_of_time
        ):
            return LpResult(best, False, active, rounds, support, n_lp, y_lp)
        active = active | _most_violated(problem, priced)


def _spare_options(problem: Problem, active: set[int], lp: LpResult) -> set[int]:
    """Cheap options in pools the LP leaves quota in: rounding the LP up needs somewhere to go when
    the cheapest pools are full."""
    gpus: dict[str, float] = {}
    for k, v in lp.n.items():
        pid = problem.pool_of[k].id
        gpus[pid] = gpus.get(pid, 0.0) + v * problem.candidates[k].tp

    def has_room(k: int) -> bool:
        pool = problem.pool_of[k]
        return gpus.get(pool.id, 0.0) / pool.gpus <= pool.max_instances - 1

    ranked: dict[int, list[tuple[float, int]]] = {}
    for k in active:
        if not has_room(k):
            continue
        for r in problem.routes_of[k]:
            if problem.slices[r.slice].rps > 0:
                ranked.setdefault(r.slice, []).append((problem.replica_price(k) / r.capacity_rps, k))
    out: set[int] = set()
    for items in ranked.values():
        items.sort()
        out.update(k for _, k in items[:SPARE_PER_SLICE])
    return out


def _assign(built: Built, values: dict[str, float]) -> CbcOutcome:
    """Load a known feasible assignment into the model's variables, as if the solver had found it."""
    for v in built.prob.variables():
        v.varValue = values.get(v.name, 0.0)
    objective = sum(coef * (var.varValue or 0.0) for var, coef in built.prob.objective.items())
    return CbcOutcome(SOL_FEASIBLE, objective, None, 0.0)


def simple_bound(problem: Problem) -> float:
    """A bound needing no solver: every deployment pays at least its demand at the best $ per rps of
    any option, and at least min_replicas of its cheapest replica (GPU-share prices, quotas ignored)."""
    total = 0.0
    for d in problem.snapshot.deployments:
        ks = problem.cands_by_deployment.get(d.name, [])
        best: dict[int, float] = {}
        for k in ks:
            price = problem.replica_price(k)
            h = problem.headroom(k)
            for r in problem.routes_of[k]:
                v = price / (h * r.capacity_rps)
                if v < best.get(r.slice, float("inf")):
                    best[r.slice] = v
        serve = sum(problem.slices[s].rps * v for s, v in best.items())
        floor = d.constraints.min_replicas * min((problem.replica_price(k) for k in ks), default=0.0)
        total += max(serve, floor)
    return total


def _start(
    problem: Problem, built: Built, lp: LpResult, greedy: GreedyPlan | None, current: dict[CandKey, int]
) -> dict[str, float] | None:
    """The cheaper of the rounded LP and the greedy plan, as a MIP start for `built`."""
    options = []
    rounded = rounded_start(problem, built, lp.n, lp.y, current)
    if rounded is not None:
        options.append(rounded)
    if greedy is not None and all(k in built.n for k in greedy.counts):
        g = rounded_start(
            problem, built, {k: float(c) for k, c in greedy.counts.items()}, greedy.flows, current
        )
        if g is not None:
            options.append(g)
    if not options:
        return None
    return min(options, key=lambda st: sum(c * st.get(v.name, 0.0) for v, c in built.prob.objective.items()))


def rounded_start(
    problem: Problem,
    built: Built,
    n: dict[int, float],
    y: dict[tuple[int, int], float],
    current: dict[CandKey, int],
) -> dict[str, float] | None:
    """A MIP start from a (fractional) solution: replicas rounded up, routing kept, instances to fit.

    Rounding replicas up keeps every covering row (capacity, min replicas, spread) and leaves routing
    (demand, spot cap) untouched; only quotas can break, in which case there is no start.
    """
    start: dict[str, float] = {}
    gpus: dict[str, int] = {}
    for k, var in built.n.items():
        count = math.ceil(n.get(k, 0.0) - 1e-6)
        start[var.name] = float(count)
        pid = problem.pool_of[k].id
        gpus[pid] = gpus.get(pid, 0) + count * problem.candidates[k].tp
        have = current.get(problem.candidates[k].key, 0)
        if have:
            start[f"up_{k}"] = float(max(0, count - have))
            start[f"down_{k}"] = float(max(0, have - count))
    for pid, var in built.inst.items():
        pool = problem.snapshot.pool_by_id[pid]
        inst = math.ceil(gpus.get(pid, 0) / pool.gpus - 1e-9)
        if inst > pool.max_instances:
            return None
        start[var.name] = float(inst)
    for key, var in built.y.items():
        start[var.name] = y.get(key, 0.0)
    return start


def _most_violated(problem: Problem, priced: list[Priced]) -> set[int]:
    by_dep: dict[str, list[Priced]] = {}
    for p in priced:
        by_dep.setdefault(problem.candidates[p.cand].deployment, []).append(p)
    out: set[int] = set()
    for items in by_dep.values():
        items.sort(key=lambda p: -p.violation)
        out.update(p.cand for p in items[:MAX_ADDED_PER_ROUND])
    return out


def _churn_penalty(
    problem: Problem, built: Built, counts: dict[int, int], current: dict[CandKey, int], weight: float
) -> float:
    if not current or weight == 0:
        return 0.0
    penalty = built.constant
    for k in built.active:
        have = current.get(problem.candidates[k].key, 0)
        penalty += weight * problem.replica_price(k) * abs(counts.get(k, 0) - have)
    return penalty


def _infeasible(binding: list[str], started: float, stats: dict[str, float | int | str]) -> Plan:
    return Plan(
        status="infeasible",
        cost_per_hour=None,
        objective_per_hour=None,
        lower_bound_per_hour=None,
        mip_bound_per_hour=None,
        gap=None,
        solve_seconds=time.perf_counter() - started,
        binding=tuple(binding),
        reasons=tuple(f"infeasible: {b}" for b in binding),
        stats=stats,
    )
