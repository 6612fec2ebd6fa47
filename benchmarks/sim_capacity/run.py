"""How many simulated replicas one CPU core hosts at a given request rate per replica.

Ramp: for N = 1, 2, 4, ... start one `python -m agents.sim` process hosting N replicas, pinned to core 0;
drive every replica with Poisson arrivals at --rate requests per simulated second (so rate x speed-up per
wall second: the speed-up compresses time) from this process, pinned to core 1; measure the simulator's CPU use (from /proc) and the latencies the clients see. Client latencies
are wall seconds x speed-up = simulated seconds, compared with
- the same configuration at N = 1 (host overhead: what hosting more replicas adds), and
- the performance model's prediction at that load (PerfModel.latency_at).
The ramp stops when the simulator needs more than --cpu-limit of its core, or the clients' p50 end-to-end
latency differs from the model's prediction by more than --error-limit (optionally: p95 more than
--tail-error-limit above the N = 1 baseline); the last N that passed is the capacity.

    python benchmarks/sim_capacity/run.py --rate 1 --speedup 1 --stream --out docs/benchmarks/sim_capacity.md
"""

from __future__ import annotations

import argparse
import asyncio
import json
import os
import select
import shlex
import signal
import statistics
import subprocess
import sys
import tempfile
import time
from dataclasses import dataclass
from pathlib import Path

import httpx

sys.path.insert(0, str(Path(__file__).resolve().parent))
from loadgen import Result, run_load  # noqa: E402

from agents.sim.catalog import resolve_arch, resolve_variant  # noqa: E402
from scheduler.model_spec import RequestShape  # noqa: E402
from scheduler.perf_model import PerfModel  # noqa: E402

SIM_CORE, CLIENT_CORE = 0, 1
CLK_TCK = os.sysconf("SC_CLK_TCK")


@dataclass(frozen=True, slots=True)
class Step:
    replicas: int
    offered_rps: float
    completed: int
    errors: int
    sim_cpu: float  # cores used by the simulator process
    sim_wait: float  # fraction of wall time the simulator was runnable but waiting for its core
    client_cpu: float  # cores used by this load generator
    ttft_p50: float  # simulated seconds, client side
    ttft_p95: float
    e2e_p50: float
    e2e_p95: float
    tpot_mean: float  # simulated seconds per output token after the first, client side
    engine_e2e_mean: float  # simulated seconds, from the replicas' own /metrics
    lag_mean_ms: float  # how far engine steps ran behind their schedule (wall ms)


def _runqueue_wait_seconds(pid: int) -> float:
    """Time the process's threads spent runnable but waiting for a CPU (neighbours holding the core)."""
    total = 0
    for stat in Path(f"/proc/{pid}/task").glob("*/schedstat"):
        total += int(stat.read_text().split()[1])
    return total / 1e9


def _cpu_seconds(pid: int) -> float:
    fields = Path(f"/proc/{pid}/stat").read_text().rsplit(")", 1)[1].split()
    return (int(fields[11]) + int(fields[12])) / CLK_TCK  # utime + stime


def _start_sim(specs: list[dict[str, object]]) -> tuple[subprocess.Popen[str], list[str]]:
    spec_file = Path(tempfile.mkdtemp(prefix="sim-capacity-")) / "replicas.json"
    spec_file.write_text(json.dumps(specs))
    proc = subprocess.Popen(
        [sys.executable, "-m", "agents.sim", "--spec-file", str(spec_file)],
        stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True,
        preexec_fn=lambda: os.sched_setaffinity(0, {SIM_CORE}),
    )
    assert proc.stdout is not None
    deadline = time.monotonic() + 120
    while time.monotonic() < deadline:
        if select.select([proc.stdout], [], [], 0.2)[0]:
            ready = json.loads(proc.stdout.readline())
            return proc, [r["url"] for r in ready["replicas"]]
        if proc.poll() is not None:
            raise RuntimeError(f"simulator failed: {proc.stderr.read() if proc.stderr else ''}")
    proc.kill()
    raise RuntimeError("simulator did not start")


