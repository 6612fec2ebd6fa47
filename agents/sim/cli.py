"""`python -m agents.sim`: run one or many simulated replicas in this process until SIGTERM.

    python -m agents.sim --model Llama-3.1-8B --accelerator H100 --port 8000 --speedup 10
    python -m agents.sim --spec-file replicas.json        # a JSON list of ReplicaSpec objects

When every replica is listening it prints one JSON line on stdout, {"replicas": [{"port", "url", "model",
...}]} (also written to --ready-file), so a caller that asked for port 0 learns the ports. SIGTERM or SIGINT
drains (no new requests, in-flight ones finish) and exits 0; a second SIGINT stops at once. The process exits
by itself when no replica is left (e.g. all crashed by fault injection): status 1 if any crashed, else 0.
A spec that cannot be simulated exits 2 with one line on stderr.
"""

from __future__ import annotations

import argparse
import asyncio
import json
import logging
import signal
import sys
from collections.abc import Sequence
from pathlib import Path
from typing import Any

from agents.sim.faults import CrashScope, FaultError, FaultMode, FaultSpec
from agents.sim.host import SimHost
from agents.sim.replica import ReplicaState
from agents.sim.spec import ReplicaSpec, SpecError

EXIT_USAGE = 2


def build_parser() -> argparse.ArgumentParser:
    p = argparse.ArgumentParser(prog="python -m agents.sim", description="vLLM-compatible replica simulator")
    p.add_argument("--spec-file", type=Path, help="JSON list of replica specs (instead of the flags below)")
    p.add_argument("--model", help="served model, e.g. Llama-3.1-8B")
    p.add_argument("--accelerator", help="GPU name as in the spec table, e.g. H100")
    p.add_argument("--params-b", type=float, help="parameters in billions (models not in the known table)")
    p.add_argument("--variant", default="bf16")
    p.add_argument("--tp", type=int, help="tensor-parallel size (default: smallest that fits)")
    p.add_argument("--host", default="127.0.0.1")
    p.add_argument("--port", type=int, default=8000)
    p.add_argument("--speedup", type=float, default=1.0, help="simulated seconds per wall second")
    p.add_argument("--served-model-name")
    p.add_argument("--api-key")
    p.add_argument("--max-model-len", type=int)
    p.add_argument("--max-num-seqs", type=int, default=256)
    p.add_argument("--max-num-batched-tokens", type=int, default=8192)
    p.add_argument("--default-max-tokens", type=int, default=16)
    p.add_argument("--no-chunked-prefill", action="store_true")
    p.add_argument("--no-preemption", action="store_true", help="reserve KV for max_tokens at admission")
    p.add_argument("--no-prefix-caching", action="store_true")
    p.add_argument("--seed", type=int, default=0)
    p.add_argument("--drain-timeout", type=float, default=600.0)
    p.add_argument("--fault", choices=[m.value for m in FaultMode], help="inject a fault")
    p.add_argument("--fault-after", type=float, default=0.0, help="seconds after start")
    p.add_argument("--fault-slowdown", type=float, default=5.0)
    p.add_argument("--fault-probability", type=float, default=1.0)
    p.add_argument("--fault-status", type=int, default=500)
    p.add_argument("--fault-scope", choices=[s.value for s in CrashScope], default=CrashScope.PROCESS.value,
                   help="crash: the process (default for a one-replica process) or only the replica")
    p.add_argument("--ready-file", type=Path)
    p.add_argument("--log-level", default="WARNING")
    return p


def specs_from_args(args: argparse.Namespace) -> list[ReplicaSpec]:
    if args.spec_file is not None:
        data = json.loads(args.spec_file.read_text())
        if not isinstance(data, list) or not data:
            raise SpecError("--spec-file must hold a non-empty JSON list of replica specs")
        return [ReplicaSpec.from_json(item) for item in data]
    if not args.model or not args.accelerator:
        raise SpecError("--model and --accelerator are required (or --spec-file)")
    faults: tuple[FaultSpec, ...] = ()
    if args.fault:
        faults = (FaultSpec(FaultMode(args.fault), after_s=args.fault_after, slowdown=args.fault_slowdown,
                            probability=args.fault_probability, status=args.fault_status,
                            scope=CrashScope(args.fault_scope)),)
    return [ReplicaSpec(
        model=args.model, accelerator=args.accelerator, params_b=args.params_b, variant=args.variant, tp=args.tp,
        host=args.host, port=args.port, speedup=args.speedup, served_model_name=args.served_model_name,
        api_key=args.api_key, max_model_len=args.max_model_len, max_num_seqs=args.max_num_seqs,
        max_num_batched_tokens=args.max_num_batched_tokens, default_max_tokens=args.default_max_tokens,
        chunked_prefill=not args.no_chunked_prefill, preemption=not args.no_preemption,
        prefix_caching=not args.no_prefix_caching, faults=faults, seed=args.seed,
        drain_timeout_s=args.drain_timeout,
    )]


def _ready_message(host: SimHost) -> dict[str, Any]:
    replicas = []
    for port in host.ports:
        r = host.replica(port)
        replicas.append({"port": port, "url": r.url, "model": r.spec.name, "tp": r.resolved.tp,
                         "max_model_len": r.max_model_len, "description": r.resolved.description})
    return {"replicas": replicas}


async def serve(specs: list[ReplicaSpec], ready_file: Path | None = None) -> int:
    host = SimHost()
    await host.start_many(specs)
    loop = asyncio.get_running_loop()
    shutdowns: list[asyncio.Task[None]] = []  # referenced so they are not collected mid-flight

    def on_signal() -> None:
        first = not shutdowns
        shutdowns.append(loop.create_task(host.drain_all() if first else host.stop_all()))

    for sig in (signal.SIGTERM, signal.SIGINT):
        loop.add_signal_handler(sig, on_signal)
    message = json.dumps(_ready_message(host))
    print(message, flush=True)
    if ready_file is not None:
        ready_file.write_text(message + "\n")
    states = await host.wait_all()
    return 1 if ReplicaState.CRASHED in states else 0


def main(argv: Sequence[str] | None = None) -> int:
    args = build_parser().parse_args(argv)
    logging.basicConfig(level=args.log_level.upper(), format="%(asctime)s %(levelname)s %(name)s: %(message)s")
    try:
        specs = specs_from_args(args)
        return asyncio.run(serve(specs, args.ready_file))
    except (SpecError, FaultError, OSError, json.JSONDecodeError) as exc:
        print(f"error: {exc}", file=sys.stderr)
        return EXIT_USAGE
