"""Running CBC through PuLP and reading back what it really achieved.

PuLP maps a time-limited run that found an integer solution to status "Optimal"; only `sol_status`
tells "proven optimal" (1) from "integer feasible" (2). CBC's best bound is not exposed by PuLP, so we
read it from CBC's own log ("Lower bound:"), which it prints when it stops early.
"""

from __future__ import annotations

import os
import re
import tempfile
import time
import warnings
from collections.abc import Mapping
from dataclasses import dataclass

import pulp

SOL_OPTIMAL = pulp.LpSolutionOptimal  # 1
SOL_FEASIBLE = pulp.LpSolutionIntegerFeasible  # 2
SOL_NONE = pulp.LpSolutionNoSolutionFound  # 0
SOL_INFEASIBLE = pulp.LpSolutionInfeasible  # -1

_BOUND = re.compile(r"^Lower bound:\s+(-?[0-9.eE+-]+)", re.MULTILINE)


@dataclass(frozen=True, slots=True)
class CbcOutcome:
    sol_status: int
    objective: float | None
    best_bound: float | None  # from CBC's log when it stopped early; None otherwise
    seconds: float
    crashed: bool = False

    @property
    def has_solution(self) -> bool:
        return self.sol_status in (SOL_OPTIMAL, SOL_FEASIBLE)


def run_cbc(
    prob: pulp.LpProblem,
    *,
    mip: bool,
    time_limit_s: float,
    threads: int,
    gap_rel: float,
    start: Mapping[str, float] | None = None,
) -> CbcOutcome:
    """Solve; `start` (variable name -> value, others 0) is handed to CBC as a MIP start."""
    if start is not None:
        for v in prob.variables():
            value = start.get(v.name, 0.0)
            # Solver noise (-1e-15, 2.9999999) must not make a valid start look invalid.
            if v.cat == pulp.LpInteger:
                value = float(round(value))
            if v.lowBound is not None:
                value = max(v.lowBound, value)
            if v.upBound is not None:
                value = min(v.upBound, value)
            v.setInitialValue(value)
    with tempfile.TemporaryDirectory(prefix="llmfleet-cbc-") as tmp:
        log_path = os.path.join(tmp, "cbc.log")
        with warnings.catch_warnings():
            # PuLP 3.3 announces PULP_CBC_CMD's removal in 4.0; we pin pulp<4 because 4 drops bundled CBC.
            warnings.simplefilter("ignore", DeprecationWarning)
            solver = pulp.PULP_CBC_CMD(
                mip=mip,
                msg=False,
                timeLimit=max(0.1, time_limit_s),
                threads=threads,
                gapRel=gap_rel if mip else None,
                logPath=log_path,
                warmStart=start is not None,
            )
        started = time.perf_counter()
        try:
            prob.solve(solver)
        except pulp.PulpSolverError:
            # CBC itself can crash on some MIP starts (seen with CBC 2.10.3); retry cold once, and
            # report "no solution" rather than an exception if it fails again.
            if start is None:
                return CbcOutcome(SOL_NONE, None, None, time.perf_counter() - started, crashed=True)
            return run_cbc(
                prob,
                mip=mip,
                time_limit_s=max(0.1, time_limit_s - (time.perf_counter() - started)),
                threads=threads,
                gap_rel=gap_rel,
                start=None,
            )
        seconds = time.perf_counter() - started
        try:
            with open(log_path, encoding="utf-8", errors="replace") as f:
                log = f.read()
        except OSError:
            log = ""
    sol = int(prob.sol_status)
    if prob.status == pulp.LpStatusInfeasible:
        # CBC's "Integer infeasible" (proven in pre-processing) reaches PuLP as status -1 with
        # sol_status 0 ("no solution found"); it is a proof, not a time-out.
        sol = SOL_INFEASIBLE
    if not mip and prob.status == pulp.LpStatusOptimal:
        sol = SOL_OPTIMAL  # an LP has no "integer feasible" state
    objective = pulp.value(prob.objective) if sol in (SOL_OPTIMAL, SOL_FEASIBLE) else None
    m = _BOUND.search(log)
    bound = float(m.group(1)) if m else None
    return CbcOutcome(sol, float(objective) if objective is not None else None, bound, seconds)