def _engine_side(urls: list[str]) -> tuple[float, float]:
    """Mean simulated e2e from the replicas' /metrics, and mean step lag (ms) from /admin/stats."""
    total, count, lags = 0.0, 0.0, []
    with httpx.Client(timeout=10) as client:
        for url in urls:
            for line in client.get(f"{url}/metrics").text.splitlines():
                if line.startswith("vllm:e2e_request_latency_seconds_sum"):
                    total += float(line.rsplit(" ", 1)[1])
                elif line.startswith("vllm:e2e_request_latency_seconds_count"):
                    count += float(line.rsplit(" ", 1)[1])
            lags.append(client.get(f"{url}/admin/stats").json()["lag_mean_s"] * 1e3)
    return (total / count if count else 0.0), statistics.fmean(lags)


def _pct(values: list[float], q: float) -> float:
    if not values:
        return float("nan")
    ordered = sorted(values)
    return ordered[min(len(ordered) - 1, int(q * len(ordered)))]


def measure(n: int, args: argparse.Namespace, duration_s: float) -> Step:
    spec = {"model": args.model, "accelerator": args.accelerator, "speedup": args.speedup, "port": 0}
    proc, urls = _start_sim([spec] * n)
    try:
        load = dict(rate_per_url=args.rate * args.speedup, prompt_tokens=args.prompt_tokens,
                    output_tokens=args.output_tokens,
                    stream=args.stream)
        asyncio.run(run_load(urls, duration_s=args.warmup, seed=n, **load))  # type: ignore[arg-type]
        cpu0, wait0 = _cpu_seconds(proc.pid), _runqueue_wait_seconds(proc.pid)
        client0, wall0 = time.process_time(), time.perf_counter()
        results: list[Result] = asyncio.run(run_load(urls, duration_s=duration_s, seed=n + 1000, **load))  # type: ignore[arg-type]
        wall = time.perf_counter() - wall0
        sim_cpu = (_cpu_seconds(proc.pid) - cpu0) / wall
        sim_wait = (_runqueue_wait_seconds(proc.pid) - wait0) / wall
        client_cpu = (time.process_time() - client0) / wall
        engine_e2e, lag = _engine_side(urls)
    finally:
        proc.send_signal(signal.SIGTERM)
        try:
            proc.wait(60)
        except subprocess.TimeoutExpired:
            proc.kill()
    ok = [r for r in results if r.ok]
    s = args.speedup
    tpots = [(r.e2e - r.ttft) / (args.output_tokens - 1) * s for r in ok] if args.output_tokens > 1 else [0.0]
    return Step(
        replicas=n, offered_rps=n * args.rate * args.speedup, completed=len(ok), errors=len(results) - len(ok),
        sim_cpu=sim_cpu, sim_wait=sim_wait, client_cpu=client_cpu,
        ttft_p50=_pct([r.ttft * s for r in ok], 0.5), ttft_p95=_pct([r.ttft * s for r in ok], 0.95),
        e2e_p50=_pct([r.e2e * s for r in ok], 0.5), e2e_p95=_pct([r.e2e * s for r in ok], 0.95),
        tpot_mean=statistics.fmean(tpots) if tpots else float("nan"),
        engine_e2e_mean=engine_e2e, lag_mean_ms=lag,
    )


def model_prediction(args: argparse.Namespace) -> tuple[float, float, float]:
    """(p95 TTFT, mean TPOT, mean e2e) in simulated seconds predicted by the performance model for one replica."""
    perf = PerfModel()
    arch, variant = resolve_arch(args.model), resolve_variant("bf16")
    tp = next(tp for tp in (1, 2, 4, 8) if perf.fits(arch, variant, args.accelerator, tp))
    shape = RequestShape(args.prompt_tokens, args.output_tokens)
    point = perf.latency_at(arch, variant, args.accelerator, tp, shape, args.rate)
    prefill = perf.prefill_seconds(arch, variant, args.accelerator, tp, args.prompt_tokens)
    tpot = point.tpot_mean_ms / 1e3
    return point.ttft_p95_ms / 1e3, tpot, prefill + (args.output_tokens - 1) * tpot


