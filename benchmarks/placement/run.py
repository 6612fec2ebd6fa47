"""Benchmark: llmfleet's placement against the peers' policies and its LP bound; solver scaling.

    .venv/bin/python -m benchmarks.placement.run                      # everything, Markdown on stdout
    .venv/bin/python -m benchmarks.placement.run --only scenarios     # cost vs baselines on the scenarios
    .venv/bin/python -m benchmarks.placement.run --only scaling       # solve time vs fleet size
    .venv/bin/python -m benchmarks.placement.run --time-limit 60      # longer solver budget per scenario

Scenarios are the checked-in files in benchmarks/scenarios/ (real catalog prices, Azure traces). The
scaling part uses synthetic fleets (scheduler/placement/synthetic.py) with closed-form capacities.
Solve times are wall-clock on this machine and depend on its load: record `nproc` and the load next to
them.
"""

from __future__ import annotations

import argparse
import os
import statistics
import sys
import time
from pathlib import Path

if __package__ in (None, ""):  # run as a script: make the repository root importable
    sys.path.insert(0, str(Path(__file__).resolve().parents[2]))

from scheduler.perf_model import PerfModel
from scheduler.placement import CandidateTable, Plan, SolveOptions, build_candidates, solve
from scheduler.placement.baselines import BASELINES, run_baselines
from scheduler.placement.synthetic import synthetic_fleet
from scheduler.scenario import load_scenario

SCENARIOS = Path(__file__).resolve().parents[1] / "scenarios"
ORDER = ("multi-region", "multi-region-small", "us-three-clouds", "single-region-chat")
# Targets from issue 4, checked on the multi-region scenario.
TARGET_VS = {"skyserve": 0.40, "melange": 0.15}
TARGET_LP_GAP = 0.02
# (deployments, pools, time limit s); the first and last carry the targets (1 s and 10 s).
SIZES = ((10, 200, 1.0), (25, 300, 3.0), (50, 500, 5.0), (100, 1000, 10.0))


def full_quality_only(table: CandidateTable, snapshot) -> CandidateTable:  # type: ignore[no-untyped-def]
    """Ablation: llmfleet without quantised variants (what the rest of the method is worth)."""
    keep = [
        c
        for c in table.candidates
        if c.variant == snapshot.deployment_by_name[c.deployment].full_quality_variant.name
    ]
    return CandidateTable(tuple(keep), table.notes)


def pct(x: float | None) -> str:
    return "-" if x is None else f"{x:.1%}"


def money(x: float | None) -> str:
    return "null" if x is None else f"${x:,.2f}"


def scenarios(time_limit: float) -> list[str]:
    out = [
        "## Cost against the peers' policies and the LP bound",
        "",
        f"Solver time limit {time_limit:g} s per solve, 2 threads. Costs are $/hour for the whole fleet "
        '(instances x list price, catalog snapshot 2026-11-29). "cheaper" = 1 - llmfleet / baseline.',
        "",
    ]
    header = (
        "scenario",
        "options",
        "llmfleet $/h",
        "status",
        "LP bound",
        "gap to LP",
        "solve s",
        "llmfleet bf16-only",
        *BASELINES,
    )
    out += ["| " + " | ".join(header) + " |", "|" + "---|" * len(header)]
    checks: list[str] = []
    for name in ORDER:
        path = SCENARIOS / f"{name}.yaml"
        scn = load_scenario(path)
        table = build_candidates(scn.snapshot, PerfModel(gpus=scn.gpus))
        opts = SolveOptions(time_limit_s=time_limit)
        plan = solve(scn.snapshot, table, opts)
        ablation = solve(scn.snapshot, full_quality_only(table, scn.snapshot), opts)
        peers = run_baselines(scn.snapshot, table, list(BASELINES), opts)
        gap = _lp_gap(plan)
        cells = [
            name,
            str(plan.stats.get("options", "")),
            money(plan.cost_per_hour),
            plan.status,
            money(plan.lower_bound_per_hour),
            pct(gap),
            f"{plan.solve_seconds:.1f}",
            money(ablation.cost_per_hour),
        ]
        for b in BASELINES:
            r = peers[b]
            saving = (
                (1 - plan.cost_per_hour / r.cost_per_hour)
                if (r.cost_per_hour and plan.cost_per_hour)
                else None
            )
            cells.append(f"{money(r.cost_per_hour)} ({pct(saving)} cheaper)" if r.cost_per_hour else "null")
        out.append("| " + " | ".join(cells) + " |")
        for b, r in peers.items():
            if r.cost_per_hour is None:
                checks.append(f"- {name}: `{b}` is null: {r.reason}")
        if name == "multi-region" and plan.cost_per_hour is not None:
            for b, target in TARGET_VS.items():
                r = peers[b]
                saving = (1 - plan.cost_per_hour / r.cost_per_hour) if r.cost_per_hour else None
                met = saving is not None and saving >= target
                checks.append(
                    f"- target: >= {target:.0%} cheaper than `{b}` on multi-region: "
                    f"{pct(saving)} -> {'met' if met else 'NOT met'}"
                )
            met = gap is not None and gap <= TARGET_LP_GAP
            checks.append(
                f"- target: within {TARGET_LP_GAP:.0%} of the LP bound on multi-region: gap {pct(gap)} "
                f"-> {'met' if met else 'NOT met'}; CBC's own bound over the options it kept: "
                f"{money(plan.mip_bound_per_hour)} (no plan over those options is cheaper)"
            )
    return out + ["", *checks, ""]


