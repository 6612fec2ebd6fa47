"""Benchmark: a simulated day of real traffic, llmfleet against the peers' policies and the bound.

    .venv/bin/python -m benchmarks.fleet_sim.run                                   # day-3-regions, 24 h
    .venv/bin/python -m benchmarks.fleet_sim.run --hours 6 --seed 1 --workers 1

Prints a Markdown table with ratios against llmfleet (same requests, same events, same performance
truth) and the targets of issue 9, and writes docs/benchmarks/fleet_sim.png (cost and SLO attainment
over the day). Policies run in `--workers` processes (default 2, one per core); wall time is measured
here, outside the simulator, and depends on the machine's load.
"""

from __future__ import annotations

import argparse
import os
import sys
import time
from concurrent.futures import ProcessPoolExecutor
from dataclasses import replace
from pathlib import Path
from typing import Any

if __package__ in (None, ""):
    sys.path.insert(0, str(Path(__file__).resolve().parents[2]))

from control_plane.cli.simulate_cmd import result_json
from scheduler.fleet_sim import POLICIES, SimResult, load_sim_scenario, simulate

ROOT = Path(__file__).resolve().parents[2]
SCENARIO = ROOT / "benchmarks" / "scenarios" / "day-3-regions.yaml"
PNG = ROOT / "docs" / "benchmarks" / "fleet_sim.png"
TARGET_VS = {"skyserve": 0.40, "melange": 0.15}
TARGET_BOUND = 0.15
# Balanced over two workers (seed 0, 2026-12-07: melange 234 s; llmfleet + skyserve 124 s, static 15 s,
# the bounds 99 s).
GROUPS = (("melange",), ("llmfleet", "skyserve", "static", "bound"))


Job = tuple[str, tuple[str, ...], float | None, int, float | None]


def _run(job: Job) -> tuple[SimResult, float]:
    path, names, hours, seed, bound_s = job
    started = time.perf_counter()
    sim = load_sim_scenario(Path(path))
    if bound_s is not None:
        sim = replace(sim, settings=sim.settings.model_copy(update={"bound_time_limit_s": bound_s}))
    result = simulate(sim, list(names), hours=hours, seed=seed)
    return result, time.perf_counter() - started


def run(
    path: Path, hours: float | None, seed: int, workers: int, bound_s: float | None = None
) -> tuple[SimResult, float]:
    started = time.perf_counter()
    groups = GROUPS if workers > 1 else (POLICIES,)
    jobs: list[Job] = [(str(path), g, hours, seed, bound_s) for g in groups]
    if workers > 1:
        with ProcessPoolExecutor(max_workers=workers) as pool:
            parts = list(pool.map(_run, jobs))
    else:
        parts = [_run(jobs[0])]
    for (_, names, *_), (_, seconds) in zip(jobs, parts, strict=True):
        print(f"{', '.join(names)}: {seconds:.0f} s", file=sys.stderr)
    merged = parts[0][0]
    for other, _ in parts[1:]:
        merged.policies.update(other.policies)
        merged.bounds.update(other.bounds)
    merged.policies = {n: merged.policies[n] for n in POLICIES if n in merged.policies}
    return merged, time.perf_counter() - started


def pct(x: float | None) -> str:
    return "-" if x is None else f"{x:.2%}"


def _ms(row: dict[str, Any], key: str) -> str:
    return "inf" if row[key] is None else f"{row[key]:,.0f}"


def _tp(row: dict[str, Any], key: str) -> str:
    return "inf" if row[key] is None else f"{row[key]:.1f}"


def table(result: SimResult) -> str:
    data = result_json(result)
    base = data["llmfleet"]["cost_usd"]
    lines = [
        (
            "| policy | total $ | llmfleet cheaper by | $ / 1M tokens | SLO attainment | TTFT p50 / p95 / p99 ms | "
            "TPOT p50 / p95 / p99 ms | replica-hours | max replicas |"
        ),
        "|---|---|---|---|---|---|---|---|---|",
    ]
    for name, row in data.items():
        if name == "bound":
            peak = row["cost_usd_peak_minute_demand"]
            lines.append(
                f"| perfect-foresight LP bound (mean demand) | ${row['cost_usd']:,.2f} | "
                f"llmfleet is {base / row['cost_usd'] - 1:+.1%} above | {row['usd_per_1m_tokens']:.4f} | - | - | - | - | - |"
            )
            if peak is not None:
                lines.append(
                    f"| perfect-foresight LP bound (busiest-minute demand) | ${peak:,.2f} | "
                    f"llmfleet is {base / peak - 1:+.1%} above | - | - | - | - | - | - |"
                )
            plan, proven = row["cost_usd_perfect_foresight_plan"], row["lower_usd_perfect_foresight_plan"]
            if plan is not None:
                lines.append(
                    f"| perfect-foresight plan (integer, busiest minute; proven >= ${proven:,.2f}) | "
                    f"${plan:,.2f} | llmfleet is {base / plan - 1:+.1%} above (at most "
                    f"{base / proven - 1:+.1%} above its optimum) | - | - | - | - | - | - |"
                )
            continue
        p = result.policies[name]
        cheaper = "" if name == "llmfleet" else f"{1 - base / row['cost_usd']:.1%}"
        lines.append(
            f"| {name} | ${row['cost_usd']:,.2f} | {cheaper} | {row['usd_per_1m_tokens']:.4f} | "
            f"{pct(row['slo_attainment'])} | {_ms(row, 'p50_ttft_ms')} / {_ms(row, 'p95_ttft_ms')} / {_ms(row, 'p99_ttft_ms')} | "
            f"{_tp(row, 'p50_tpot_ms')} / {_tp(row, 'p95_tpot_ms')} / {_tp(row, 'p99_tpot_ms')} | {p.replica_hours:,.0f} | "
            f"{max(p.timeline.replicas, default=0)} |"
        )
    return "\n".join(lines)


