"""`llmfleet simulate SCENARIO`: a day of trace-driven traffic on the fleet, policy by policy.

Runs scheduler.fleet_sim in virtual time (a 24-hour day takes minutes) and compares llmfleet with the
peers' policies and the perfect-foresight bound on cost, SLO attainment and latency. Exit codes: 0 done,
2 the scenario file or an option is invalid (one-line message naming the field).
"""

from __future__ import annotations

import json
import math
from pathlib import Path
from typing import Any

import typer
from rich.console import Console
from rich.table import Table

from control_plane.cli.errors import fail
from scheduler.fleet_sim import POLICIES, SimResult, load_sim_scenario
from scheduler.fleet_sim import simulate as run_simulation
from scheduler.scenario import ScenarioError


def simulate_cmd(
    scenario: Path = typer.Argument(..., help="scenario file (YAML or JSON, see docs/fleet_sim.md)"),
    hours: float | None = typer.Option(
        None, "--hours", help="simulated hours (default: the scenario's, else 24)"
    ),
    policies: str = typer.Option(
        ",".join(POLICIES), "--policies", help="comma-separated: " + ", ".join(POLICIES)
    ),
    seed: int = typer.Option(0, "--seed", help="seed of the traffic, preemptions and performance error"),
    json_output: bool = typer.Option(False, "--json", help="print one JSON object instead of a table"),
) -> None:
    """Simulate SCENARIO's day of traffic under each policy and compare cost and SLO attainment."""
    names = [p.strip() for p in policies.split(",") if p.strip()]
    unknown = [p for p in names if p not in POLICIES]
    if not names or unknown:
        raise fail(
            f"--policies: unknown policy {', '.join(unknown) or '(none given)'}; known: {', '.join(POLICIES)}"
        )
    if hours is not None and not (0 < hours <= 168):
        raise fail("--hours: must be in (0, 168]")
    try:
        sim = load_sim_scenario(scenario)
    except ScenarioError as exc:
        raise fail(f"{scenario}: {exc}") from None
    result = run_simulation(sim, names, hours=hours, seed=seed)
    if json_output:
        print(json.dumps(result_json(result), indent=2))
    else:
        print_table(result)


simulate = simulate_cmd  # the name main.py registers: app.command("simulate")(simulate_cmd.simulate)


def _num(x: float | None, digits: int = 4) -> float | None:
    return None if x is None or not math.isfinite(x) else round(x, digits)


def result_json(result: SimResult) -> dict[str, Any]:
    """One object, keyed by policy; the bound has costs only (its plans are not simulated)."""
    out: dict[str, Any] = {}
    for name, p in result.policies.items():
        m = p.metrics
        out[name] = {
            "cost_usd": _num(p.cost_usd, 2),
            "slo_attainment": _num(m.slo_attainment, 6),
            "p95_ttft_ms": _num(m.percentile("ttft", 0.95), 1),
            "p95_tpot_ms": _num(m.percentile("tpot", 0.95), 2),
            "tokens": round(m.tokens),
            "usd_per_1m_tokens": _num(p.usd_per_1m_tokens, 4),
            "requests": round(m.requests),
            "dropped": round(m.dropped),
            "p50_ttft_ms": _num(m.percentile("ttft", 0.50), 1),
            "p99_ttft_ms": _num(m.percentile("ttft", 0.99), 1),
            "p50_tpot_ms": _num(m.percentile("tpot", 0.50), 2),
            "p99_tpot_ms": _num(m.percentile("tpot", 0.99), 2),
            "replica_hours": _num(p.replica_hours, 2),
            "replicas_over_time": [[_num(h, 3), n] for h, n in zip(p.timeline.hours, p.timeline.replicas)],
        }
    if result.bounds:
        mean = result.bounds.get("mean")
        peak = result.bounds.get("peak_minute")
        plan = result.bounds.get("plan")
        tokens = next(iter(result.policies.values())).metrics.tokens if result.policies else None
        cost = None if mean is None else mean.cost_usd
        out["bound"] = {
            "cost_usd": _num(cost, 2),
            "slo_attainment": None,
            "p95_ttft_ms": None,
            "p95_tpot_ms": None,
            "tokens": None if tokens is None else round(tokens),
            "usd_per_1m_tokens": _num(cost / tokens * 1e6, 4) if cost is not None and tokens else None,
            "cost_usd_peak_minute_demand": None if peak is None else _num(peak.cost_usd, 2),
            # the integer perfect-foresight plan, and the lower bound the solver proved for it
            "cost_usd_perfect_foresight_plan": None if plan is None else _num(plan.cost_usd, 2),
            "lower_usd_perfect_foresight_plan": None if plan is None else _num(plan.lower_usd, 2),
        }
    return out


def print_table(result: SimResult) -> None:
    console = Console()
    console.print(
        f"[bold]{result.scenario}[/bold]: {result.hours:g} h simulated, seed {result.seed}", highlight=False
    )
    t = Table(title="Policies on the same requests and events")
    for col in (
        "policy",
        "cost $",
        "$/1M tok",
        "SLO attained",
        "TTFT p50/p95/p99 ms",
        "TPOT p50/p95/p99 ms",
        "max replicas",
    ):
        t.add_column(col)
    data = result_json(result)
    base = data.get("llmfleet", {}).get("cost_usd")
    for name, row in data.items():
        if name == "bound":
            for label, cost in (
                ("perfect-foresight LP bound (mean demand)", row["cost_usd"]),
                ("perfect-foresight LP bound (busiest minute)", row["cost_usd_peak_minute_demand"]),
                ("perfect-foresight plan (integer)", row["cost_usd_perfect_foresight_plan"]),
            ):
                shown = "-" if cost is None else f"{cost:,.2f}"
                if cost and base:
                    shown += f" (llmfleet {base / cost - 1:+.0%} above)"
                if label.endswith("(integer)") and row["lower_usd_perfect_foresight_plan"] is not None:
                    shown += f", proven >= {row['lower_usd_perfect_foresight_plan']:,.2f}"
                per_token = f"{cost / row['tokens'] * 1e6:.3f}" if cost is not None and row["tokens"] else "-"
                t.add_row(label, shown, per_token, "-", "-", "-", "-")
            continue
        p = result.policies[name]
        vs = (
            ""
            if not base or name == "llmfleet" or not row["cost_usd"]
            else f" (llmfleet {1 - base / row['cost_usd']:+.0%})"
        )
        t.add_row(
            name,
            f"{row['cost_usd']:,.2f}{vs}",
            f"{row['usd_per_1m_tokens']:.3f}" if row["usd_per_1m_tokens"] is not None else "-",
            f"{row['slo_attainment']:.2%}",
            "/".join(_ms(row[k]) for k in ("p50_ttft_ms", "p95_ttft_ms", "p99_ttft_ms")),
            "/".join(_ms(row[k]) for k in ("p50_tpot_ms", "p95_tpot_ms", "p99_tpot_ms")),
            str(max(p.timeline.replicas, default=0)),
        )
    console.print(t)


def _ms(x: float | None) -> str:
    return "inf" if x is None else f"{x:,.0f}" if x >= 100 else f"{x:.1f}"
