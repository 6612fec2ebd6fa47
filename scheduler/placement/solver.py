"""Placement end to end: compile, pre-check, LP bound with pricing, MILP, honest status, explanation.

`solve(snapshot, table)` takes a candidate table (hand-made in tests, or from `build_candidates`);
`plan_placement(snapshot, perf_model)` builds the table first. Pure apart from the CBC subprocess:
no database, no network; wall time is measured with perf_counter for the report only.
"""

from __future__ import annotations

import math
import time
from collections.abc import Callable, Iterator, Set
from dataclasses import dataclass, replace

from scheduler.placement.candidates import CandidateTable, CapacityModel, build_candidates
from scheduler.placement.cbc import SOL_FEASIBLE, SOL_INFEASIBLE, SOL_OPTIMAL, CbcOutcome, run_cbc
from scheduler.placement.diagnose import elastic_diagnosis, precheck
from scheduler.placement.explain import Extracted, extract, extract_nothing
from scheduler.placement.greedy import GreedyPlan, greedy_plan
from scheduler.placement.milp import Built, build_model
from scheduler.placement.options import SolveOptions
from scheduler.placement.plan import Plan
from scheduler.placement.pricing import lagrangian_bound, most_violated, price_out
from scheduler.placement.problem import Problem, compile_problem
from scheduler.placement.pruning import CandKey, best_per_rps, initial_active, option_arrays
from scheduler.placement.snapshot import Snapshot
from scheduler.placement.verify import violations

MAX_ADDED_PER_ROUND = 100  # per deployment: most-violated first, so rounds stay small
MIN_PHASE_SECONDS = 0.12  # below this a CBC call cannot finish: skip it
SECONDS_PER_PRICED = 2e-6  # pricing one left-out option (numpy; measured ~1.4e-6 at load 2-3)
SECONDS_PER_VARIABLE = 5e-5  # building + writing the model before CBC starts (measured ~3e-5)
LP_SHARE = 0.25  # of the time limit for the LP bound and pricing; the MILP gets the rest
LP_HARD_SHARE = 0.7  # the first LP solve is stopped here (the greedy plan is the answer then)
NARROW_SHARE = 0.55  # of the remaining time for phase A over the LP's support alone
SUPPORT_SHARE = 0.4  # of the remaining time for phase A over the widened support
SPARE_PER_SLICE = 3  # phase A also gets this many cheap options per slice in pools with quota left
BOUND_TOLERANCE = 1e-4  # stop pricing once the valid bound is this close to the restricted LP


def plan_placement(snapshot: Snapshot, model: CapacityModel, options: SolveOptions | None = None) -> Plan:
    return solve(snapshot, build_candidates(snapshot, model), options)


