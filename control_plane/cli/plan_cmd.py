"""`llmfleet plan SCENARIO`: the cheapest placement for a scenario file, beside the peers' policies.

Exit codes: 0 a plan was found (optimal or feasible), 1 no plan (infeasible, or none within the time
limit), 2 the scenario file or an option is invalid (the message names the field).
"""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any

import typer
from rich.console import Console
from rich.table import Table

from scheduler.perf_model import PerfModel
from scheduler.placement import Plan, SolveOptions, build_candidates, solve
from scheduler.placement.baselines import BASELINES, BaselineResult, run_baselines
from scheduler.scenario import ScenarioError, load_scenario

EXIT_NO_PLAN = 1
EXIT_USAGE = 2
DEFAULT_BASELINES = ",".join(BASELINES)


def plan(
    scenario: Path = typer.Argument(..., help="scenario file (YAML or JSON, see docs/scenarios.md)"),
    json_output: bool = typer.Option(False, "--json", help="print one JSON object instead of tables"),
    time_limit: float = typer.Option(10.0, "--time-limit", help="solver time limit in seconds"),
    baselines: str = typer.Option(
        DEFAULT_BASELINES, "--baselines", help="comma-separated peers to compare with, or 'none'"
    ),
) -> None:
    """Plan replicas and routing for SCENARIO at the lowest cost, and compare with the peers' policies."""
    names = _baseline_names(baselines)
    if time_limit <= 0:
        _fail("--time-limit: must be positive")
    try:
        scn = load_scenario(scenario)
    except ScenarioError as exc:
        _fail(f"{scenario}: {exc}")
    options = SolveOptions(time_limit_s=time_limit)
    table = build_candidates(scn.snapshot, PerfModel(gpus=scn.gpus))
    result = solve(scn.snapshot, table, options)
    peers = run_baselines(scn.snapshot, table, names, options) if names else {}
    if json_output:
        print(json.dumps(plan_json(result, peers), indent=2))
    else:
        _print(scn.name, result, peers)
    if not result.ok:
        raise typer.Exit(code=EXIT_NO_PLAN)


def plan_json(result: Plan, peers: dict[str, BaselineResult]) -> dict[str, Any]:
    return {
        "status": result.status,
        "cost_per_hour": _round(result.cost_per_hour),
        "objective_per_hour": _round(result.objective_per_hour),
        "lower_bound_per_hour": _round(result.lower_bound_per_hour),
        "mip_bound_per_hour": _round(result.mip_bound_per_hour),
        "gap": _round(result.gap, 6),
        "solve_seconds": round(result.solve_seconds, 3),
        "replicas": [
            {
                "deployment": r.deployment,
                "variant": r.variant,
                "pool": r.pool,
                "tp": r.tp,
                "count": r.count,
                "load": round(r.load, 4),
                "reason": r.reason,
            }
            for r in result.replicas
        ],
        "routing": [
            {
                "deployment": r.deployment,
                "client_region": r.client_region,
                "pool": r.pool,
                "share": round(r.share, 6),
                "rps": round(r.rps, 4),
            }
            for r in result.routing
        ],
        "pools": [
            {
                "pool": u.pool,
                "instances": u.instances,
                "gpus_used": u.gpus_used,
                "cost_per_hour": _round(u.cost_per_hour),
            }
            for u in result.pools
        ],
        "baselines": {name: _round(b.cost_per_hour) for name, b in peers.items()},
        "baseline_reasons": {name: b.reason for name, b in peers.items()},
        "reasons": list(result.reasons),
        "binding": list(result.binding),
        "stats": dict(result.stats),
    }


def _baseline_names(text: str) -> list[str]:
    if text.strip().lower() in ("", "none"):
        return []
    names = [n.strip() for n in text.split(",") if n.strip()]
    unknown = [n for n in names if n not in BASELINES]
    if unknown:
        _fail(f"--baselines: unknown baseline(s) {', '.join(unknown)}; known: {', '.join(BASELINES)}")
    return names


def _fail(message: str) -> None:
    typer.echo(f"error: {message}", err=True)
    raise typer.Exit(code=EXIT_USAGE)


def _round(value: float | None, digits: int = 4) -> float | None:
    return None if value is None else round(value, digits)


def _money(value: float | None) -> str:
    return "-" if value is None else f"${value:,.2f}"


def _print(name: str, result: Plan, peers: dict[str, BaselineResult]) -> None:
    console = Console()
    gap = "-" if result.gap is None else f"{result.gap:.2%}"
    console.print(
        f"[bold]{name}[/bold]: {result.status}, {_money(result.cost_per_hour)}/h, LP bound "
        f"{_money(result.lower_bound_per_hour)}/h, gap {gap}, solved in {result.solve_seconds:.2f} s"
    )
    if result.replicas:
        t = Table(title="Replicas")
        for col in ("#", "deployment", "variant", "pool", "tp", "count", "load"):
            t.add_column(col, overflow="fold")
        for i, r in enumerate(result.replicas, 1):
            t.add_row(str(i), r.deployment, r.variant, r.pool, str(r.tp), str(r.count), f"{r.load:.0%}")
        console.print(t)
        for i, r in enumerate(result.replicas, 1):
            console.print(f"  {i}. {r.reason}", highlight=False)
    if result.routing:
        t = Table(title="Routing")
        for col in ("deployment", "client region", "pool", "share", "rps"):
            t.add_column(col, overflow="fold")
        for s in result.routing:
            t.add_row(s.deployment, s.client_region, s.pool, f"{s.share:.1%}", f"{s.rps:.2f}")
        console.print(t)
    if peers:
        t = Table(title="Compared with the peers' policies (same inputs, same performance model)")
        for col in ("policy", "$/hour", "llmfleet saves", "note"):
            t.add_column(col, overflow="fold")
        t.add_row("llmfleet", _money(result.cost_per_hour), "", result.status)
        for pname, b in peers.items():
            saves = "-"
            if b.cost_per_hour and result.cost_per_hour is not None:
                saves = f"{1 - result.cost_per_hour / b.cost_per_hour:.1%}"
            t.add_row(pname, _money(b.cost_per_hour), saves, b.reason)
        console.print(t)
    for line in result.reasons:
        console.print(f"- {line}", highlight=False)