def targets(result: SimResult) -> str:
    data = result_json(result)
    me = data["llmfleet"]
    out = ["| target | result | |", "|---|---|---|"]
    for peer, goal in TARGET_VS.items():
        if peer not in data:
            continue
        saved = 1 - me["cost_usd"] / data[peer]["cost_usd"]
        # The target is llmfleet's: this much cheaper while it meets 99%. A peer below 99% is said so (the
        # issue's "compare at its attainment too": llmfleet then serves more within SLO for less).
        note = "met" if saved >= goal and me["slo_attainment"] >= 0.99 else "**not met**"
        if data[peer]["slo_attainment"] < 0.99:
            note += f" ({peer} itself misses 99%)"
        out.append(
            f"| >= {goal:.0%} cheaper than {peer} at SLO attainment >= 99% | {saved:.1%} cheaper; attainment "
            f"llmfleet {pct(me['slo_attainment'])}, {peer} {pct(data[peer]['slo_attainment'])} | {note} |"
        )
    bound = data.get("bound", {})
    for label, key in (
        ("the LP bound (mean demand)", "cost_usd"),
        ("the LP bound (busiest minute)", "cost_usd_peak_minute_demand"),
        ("the integer perfect-foresight plan (its cost)", "cost_usd_perfect_foresight_plan"),
        ("the integer perfect-foresight plan (its proven lower bound)", "lower_usd_perfect_foresight_plan"),
    ):
        if bound.get(key):
            above = me["cost_usd"] / bound[key] - 1
            out.append(
                f"| within {TARGET_BOUND:.0%} of {label} | {above:+.1%} | "
                f"{'met' if above <= TARGET_BOUND else '**not met**'} |"
            )
    return "\n".join(out)


def plot(result: SimResult, path: Path) -> None:
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    fig, (ax1, ax2, ax3) = plt.subplots(3, 1, figsize=(9, 9), sharex=True)
    for name, p in result.policies.items():
        tl = p.timeline
        ax1.plot(tl.hours, tl.cost_usd, label=name)
        # hourly attainment: met / requests over each hour of ticks
        hours = [int(h - 1e-9) for h in tl.hours]
        req: dict[int, float] = {}
        met: dict[int, float] = {}
        for h, r, m in zip(hours, tl.requests, tl.met):
            req[h] = req.get(h, 0.0) + r
            met[h] = met.get(h, 0.0) + m
        xs = sorted(req)
        ax2.plot(
            [x + 0.5 for x in xs], [met[x] / req[x] if req[x] else 1.0 for x in xs], marker=".", label=name
        )
        ax3.plot(tl.hours, tl.replicas, label=name)
    for statistic, style, label in (
        ("mean", "k--", "LP bound (mean demand)"),
        ("plan", "k:", "perfect-foresight plan"),
    ):
        bound = result.bounds.get(statistic)
        if bound is None or bound.cost_usd is None:
            continue
        hours_per = result.hours / max(1, len(bound.per_interval_usd))
        acc, xs, ys = 0.0, [], []
        for i, v in enumerate(bound.per_interval_usd):
            acc += v or 0.0
            xs.append((i + 1) * hours_per)
            ys.append(acc)
        ax1.plot(xs, ys, style, label=label)
    ax1.set_ylabel("cumulative cost ($)")
    ax2.set_ylabel("SLO attainment (hourly)")
    ax2.set_ylim(0.5, 1.01)
    ax3.set_ylabel("replicas running")
    ax3.set_xlabel("hour of the day (UTC)")
    ax1.legend(fontsize=8)
    ax1.set_title(f"{result.scenario}: {result.hours:g} h, seed {result.seed}")
    fig.tight_layout()
    path.parent.mkdir(parents=True, exist_ok=True)
    fig.savefig(path, dpi=110)
    plt.close(fig)


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--scenario", type=Path, default=SCENARIO)
    ap.add_argument("--hours", type=float, default=None)
    ap.add_argument("--seed", type=int, default=0)
    ap.add_argument("--workers", type=int, default=2)
    ap.add_argument("--png", type=Path, default=PNG)
    ap.add_argument(
        "--bound-time-limit", type=float, default=None, metavar="S",
        help="seconds per MILP solve of the perfect-foresight plan (default: the scenario's setting)",
    )
    args = ap.parse_args()
    result, wall = run(args.scenario, args.hours, args.seed, args.workers, args.bound_time_limit)
    print(f"## {result.scenario}: {result.hours:g} h, seed {result.seed}\n")
    print(
        f"wall time {wall:.0f} s with {args.workers} worker process(es) on {os.cpu_count()} cores "
        f"(load average {os.getloadavg()[0]:.1f}); perf-model error per accelerator (truth / belief): "
        + ", ".join(f"{k} {v:.2f}" for k, v in sorted(result.perf_factors.items()))
        + "\n"
    )
    print(table(result) + "\n")
    print(targets(result) + "\n")
    for name, p in result.policies.items():
        print(
            f"- {name}: {p.solves} planner calls, {p.metrics.dropped:,.0f} requests dropped (no replica), "
            f"{p.metrics.disrupted:,.0f} disrupted by preemptions/outages"
        )
    plot(result, args.png)
    print(f"\nwrote {args.png.relative_to(ROOT) if args.png.is_relative_to(ROOT) else args.png}")


if __name__ == "__main__":
    main()