def render(args: argparse.Namespace, steps: list[Step], capacity: int, stop_reason: str, command: str) -> str:
    ttft_pred, tpot_pred, e2e_pred = model_prediction(args)
    tail_base = steps[0].e2e_p95
    mode = "streaming (SSE)" if args.stream else "non-streaming"
    lines = [
        f"### {args.model} on {args.accelerator}, {mode}, {args.rate:g} simulated req/s per replica, "
        f"speed-up {args.speedup:g}",
        "",
        f"Command: `{command}`",
        "",
        f"Requests: {args.prompt_tokens} prompt tokens, {args.output_tokens} output tokens, Poisson arrivals, "
        f"{args.duration:g} s measured (the N = 1 baseline: {3 * args.duration:g} s) after {args.warmup:g} s "
        f"warm-up per step. Simulator pinned to core "
        f"{SIM_CORE}, load generator to core {CLIENT_CORE}. Latencies in simulated seconds (wall x speed-up). "
        f"Load average when the run ended: {os.getloadavg()[0]:.2f} (the machine is shared).",
        f"Performance model at this load (one replica): p95 TTFT {ttft_pred * 1e3:.1f} ms, mean TPOT "
        f"{tpot_pred * 1e3:.2f} ms, mean e2e {e2e_pred:.3f} s.",
        "",
        "| replicas | offered req/s (wall) | done | errors | sim CPU (cores) | sim CPU wait | client CPU | p50 TTFT ms | p95 TTFT ms | "
        "mean TPOT ms | p50 e2e s | p95 e2e s | p50 e2e / model | p95 e2e / N=1 | TPOT / model | "
        "engine e2e / model | lag ms |",
        "|---:|---:|---:|---:|---:|---:|---:|---:|---:|---:|---:|---:|---:|---:|---:|---:|---:|",
    ]
    for s in steps:
        lines.append(
            f"| {s.replicas} | {s.offered_rps:g} | {s.completed} | {s.errors} | {s.sim_cpu:.2f} | {s.sim_wait:.2f} | "
            f"{s.client_cpu:.2f} | {s.ttft_p50 * 1e3:.1f} | {s.ttft_p95 * 1e3:.1f} | {s.tpot_mean * 1e3:.2f} | "
            f"{s.e2e_p50:.3f} | {s.e2e_p95:.3f} | {s.e2e_p50 / e2e_pred:.2f} | {s.e2e_p95 / tail_base:.2f} | "
            f"{s.tpot_mean / tpot_pred:.2f} | "
            f"{s.engine_e2e_mean / e2e_pred:.2f} | {s.lag_mean_ms:.2f} |"
        )
    passed = [s for s in steps if s.replicas <= capacity] or steps[:1]
    per_replica = passed[-1].sim_cpu / passed[-1].replicas
    lines += [
        "",
        f"**Capacity: {capacity} replicas on one core** at {args.rate:g} simulated req/s each "
        f"(ramp stopped: {stop_reason}); at that size each replica costs {per_replica * 100:.1f}% of a core.",
        "",
    ]
    return "\n".join(lines)


def _problem(step: Step, args: argparse.Namespace, e2e_pred: float, baseline: Step) -> str | None:
    """Why this step fails the capacity criteria, or None."""
    if step.errors > 0.01 * max(1, step.completed):
        return f"{step.errors} failed requests"
    if step.sim_cpu > args.cpu_limit:
        return f"simulator CPU {step.sim_cpu:.2f} > {args.cpu_limit}"
    error = step.e2e_p50 / e2e_pred - 1
    if abs(error) > args.error_limit:
        return f"p50 e2e {error * 100:+.0f}% off the model"
    tail_error = step.e2e_p95 / baseline.e2e_p95 - 1
    if args.tail_error_limit is not None and tail_error > args.tail_error_limit:
        return f"p95 e2e {tail_error * 100:.0f}% above N=1"
    return None


