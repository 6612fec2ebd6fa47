"""The proven integer optimum of a scenario's placement over ALL its options, to say how far the MILP's plan
and the LP bound are from it.

    .venv/bin/python -m benchmarks.placement.exact [SCENARIO] [--plan-seconds 60] [--mip-seconds 600]

1. The LP relaxation of the full model (every option, the valid cuts) with HiGHS: its value is the LP bound,
   and its reduced costs rc >= 0 say, by LP duality, that any plan using option or pool j costs at least
   LP + rc_j.
2. An upper bound UB: llmfleet's own plan within `--plan-seconds` (verified by the solver).
3. Reduced-cost fixing: a plan cheaper than UB can only use options and pools with rc < UB - LP, so the
   exact MIP over those (HiGHS, told that only plans below UB matter) proves the optimum over all options:
   min(UB, its optimum); at a time limit, min(UB, its dual bound) is still a valid lower bound.
4. With `--partial`, cheaper bounds between the LP and the optimum: the same MIP with whole instances but
   only one deployment's replicas integer (the others continuous) is a relaxation, so its optimum is a
   valid bound too; the best over the deployments is printed (what a product could afford in seconds).

HiGHS (highspy, a dev dependency) is used for the proof because CBC, the product's solver, did not close
the gap on the multi-region scenario in 10 minutes. Nothing here is used by the product.
"""

from __future__ import annotations

import argparse
import os
import sys
import tempfile
import time
from pathlib import Path

if __package__ in (None, ""):
    sys.path.insert(0, str(Path(__file__).resolve().parents[2]))

import highspy

from scheduler.perf_model import PerfModel
from scheduler.placement import SolveOptions, build_candidates, solve
from scheduler.placement.milp import Built, build_model
from scheduler.placement.problem import Problem, compile_problem
from scheduler.scenario import load_scenario

ROOT = Path(__file__).resolve().parents[2]


def mps(prob: object, folder: Path, name: str) -> Path:
    """A PuLP model as an MPS file (names are kept, so HiGHS columns map back to PuLP variables)."""
    path = folder / f"{name}.mps"
    prob.writeMPS(str(path))  # type: ignore[attr-defined]
    return path


def highs_reading(path: Path) -> highspy.Highs:
    h = highspy.Highs()
    h.setOptionValue("output_flag", False)
    h.readModel(str(path))
    return h


def partial_bounds(kept: Built, problem: Problem, path: Path, upper: float, seconds: float) -> None:
    """Whole instances, and whole replicas for one deployment at a time: each a valid bound (a relaxation of
    the MIP over the kept options, in the MPS file at `path`, itself exact below `upper`)."""
    best = 0.0
    for deployment in sorted({c.deployment for c in problem.candidates}):
        h = highs_reading(path)
        columns = {name: j for j, name in enumerate(h.getLp().col_names_)}
        relaxed = [columns[v.name] for k, v in kept.n.items() if problem.candidates[k].deployment != deployment]
        h.changeColsIntegrality(len(relaxed), relaxed, [highspy.HighsVarType.kContinuous] * len(relaxed))
        h.setOptionValue("time_limit", seconds)
        h.setOptionValue("mip_rel_gap", 1e-6)
        started = time.perf_counter()
        h.run()
        bound = min(upper, h.getInfo().mip_dual_bound + kept.constant)
        best = max(best, bound)
        print(f"  whole instances + whole {deployment} replicas: bound ${bound:.4f}/h "
              f"({h.modelStatusToString(h.getModelStatus())}, {time.perf_counter() - started:.1f} s)")
    print(f"best partial-integrality bound: ${best:.4f}/h; llmfleet's plan is {upper / best - 1:.2%} above it")


def main(argv: list[str] | None = None) -> int:
    p = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    p.add_argument("scenario", nargs="?", type=Path, default=ROOT / "benchmarks" / "scenarios" / "multi-region.yaml")
    p.add_argument("--plan-seconds", type=float, default=60.0, help="llmfleet's solve, the upper bound")
    p.add_argument("--mip-seconds", type=float, default=600.0, help="the exact MIP over the options kept")
    p.add_argument("--partial", action="store_true", help="also the partial-integrality bounds (step 4)")
    args = p.parse_args(argv)

    scenario = load_scenario(args.scenario)
    table = build_candidates(scenario.snapshot, PerfModel(gpus=scenario.gpus))
    problem = compile_problem(scenario.snapshot, table.candidates)
    full = build_model(problem, range(len(problem.candidates)))
    with tempfile.TemporaryDirectory(prefix="llmfleet-exact-") as tmp:
        started = time.perf_counter()
        lp = highs_reading(mps(full.prob, Path(tmp), "full"))
        lp.setOptionValue("solve_relaxation", True)
        lp.run()
        lp_bound = lp.getInfo().objective_function_value + full.constant
        reduced = dict(zip(lp.getLp().col_names_, lp.getSolution().col_dual, strict=True))
        print(f"LP bound over all {len(problem.candidates):,} options: ${lp_bound:.4f}/h "
              f"({time.perf_counter() - started:.1f} s)")

        plan = solve(scenario.snapshot, table, SolveOptions(time_limit_s=args.plan_seconds))
        if not plan.ok:
            print(f"llmfleet found no plan ({plan.status}): nothing to prove against", file=sys.stderr)
            return 1
        upper = plan.cost_per_hour
        print(f"llmfleet's plan in {args.plan_seconds:g} s: ${upper:.4f}/h ({plan.status}), "
              f"{upper / lp_bound - 1:.2%} above the LP bound")

        room = upper - lp_bound
        pools = {pid for pid, v in full.inst.items() if reduced[v.name] < room}
        keep = [k for k, v in full.n.items() if reduced[v.name] < room and problem.pool_of[k].id in pools]
        print(f"reduced-cost fixing keeps {len(keep):,} options in {len(pools)} of {len(full.inst)} pools")
        kept = build_model(problem, keep)
        kept_path = mps(kept.prob, Path(tmp), "kept")
        if args.partial:
            partial_bounds(kept, problem, kept_path, upper, args.mip_seconds)
        mip = highs_reading(kept_path)
        mip.setOptionValue("time_limit", args.mip_seconds)
        mip.setOptionValue("mip_rel_gap", 1e-6)
        mip.setOptionValue("objective_bound", upper)  # only plans cheaper than llmfleet's matter
        mip_started = time.perf_counter()
        mip.run()
        info, status = mip.getInfo(), mip.modelStatusToString(mip.getModelStatus())
        feasible = info.primal_solution_status == 2  # HiGHS: kSolutionStatusFeasible
        found = info.objective_function_value + full.constant if feasible else float("inf")
        optimal = status in ("Optimal", "Infeasible")  # infeasible below UB: llmfleet's plan is optimal
        bound = upper if status == "Infeasible" else min(upper, info.mip_dual_bound + full.constant)
        best = min(upper, found)
        print(f"exact MIP: {status} in {time.perf_counter() - mip_started:.1f} s "
              f"(load {os.getloadavg()[0]:.1f})")
        what = "optimum" if optimal else "lower bound"
        print(f"proven {what} over all options: ${bound:.4f}/h; best plan ${best:.4f}/h")
        print(f"llmfleet's plan is {upper / bound - 1:.2%} above it; the LP bound is {1 - lp_bound / bound:.2%} below it")
    return 0


if __name__ == "__main__":
    sys.exit(main())
