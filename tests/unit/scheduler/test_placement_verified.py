"""A plan is returned only after the independent check (verify.py) accepts it.

CBC 2.10's pre-processing can call a model it finds infeasible "Optimal" and return a point that
breaks a row (log: "Postprocessed model is infeasible - possible tolerance issue"); the fleet below is
such a model (found by the hypothesis properties). The solver must see through it.
"""

from __future__ import annotations

from dataclasses import replace

import pytest

import scheduler.placement.solver as solver_mod
from scheduler.model_spec import ModelArch, RequestShape, Slo, Variant
from scheduler.placement import (
    BucketPerf,
    Candidate,
    CandidateTable,
    Constraints,
    DemandSlice,
    Deployment,
    Pool,
    Region,
    Snapshot,
    SolveOptions,
    solve,
)
from scheduler.placement.cbc import run_cbc
from scheduler.placement.milp import build_model
from scheduler.placement.problem import Problem, compile_problem

ARCH = ModelArch("m", 8, 32, 4096, 8, 128, 8192)
SHORT, LONG = RequestShape(300, 100), RequestShape(2000, 200)
VARIANTS = (Variant("bf16", 2.0, 0.0), Variant("int4", 0.5, 1.0))


def spot_trap() -> tuple[Snapshot, CandidateTable]:
    """d0's short requests fill the only on-demand 4-GPU instance it may use, so its long requests
    would have to go to spot beyond its 50% cap: infeasible."""
    pools = (
        Pool("p0", "c0", "r0", "t", "G", 4, "on-demand", 4.0, 1),
        Pool("p2", "c0", "r0", "t", "G", 2, "spot", 2.0, 2),
        Pool("p4", "c0", "r0", "t", "G", 4, "on-demand", 4.0, 1),
    )
    slo = Slo(250.0, 50)
    d0 = Deployment(
        "d0",
        ARCH,
        VARIANTS,
        slo,
        (DemandSlice("r0", SHORT, 0.5), DemandSlice("r0", LONG, 1.0)),
        Constraints(max_spot_share=0.5),
    )
    d1 = Deployment("d1", ARCH, VARIANTS, slo, (DemandSlice("r0", SHORT, 0.0),), Constraints(min_replicas=1))
    table = CandidateTable(
        (
            Candidate("d0", "bf16", "p0", 1, {LONG: (BucketPerf(1.0, 50.0),)}),
            Candidate("d0", "int4", "p0", 4, {SHORT: (BucketPerf(4.0, 50.0),)}),
            Candidate("d0", "int4", "p2", 2, {LONG: (BucketPerf(2.0, 50.0),)}),
            Candidate("d1", "bf16", "p4", 1, {SHORT: (BucketPerf(1.0, 50.0),)}),
            Candidate("d1", "bf16", "p4", 4, {SHORT: (BucketPerf(4.0, 50.0),)}),
        )
    )
    return Snapshot((Region("r0", "c0", 40.7, -74.0),), pools, (d0, d1), headroom=0.7), table


def test_cbc_never_reports_a_point_that_breaks_a_row_as_a_solution() -> None:
    snap, table = spot_trap()
    problem = compile_problem(snap, table.candidates)
    built = build_model(problem, set(range(len(problem.candidates))))
    out = run_cbc(built.prob, mip=True, time_limit_s=10, threads=1, gap_rel=1e-6)
    assert not out.has_solution


def test_the_spot_trap_is_reported_infeasible_naming_the_spot_cap() -> None:
    snap, table = spot_trap()
    plan = solve(snap, table, SolveOptions(time_limit_s=10))
    assert plan.status == "infeasible"
    assert any("max_spot_share" in b for b in plan.binding)


@pytest.mark.parametrize("reject", [1, 99])
def test_a_plan_the_check_rejects_is_never_returned(monkeypatch: pytest.MonkeyPatch, reject: int) -> None:
    """Make verify.py reject the first `reject` plans it sees: the solver falls back to the next plan
    (the greedy one), or says no_solution; it never returns a rejected plan."""
    snap, table = spot_trap()
    roomy = Pool("p0", "c0", "r0", "t", "G", 4, "on-demand", 4.0, 2)  # now feasible
    snap = replace(snap, pools=tuple(roomy if p.id == "p0" else p for p in snap.pools))
    real = solver_mod.violations
    checked: list[bool] = []  # per plan checked: was it rejected

    def picky(problem: Problem, counts: dict[int, int], flows: dict[tuple[int, int], float]) -> list[str]:
        checked.append(len(checked) < reject)
        return ["rejected by the test"] if checked[-1] else real(problem, counts, flows)

    monkeypatch.setattr(solver_mod, "violations", picky)
    plan = solve(snap, table, SolveOptions(time_limit_s=10))
    assert checked[0]
    if plan.ok:
        # The plan returned is the one the real check accepted, and the rejection is reported.
        assert checked[-1] is False and plan.stats["verified"] == "ok"
        assert "rejected by the test" in plan.stats["rejected_plans"]
    else:
        assert plan.status == "no_solution" and "broke a rule" in plan.reasons[0]
        assert all(checked)
    if reject == 99:
        assert plan.status == "no_solution"