def _lp_gap(plan: Plan) -> float | None:
    if plan.cost_per_hour is None or plan.lower_bound_per_hour is None or plan.objective_per_hour is None:
        return None
    return (plan.objective_per_hour - plan.lower_bound_per_hour) / plan.objective_per_hour


BOUND_KIND = {"exact LP": "exact LP", "Lagrangian": "Lagrangian", "demand x best": "demand x $/rps"}


def scaling(seeds: int) -> list[str]:
    out = [
        "## Solve time and gap against fleet size (synthetic fleets, 2 threads)",
        "",
        f"Machine: {os.cpu_count()} cores, load average {os.getloadavg()[0]:.1f} when the run started. "
        f'Median (max) over {seeds} seeds. "gap" is against the bound the solver reports (its kind per seed '
        'in "bound"): the exact LP over all options when pricing converged, else a valid Lagrangian bound '
        "over all options, or demand x best $/rps when no LP was priced in time. \"restricted LP\" is the LP "
        "over the options kept (not a bound): plan vs restricted LP shows how much of the gap is the plan, "
        "bound vs restricted LP how much is the bound.",
        "",
        "| deployments x pools | options | time limit s | solve s | compile s | LP+pricing s | status "
        "| bound | gap to bound | plan above restricted LP | bound below restricted LP |",
        "|---|---|---|---|---|---|---|---|---|---|---|",
    ]
    for deployments, pools, limit in SIZES:
        rows = []
        for seed in range(seeds):
            fleet = synthetic_fleet(deployments, pools, seed=seed)
            started = time.perf_counter()
            plan = solve(fleet.snapshot, fleet.table, SolveOptions(time_limit_s=limit))
            wall = time.perf_counter() - started
            rows.append((plan, wall))
        secs = [w for _, w in rows]
        gaps = [g for g in (_lp_gap(p) for p, _ in rows) if g is not None]
        statuses = ", ".join(sorted({p.status for p, _ in rows}))
        comp = [float(p.stats.get("seconds_compile", 0.0)) for p, _ in rows]
        lp = [float(p.stats.get("seconds_lp", 0.0)) for p, _ in rows]
        opts = [int(p.stats.get("options", 0)) for p, _ in rows]
        kinds = [_bound_kind(str(p.stats.get("lp_bound", ""))) for p, _ in rows]
        kind = ", ".join(f"{k} x{kinds.count(k)}" for k in dict.fromkeys(kinds))
        above, below = [], []
        for p, _ in rows:
            restricted = p.stats.get("lp_restricted_per_hour")
            if restricted and p.objective_per_hour and p.lower_bound_per_hour is not None:
                above.append(p.objective_per_hour / float(restricted) - 1)
                below.append(1 - p.lower_bound_per_hour / float(restricted))
        out.append(
            f"| {deployments} x {pools} | {int(statistics.median(opts)):,} | {limit:g} | "
            f"{statistics.median(secs):.2f} ({max(secs):.2f}) | {statistics.median(comp):.2f} | "
            f"{statistics.median(lp):.2f} | {statuses} | {kind} | {_med_max(gaps)} | {_med_max(above)} | "
            f"{_med_max(below)} |"
        )
    return out + [""]


def _bound_kind(text: str) -> str:
    return next((short for key, short in BOUND_KIND.items() if text.startswith(key)), text or "-")


def _med_max(xs: list[float]) -> str:
    return f"{pct(statistics.median(xs))} ({pct(max(xs))})" if xs else "-"


def main(argv: list[str] | None = None) -> int:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--only", choices=("scenarios", "scaling"))
    ap.add_argument("--time-limit", type=float, default=10.0, help="solver limit per scenario solve (s)")
    ap.add_argument("--seeds", type=int, default=3, help="synthetic fleets per size")
    args = ap.parse_args(argv)
    lines = ["# Placement benchmark", ""]
    if args.only in (None, "scenarios"):
        lines += scenarios(args.time_limit)
    if args.only in (None, "scaling"):
        lines += scaling(args.seeds)
    print("\n".join(lines))
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
