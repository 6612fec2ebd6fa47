"""`llmfleet replay TRACE.csv`: send a request trace through a gateway at its real arrival times and report
what the clients saw (TTFT, TPOT, end-to-end latency, errors). Useful to put a real traffic shape on the
local stack (`make run`) and watch it in the dashboard and Prometheus."""

from __future__ import annotations

import asyncio
from pathlib import Path
from typing import Annotated

import typer
from rich.console import Console
from rich.table import Table

from control_plane.cli.errors import CliError, cli_errors
from control_plane.cli.output import JsonFlag, emit_json
from control_plane.replay.runner import ReplayOptions, ReplayReport, replay
from control_plane.replay.trace import TraceError, read_arrivals

DEFAULT_GATEWAY_URL = "http://127.0.0.1:8090"


@cli_errors
def replay_trace(
    trace: Annotated[Path, typer.Argument(help="CSV with timestamp, prompt and output token columns "
                                               "(e.g. the Azure LLM inference traces)")],
    model: Annotated[str, typer.Option("--model", help="deployment (or deployment@version) to call")],
    gateway: Annotated[str, typer.Option("--gateway", envvar="LLMFLEET_GATEWAY_URL", help="gateway URL")]
    = DEFAULT_GATEWAY_URL,
    api_key: Annotated[str | None, typer.Option("--api-key", envvar="LLMFLEET_API_KEY")] = None,
    speed: Annotated[float, typer.Option("--speed", min=0.001, max=1000.0,
                                         help="replay this many times faster than recorded")] = 1.0,
    duration: Annotated[float | None, typer.Option("--duration", min=1.0, help="seconds of replay")] = None,
    skip: Annotated[float, typer.Option("--skip", min=0.0, help="trace seconds to skip first")] = 0.0,
    limit: Annotated[int | None, typer.Option("--limit", min=1, help="at most this many requests")] = None,
    client_region: Annotated[str | None, typer.Option("--client-region", help="route as clients from here")]
    = None,
    max_prompt_tokens: Annotated[int, typer.Option("--max-prompt-tokens", min=1)] = 2048,
    max_output_tokens: Annotated[int, typer.Option("--max-output-tokens", min=1)] = 512,
    max_in_flight: Annotated[int, typer.Option("--max-in-flight", min=1, max=4096)] = 256,
    seed: Annotated[int, typer.Option("--seed")] = 0,
    as_json: JsonFlag = False,
) -> None:
    """Replay a request trace through the gateway (open loop) and report latency percentiles and errors."""
    try:
        arrivals = read_arrivals(trace, speed=speed, skip_s=skip, duration_s=duration, limit=limit)
    except TraceError as error:
        raise CliError(str(error)) from None
    options = ReplayOptions(base_url=gateway.rstrip("/"), model=model, api_key=api_key, client_region=client_region,
                            max_prompt_tokens=max_prompt_tokens, max_output_tokens=max_output_tokens,
                            max_in_flight=max_in_flight)
    report = asyncio.run(replay(arrivals, options, seed=seed))
    if report.ok == 0:
        raise CliError(f"no request succeeded through {gateway}: {report.errors[0] if report.errors else '?'}")
    if as_json:
        emit_json(report.as_dict())
    else:
        _print(report, trace)


def _print(report: ReplayReport, trace: Path) -> None:
    console = Console()
    console.print(f"replayed {report.sent} requests from {trace.name} in {report.elapsed_s:.1f} s: "
                  f"{report.ok} ok, {report.sent - report.ok} failed; "
                  f"{report.output_tokens} output tokens")
    table = Table("latency (ms)", "p50", "p95", "p99")
    for name, values in (("TTFT", report.ttft_ms), ("TPOT", report.tpot_ms), ("end to end", report.e2e_ms)):
        table.add_row(name, *(f"{values[q]:.1f}" if values[q] is not None else "-" for q in ("p50", "p95", "p99")))
    console.print(table)
    if report.errors:
        console.print("first errors: " + " | ".join(report.errors))