def main() -> None:
    p = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    p.add_argument("--model", default="Llama-3.1-8B")
    p.add_argument("--accelerator", default="H100")
    p.add_argument("--rate", type=float, default=1.0, help="requests per simulated second, per replica")
    p.add_argument("--speedup", type=float, default=1.0)
    p.add_argument("--prompt-tokens", type=int, default=512)
    p.add_argument("--output-tokens", type=int, default=128)
    p.add_argument("--stream", action=argparse.BooleanOptionalAction, default=True)
    p.add_argument("--replicas", default="1,2,4,8,16,32,48,64,96,128,192,256")
    p.add_argument("--duration", type=float, default=20.0)
    p.add_argument("--warmup", type=float, default=3.0)
    p.add_argument("--cpu-limit", type=float, default=0.9, help="fraction of the simulator's core")
    p.add_argument("--error-limit", type=float, default=0.10, help="|p50 e2e / model - 1|")
    p.add_argument("--tail-error-limit", type=float, help="p95 e2e above the N=1 baseline (off by default: "
                   "client tails on a shared machine measure the neighbours)")
    p.add_argument("--retries", type=int, default=2, help="repeats of a failed step when the core was contended")
    p.add_argument("--max-wait", type=float, default=0.05,
                   help="run-queue wait fraction above which a failed step counts as contended")
    p.add_argument("--out", type=Path, help="write (or with --append, add) a Markdown section here")
    p.add_argument("--append", action="store_true")
    args = p.parse_args()
    if len(os.sched_getaffinity(0)) < 2:
        sys.exit("needs two cores: one for the simulator, one for the load generator")
    os.sched_setaffinity(0, {CLIENT_CORE})
    command = "python benchmarks/sim_capacity/run.py " + shlex.join(sys.argv[1:])
    steps: list[Step] = []
    capacity, stop_reason = 0, "reached the largest N tried"
    _, _, e2e_pred = model_prediction(args)
    for n in (int(x) for x in args.replicas.split(",")):
        for _ in range(1 + args.retries):
            # The N = 1 baseline runs three times longer: its percentiles are the yardstick for the rest.
            step = measure(n, args, args.duration * (3 if not steps else 1))
            problem = _problem(step, args, e2e_pred, steps[0] if steps else step)
            print(f"N={n:4d} sim_cpu={step.sim_cpu:.2f} wait={step.sim_wait:.2f} client_cpu={step.client_cpu:.2f} "
                  f"done={step.completed} errors={step.errors} p50_e2e={step.e2e_p50:.3f}s "
                  f"({(step.e2e_p50 / e2e_pred - 1) * 100:+.1f}% vs model) ttft_p50={step.ttft_p50 * 1e3:.1f}ms "
                  f"lag={step.lag_mean_ms:.2f}ms{' -> ' + problem if problem else ''}", flush=True)
            # A failure while other processes held the simulator's core measures them, not us: try again.
            if problem is None or step.sim_wait < args.max_wait:
                break
        steps.append(step)
        if problem is not None:
            stop_reason = f"{problem} at N={n}"
            if step.sim_wait >= args.max_wait:
                stop_reason += f" (the simulator waited {step.sim_wait:.0%} of the time for its core)"
            break
        capacity = n
    report = render(args, steps, capacity, stop_reason, command)
    print(report)
    if args.out is not None:
        args.out.parent.mkdir(parents=True, exist_ok=True)
        if args.append and args.out.exists():
            args.out.write_text(args.out.read_text().rstrip() + "\n\n" + report)
        else:
            args.out.write_text(report)


if __name__ == "__main__":
    main()