def solve(snapshot: Snapshot, table: CandidateTable, options: SolveOptions | None = None) -> Plan:
    opts = options or SolveOptions()
    started = time.perf_counter()
    # Everything, extraction and verification included, ends by started + time_limit_s: the solver
    # phases get `hard`, and the rest is kept for turning the answer into a plan.
    hard = started + opts.time_limit_s - _finish_reserve(opts.time_limit_s)

    def left() -> float:
        return hard - time.perf_counter()

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
    # A constructive plan first: it is the answer whenever the solver phases run out of time.
    greedy = greedy_plan(problem, active)
    if greedy is not None:
        active |= set(greedy.counts)  # the greedy may have widened past the pruned set
        # Turning it into a plan means building a model over its options: keep that time back too.
        hard -= _call_seconds(problem, set(greedy.counts)) - MIN_PHASE_SECONDS

    lp_deadline = started + LP_SHARE * opts.time_limit_s
    # The first LP solve may run past the LP share (without it there is no bound and no rounding),
    # but not into the time the greedy fallback needs to be turned into a plan.
    lp_hard = min(hard, started + LP_HARD_SHARE * opts.time_limit_s) if greedy is not None else hard
    lp = _lp_bound(problem, active, everything, current, churn, opts, lp_deadline, lp_hard)
    if lp is not None and lp.timed_out is False and lp.infeasible and active != everything and left() > 0:
        active = everything  # pruning lost something the LP needs: fall back to all options
        lp = _lp_bound(problem, active, everything, current, churn, opts, lp_deadline, hard)
    if lp is not None and lp.infeasible:
        return _infeasible(elastic_diagnosis(problem, opts), started, stats)
    assert lp is not None
    active = lp.active
    pruned = active != everything
    floor = simple_bound(problem)
    kind = (
        "exact LP over all options"
        if lp.exact
        else "Lagrangian bound over all options"
        if lp.bound >= floor
        else "demand x best $/rps (no LP bound within the time limit)"
        if lp.bound == float("-inf")
        else "demand x best $/rps (above the Lagrangian bound reached)"
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
    if math.isfinite(lp.restricted):
        stats["lp_restricted_per_hour"] = round(lp.restricted, 4)  # over the options kept, not a bound

    # Phase A: the MILP over the options the LP uses (plus what runs now) finds a good plan fast.
    # Phase B: the MILP over all active options, started from it, improves it and proves the bound.
    # Each phase runs only if the time left is worth a CBC call; CBC is killed at `hard`.
    start: dict[str, float] | None = None
    best: tuple[Built, CbcOutcome] | None = None
    found: list[Solution] = []  # every integer plan any phase produced
    keep_now = {k for k in active if problem.candidates[k].key in current}
    # Phase A tries the LP's support first (small: CBC solves it fast); if rounding that support runs
    # into quotas, it widens to cheap options with quota left and the greedy plan's options.
    narrow = lp.support | keep_now
    wide = narrow | _spare_options(problem, active, lp) | set(greedy.counts if greedy else ())
    built: Built | None = None
    outcome: CbcOutcome | None = None
    phases = () if lp.timed_out else ((NARROW_SHARE, narrow), (SUPPORT_SHARE, wide))
    for share, subset in phases:
        if len(subset) >= len(active) or best is not None or left() < _call_seconds(problem, subset):
            continue
        built_a = build_model(problem, subset, current=current, churn_weight=churn)
        out_a = run_cbc(
            built_a.prob,
            mip=True,
            time_limit_s=share * left(),
            threads=opts.threads,
            gap_rel=opts.gap_rel,
            start=_start(problem, built_a, lp, greedy, current),
            deadline=hard,
        )
        if out_a.has_solution:
            best = (built_a, out_a)
            found.append(Solution("phase A", built_a, out_a))
            start = {v.name: v.value() or 0.0 for v in built_a.prob.variables()}
    if left() >= _call_seconds(problem, active):
        built = build_model(problem, active, current=current, churn_weight=churn)
        stats.update({"variables": len(built.prob.variables()), "constraints": built.prob.numConstraints()})
        if start is None:
            start = _start(problem, built, lp, greedy, current)
        outcome = run_cbc(
            built.prob,
            mip=True,
            time_limit_s=left(),
            threads=opts.threads,
            gap_rel=opts.gap_rel,
            start=start,
            deadline=hard,
        )
        if outcome.sol_status == SOL_INFEASIBLE and pruned and left() >= _call_seconds(problem, everything):
            active = everything
            built = build_model(problem, active, current=current, churn_weight=churn)
            pruned = False
            outcome = run_cbc(
                built.prob,
                mip=True,
                time_limit_s=left(),
                threads=opts.threads,
                gap_rel=opts.gap_rel,
                deadline=hard,
            )
        if outcome.has_solution:
            found.append(Solution("milp", built, outcome))
        elif start is not None and outcome.sol_status != SOL_INFEASIBLE and not found:
            # CBC ran out of time before accepting anything: the start is feasible by construction
            # (checked below like every other plan).
            found.append(Solution("start", built, _assign(built, start)))
        if not found and outcome.sol_status == SOL_INFEASIBLE and not pruned:
            # (Over a pruned set that is no proof: without time to retry every option, say no_solution.)
            return _infeasible(elastic_diagnosis(problem, opts), started, stats)
    # The cheapest plan that passes the independent check is the answer; a plan breaking a rule is
    # never returned as a plan. The greedy plan is the last resort (it is all there is when the time
    # went on compiling and the LP).
    found.sort(key=lambda sol: sol.outcome.objective if sol.outcome.objective is not None else math.inf)
    # On a tie phase B's own solution goes first: it carries CBC's status (possibly proven optimal).
    mine = [sol for sol in found if sol.source == "milp"]
    if mine and (mine[0].outcome.objective or 0.0) <= (found[0].outcome.objective or 0.0) + 1e-9:
        found.remove(mine[0])
        found.insert(0, mine[0])
    fallbacks = [lambda: _greedy_solution(problem, greedy, keep_now, current, churn)] if greedy else []
    chosen, rejected = _first_verified(problem, found, fallbacks)
    if rejected:
        stats["rejected_plans"] = "; ".join(rejected[:3])
    if chosen is None:
        why = (
            f"every plan found broke a rule ({rejected[0]})"
            if rejected
            else f"no integer plan found within {opts.time_limit_s:g} s"
        )
        return Plan(
            status="no_solution",
            cost_per_hour=None,
            objective_per_hour=None,
            lower_bound_per_hour=lp.bound,
            mip_bound_per_hour=outcome.best_bound if outcome else None,
            gap=None,
            solve_seconds=time.perf_counter() - started,
            reasons=(f"{why}; feasibility unknown",),
            stats=stats,
        )
    sol, ex = chosen
    built_c, outcome_c = sol.built, sol.outcome
    if sol.source == "greedy":
        stats["milp"] = "skipped or stopped: time limit; greedy plan"
    if built_c is not built or outcome is None:
        # Not phase B's own solution: no optimality proof for the active options, but phase B's bound
        # (when it ran) still holds for them.
        outcome_c = CbcOutcome(
            SOL_FEASIBLE, outcome_c.objective, outcome.best_bound if outcome else None, outcome_c.seconds
        )
    built, outcome = built_c, outcome_c
    bound = lp.bound
    stats["verified"] = "ok"
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
    if rejected:
        notes.append(f"discarded {len(rejected)} solver plan(s) that broke a rule: {rejected[0]}")
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


@dataclass(frozen=True, slots=True)
class Solution:
    source: str  # "phase A", "milp", "start" (phase B's MIP start), "greedy"
    built: Built
    outcome: CbcOutcome


def _greedy_solution(
    problem: Problem, greedy: GreedyPlan, keep_now: set[int], current: dict[CandKey, int], churn: float
) -> Solution | None:
    """The greedy plan loaded into a model over its own options (built only when it is needed)."""
    built = build_model(problem, set(greedy.counts) | keep_now, current=current, churn_weight=churn)
    counts = {k: float(c) for k, c in greedy.counts.items()}
    values = rounded_start(problem, built, counts, greedy.flows, current)
    return None if values is None else Solution("greedy", built, _assign(built, values))


def _first_verified(
    problem: Problem,
    found: list[Solution],
    fallbacks: list[Callable[[], Solution | None]],
) -> tuple[tuple[Solution, Extracted] | None, list[str]]:
    """The first solution (in order, then the fallbacks) that verify.py accepts, and why the ones before
    it were rejected."""
    rejected: list[str] = []

    def candidates() -> Iterator[Solution]:
        yield from found
        for make in fallbacks:
            sol = make()
            if sol is not None:
                yield sol

    for sol in candidates():
        ex = extract(problem, sol.built)
        broken = violations(problem, ex.counts, ex.flows)
        if not broken:
            return (sol, ex), rejected
        rejected.append(f"{sol.source}: {broken[0]}")
    return None, rejected


def _call_seconds(problem: Problem, subset: Set[int]) -> float:
    """What a CBC call over `subset` costs before CBC starts searching: building and writing the model
    (per variable, measured on this machine with margin) and starting CBC. A phase that cannot afford it
    is skipped rather than started and killed."""
    variables = sum(1 + len(problem.routes_of[k]) for k in subset)
    return MIN_PHASE_SECONDS + SECONDS_PER_VARIABLE * variables


def _finish_reserve(limit_s: float) -> float:
    """Time kept back from the solver phases for extraction, verification and building the plan."""
    return min(0.5, 0.05 + 0.02 * limit_s)


@dataclass(frozen=True)
class LpResult:
    bound: float  # valid for all options
    exact: bool  # the bound is the LP optimum over all options (pricing converged)
    active: set[int]
    rounds: int
    support: set[int]  # options with replicas in the final LP solution
    n: dict[int, float]  # the final LP solution: replicas per option
    y: dict[tuple[int, int], float]  # and routed rps per (option, slice)
    restricted: float = float("nan")  # the last restricted LP's value (a bound only when exact)
    infeasible: bool = False  # the restricted LP has no solution
    timed_out: bool = False  # the first LP solve did not finish in time: no LP solution at all


def _lp_bound(
    problem: Problem,
    active: set[int],
    everything: Set[int],
    current: dict[CandKey, int],
    churn: float,
    opts: SolveOptions,
    deadline: float,
    hard: float,
) -> LpResult:
    """LP relaxation over `active`, re-admitting priced-out options until none improves it.

    Every round's Lagrangian bound is valid, so the best one is kept; rounds stop early once it is
    within BOUND_TOLERANCE of the restricted LP, or at `deadline`. CBC is killed at `hard`.
    """
    rounds = 0
    best = float("-inf")
    last: LpResult | None = None
    while True:
        rounds += 1
        if time.perf_counter() + _call_seconds(problem, active) > hard:
            if last is not None:
                return replace(last, bound=best)
            return LpResult(float("-inf"), False, active, rounds, set(), {}, {}, timed_out=True)
        built = build_model(problem, active, current=current, churn_weight=churn)
        # The first solve may run to `hard`; later rounds only improve the bound and stop at `deadline`.
        stop = hard if last is None else min(hard, max(deadline, time.perf_counter() + MIN_PHASE_SECONDS))
        outcome = run_cbc(
            built.prob,
            mip=False,
            time_limit_s=opts.time_limit_s,
            threads=opts.threads,
            gap_rel=opts.gap_rel,
            deadline=stop,
        )
        if outcome.timed_out:
            if last is not None:
                return replace(last, bound=best)
            return LpResult(float("-inf"), False, active, rounds, set(), {}, {}, timed_out=True)
        if outcome.objective is None:
            return LpResult(float("-inf"), False, active, rounds, set(), {}, {}, infeasible=True)
        lp_value = outcome.objective + built.constant
        n_lp = {k: v.value() or 0.0 for k, v in built.n.items()}
        y_lp = {key: v.value() or 0.0 for key, v in built.y.items()}
        support = {k for k, v in n_lp.items() if v > 1e-6}
        if active != everything and time.perf_counter() >= deadline and rounds > 1:
            # Out of time: keep the best Lagrangian bound of the rounds already priced.
            return LpResult(best, False, active, rounds, support, n_lp, y_lp, lp_value)
        # The first pricing pass runs even past `deadline` (it is what makes the restricted LP a bound
        # over all options), as long as it ends before the solver phases' end.
        pricing_s = SECONDS_PER_PRICED * (len(everything) - len(active))
        if active != everything and time.perf_counter() + pricing_s > hard:
            # Pricing is not bounded by CBC's deadline: skip it when it would run past the solver
            # phases' end (simple_bound() stands in for the bound).
            bound = float("-inf") if last is None else best
            return LpResult(bound, False, active, rounds, support, n_lp, y_lp, lp_value)
        if active == everything:
            return LpResult(lp_value, True, active, rounds, support, n_lp, y_lp, lp_value)
        priced = price_out(problem, built, everything - active, churn)
        if not len(priced):
            return LpResult(lp_value, True, active, rounds, support, n_lp, y_lp, lp_value)
        best = max(best, lagrangian_bound(problem, lp_value, priced))
        last = LpResult(best, False, active, rounds, support, n_lp, y_lp, lp_value)
        out_of_time = time.perf_counter() >= deadline
        if (
            lp_value - best <= BOUND_TOLERANCE * max(abs(lp_value), 1e-9)
            or rounds >= opts.pricing_rounds
            or out_of_time
        ):
            return last
        active = active | most_violated(problem, priced, MAX_ADDED_PER_ROUND)


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
        best = best_per_rps(problem, d.name, option_arrays(problem).price)
        serve = sum(problem.slices[s].rps * v for s, v in best.items())
        floor = d.constraints.min_replicas * min((problem.replica_price(k) for k in ks), default=0.0)
        total += max(serve, floor)
    return total


def _start(
    problem: Problem, built: Built, lp: LpResult, greedy: GreedyPlan | None, current: dict[CandKey, int]
) -> dict[str, float] | None:
    """The cheaper of the rounded LP and the greedy plan, as a MIP start for `built`."""
    options = []
    rounded = rounded_start(problem, built, lp.n, lp.y, current) if not lp.timed_out else None
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
