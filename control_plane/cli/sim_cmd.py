"""`llmfleet sim`: start one simulated vLLM replica in the foreground.

The control plane does not import the agents package (see docs/DESIGN.md, layout): this command checks its
arguments against the scheduler's GPU table, then replaces itself with `python -m agents.sim`, so SIGTERM
and Ctrl-C reach the simulator directly (drain, then exit) and its exit status is the command's.
"""

from __future__ import annotations

import os
import sys

import typer

from scheduler.hardware import builtin_gpu_specs

EXIT_USAGE = 2


def _fail(message: str) -> None:
    typer.echo(f"error: {message}", err=True)
    raise typer.Exit(code=EXIT_USAGE)


def sim_argv(
    model: str,
    accelerator: str,
    params_b: float | None,
    port: int,
    speedup: float,
    variant: str,
    tp: int | None,
    host: str,
    api_key: str | None,
    max_model_len: int | None,
    fault: str | None,
    fault_after: float,
) -> list[str]:
    """The `python -m agents.sim` command line for these options."""
    argv = [sys.executable, "-m", "agents.sim", "--model", model, "--accelerator", accelerator,
            "--port", str(port), "--speedup", repr(speedup), "--variant", variant, "--host", host]
    optional: list[tuple[str, object | None]] = [
        ("--params-b", params_b), ("--tp", tp), ("--api-key", api_key), ("--max-model-len", max_model_len),
        ("--fault", fault),
    ]
    for flag, value in optional:
        if value is not None:
            argv += [flag, str(value)]
    if fault is not None:
        argv += ["--fault-after", repr(fault_after)]
    return argv


def sim(
    model: str = typer.Option(..., "--model", help="Served model name, e.g. Llama-3.1-8B."),
    accelerator: str = typer.Option(..., "--accelerator", help="GPU to simulate, e.g. H100."),
    params_b: float | None = typer.Option(None, "--params-b", help="Parameters in billions (unknown models)."),
    port: int = typer.Option(8000, "--port", help="Port to listen on (0: any free port)."),
    speedup: float = typer.Option(1.0, "--speedup", help="Simulated seconds per wall-clock second."),
    variant: str = typer.Option("bf16", "--variant", help="Weight format: bf16, fp8, awq-int4, ..."),
    tp: int | None = typer.Option(None, "--tp", help="Tensor-parallel size (default: smallest that fits)."),
    host: str = typer.Option("127.0.0.1", "--host", help="Address to bind."),
    api_key: str | None = typer.Option(None, "--api-key", help="Require this bearer key on /v1."),
    max_model_len: int | None = typer.Option(None, "--max-model-len", help="Cap the context length."),
    fault: str | None = typer.Option(None, "--fault", help="Inject a fault: crash, hang, slow or error."),
    fault_after: float = typer.Option(0.0, "--fault-after", help="Seconds after start to inject it."),
) -> None:
    """Serve a vLLM-compatible simulated replica (OpenAI API, SSE, /metrics) until Ctrl-C."""
    gpus = builtin_gpu_specs()
    if accelerator not in gpus:
        _fail(f"unknown accelerator {accelerator!r} (known: {', '.join(sorted(gpus))})")
    if speedup <= 0:
        _fail("--speedup must be positive")
    if params_b is not None and params_b <= 0:
        _fail("--params-b must be positive")
    if not 0 <= port <= 65535:
        _fail(f"invalid port {port}")
    argv = sim_argv(model, accelerator, params_b, port, speedup, variant, tp, host, api_key, max_model_len,
                    fault, fault_after)
    sys.stdout.flush()
    os.execv(argv[0], argv)
