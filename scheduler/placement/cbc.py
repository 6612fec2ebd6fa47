"""Running CBC through PuLP and reading back what it really achieved.

PuLP maps a time-limited run that found an integer solution to status "Optimal"; only `sol_status`
tells "proven optimal" (1) from "integer feasible" (2). CBC's best bound is not exposed by PuLP, so we
read it from CBC's own log ("Lower bound:"), which it prints when it stops early.
"""

from __future__ import annotations

import os
import re
import subprocess
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

MIN_CBC_LIMIT_S = 0.05  # CBC treats tiny limits oddly; it is killed at the deadline anyway
# CBC checks its clock between steps (pre-processing, root cuts, heuristics): leave it room to stop.
CBC_STOP_MARGIN = 0.2  # of the time left, and at most
CBC_STOP_MARGIN_MAX_S = 0.4

_BOUND = re.compile(r"^Lower bound:\s+(-?[0-9.eE+-]+)", re.MULTILINE)


@dataclass(frozen=True, slots=True)
class CbcOutcome:
    sol_status: int
    objective: float | None
    best_bound: float | None  # from CBC's log when it stopped early; None otherwise
    seconds: float
    crashed: bool = False
    timed_out: bool = False  # killed at the caller's wall-clock deadline
    flawed: bool = False  # CBC called a point that breaks the model a solution (see run_cbc)

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
    deadline: float | None = None,
) -> CbcOutcome:
    """Solve; `start` (variable name -> value, others 0) is handed to CBC as a MIP start.

    `deadline` (a time.perf_counter() value) is a hard wall-clock limit for the whole call: CBC's own
    limit is set short of it (CBC checks its clock only between steps, so it can overrun), and a CBC
    process still running at the deadline is killed; the outcome then says `timed_out` and has no
    solution.
    """
    started = time.perf_counter()
    if deadline is not None:
        room = deadline - started
        time_limit_s = min(time_limit_s, room - min(CBC_STOP_MARGIN * room, CBC_STOP_MARGIN_MAX_S))
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
    outcome = _attempt(prob, mip, time_limit_s, threads, gap_rel, start is not None, True, deadline, started)
    if outcome.crashed and start is not None:
        # CBC itself can crash on some MIP starts (seen with CBC 2.10.3): retry cold once, and report
        # "no solution" rather than an exception if it fails again.
        left = time_limit_s - (time.perf_counter() - started)
        outcome = _attempt(prob, mip, left, threads, gap_rel, False, True, deadline, started)
    if outcome.flawed:
        # CBC 2.10's pre-processing can declare a model it finds infeasible "Optimal" and hand back a
        # point that breaks a row (Cgl0013I "Postprocessed model is infeasible - possible tolerance
        # issue"). Without pre-processing CBC solves the model as written: proves it infeasible, or
        # finds a real solution.
        left = time_limit_s - (time.perf_counter() - started)
        outcome = _attempt(prob, mip, left, threads, gap_rel, start is not None, False, deadline, started)
        if outcome.flawed:
            outcome = CbcOutcome(SOL_NONE, None, None, outcome.seconds, flawed=True)
    return outcome


def _attempt(
    prob: pulp.LpProblem,
    mip: bool,
    time_limit_s: float,
    threads: int,
    gap_rel: float,
    warm: bool,
    preprocess: bool,
    deadline: float | None,
    started: float,
) -> CbcOutcome:
    """One CBC run; loads its solution into `prob` and says whether CBC flagged any row or bound."""
    with warnings.catch_warnings():
        # PuLP 3.3 announces PULP_CBC_CMD's removal in 4.0; we pin pulp<4 because 4 drops bundled CBC.
        warnings.simplefilter("ignore", DeprecationWarning)
        solver = pulp.PULP_CBC_CMD(msg=False)
    with tempfile.TemporaryDirectory(prefix="llmfleet-cbc-") as tmp:
        mps, sol, mst, log_path = (os.path.join(tmp, f) for f in ("m.mps", "m.sol", "m.mst", "cbc.log"))
        vs, var_names, con_names, _ = prob.writeMPS(mps, rename=1)
        args = [solver.path, mps]
        if warm:
            solver.writesol(mst, prob, vs, var_names, con_names)
            args += ["-mips", mst]
        # Wall-clock seconds (CBC's default is CPU time, which with 2 threads runs twice as fast).
        args += ["-sec", f"{max(MIN_CBC_LIMIT_S, time_limit_s):.3f}", "-timeMode", "elapsed"]
        args += ["-threads", str(threads)]
        if not preprocess:
            args += ["-preprocess", "off"]
        if mip:
            args += ["-ratio", f"{gap_rel:g}", "-solve"]
        else:
            args += ["-initialSolve"]
        args += ["-printingOptions", "all", "-solution", sol]
        with open(log_path, "w") as log_file:
            proc = subprocess.Popen(args, stdout=log_file, stderr=log_file, stdin=subprocess.DEVNULL)
            try:
                wait = None if deadline is None else max(0.0, deadline - time.perf_counter())
                rc = proc.wait(timeout=wait)
            except subprocess.TimeoutExpired:
                proc.kill()
                proc.wait()
                return CbcOutcome(SOL_NONE, None, None, time.perf_counter() - started, timed_out=True)
        seconds = time.perf_counter() - started
        if rc != 0 or not os.path.exists(sol):
            return CbcOutcome(SOL_NONE, None, None, seconds, crashed=True)
        status, values, reduced, duals, slacks, sol_status = solver.readsol_MPS(
            sol, prob, vs, var_names, con_names
        )
        with open(sol, encoding="utf-8", errors="replace") as f:
            # CBC prefixes a row or column its point violates with "**".
            flagged = any(line.startswith("**") for line in f)
        prob.assignVarsVals(values)
        prob.assignVarsDj(reduced)
        prob.assignConsPi(duals)
        prob.assignConsSlack(slacks, activity=True)
        prob.assignStatus(status, sol_status)
        try:
            with open(log_path, encoding="utf-8", errors="replace") as f:
                log = f.read()
        except OSError:
            log = ""
    sol_st = int(prob.sol_status)
    if prob.status == pulp.LpStatusInfeasible:
        # CBC's "Integer infeasible" (proven in pre-processing) reaches PuLP as status -1 with
        # sol_status 0 ("no solution found"); it is a proof, not a time-out.
        sol_st = SOL_INFEASIBLE
    if not mip and prob.status == pulp.LpStatusOptimal:
        sol_st = SOL_OPTIMAL  # an LP has no "integer feasible" state
    has_solution = sol_st in (SOL_OPTIMAL, SOL_FEASIBLE)
    objective = pulp.value(prob.objective) if has_solution else None
    m = _BOUND.search(log)
    bound = float(m.group(1)) if m else None
    flawed = mip and has_solution and flagged
    value = float(objective) if objective is not None else None
    return CbcOutcome(sol_st, value, bound, seconds, flawed=flawed)
