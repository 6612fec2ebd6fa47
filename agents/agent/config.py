"""The agent's settings, from the command line (`python -m agents.agent`, `llmfleet agent`) or built in tests."""

from __future__ import annotations

import argparse
import os
from collections.abc import Mapping, Sequence
from dataclasses import dataclass, field
from pathlib import Path

API_KEY_ENV = "LLMFLEET_AGENT_API_KEY"  # the key travels in the environment: argv is visible to `ps`
BACKENDS = ("sim", "vllm")


@dataclass(frozen=True, slots=True)
class AgentConfig:
    cluster: str
    api_url: str
    api_key: str = field(repr=False)
    backend: str = "sim"
    interval_s: float = 2.0  # one reconcile pass (pull, poll, act, scrape, heartbeat) per interval
    ready_timeout_s: float = 600.0  # a replica not ready by then is failed, and not relaunched
    drain_timeout_s: int = 30  # in-flight requests get this long when a replica is stopped
    restart_base_s: float = 1.0  # first restart delay after a crash; doubles per consecutive crash
    restart_max_s: float = 60.0
    max_consecutive_restarts: int = 10  # then the replica is failed (crash loop), the control plane replaces it
    stable_after_s: float = 60.0  # ready this long and the consecutive-crash count starts over
    telemetry_window_s: float = 60.0
    request_timeout_s: float = 10.0  # per call to the control plane
    scrape_timeout_s: float = 2.0
    host: str = "127.0.0.1"  # where replicas listen
    metrics_host: str = "127.0.0.1"
    metrics_port: int = 0  # 0: any free port (printed at start)
    sim_speedup: float = 1.0
    vllm_python: Path | None = None
    vllm_model: str | None = None  # a local model directory that overrides every replica's artifact
    vllm_max_model_len: int | None = None
    log_dir: Path = Path(".llmfleet/agent-logs")

    def __post_init__(self) -> None:
        if self.backend not in BACKENDS:
            raise ValueError(f"unknown backend {self.backend!r} (known: {', '.join(BACKENDS)})")
        if not self.api_key:
            raise ValueError(f"no API key: set {API_KEY_ENV} (an agent key for cluster {self.cluster})")
        if self.interval_s <= 0 or self.ready_timeout_s <= 0 or self.telemetry_window_s <= 0:
            raise ValueError("intervals and timeouts must be positive")
        if self.restart_base_s <= 0 or self.restart_max_s < self.restart_base_s:
            raise ValueError("restart delays must be positive, base <= max")


def build_parser() -> argparse.ArgumentParser:
    p = argparse.ArgumentParser(prog="python -m agents.agent", description="llmfleet per-cluster agent")
    p.add_argument("--cluster", required=True, help="the cluster this agent runs (its agent key must match)")
    p.add_argument("--api-url", required=True, help="control-plane URL, e.g. http://127.0.0.1:8080")
    p.add_argument("--backend", choices=BACKENDS, default="sim")
    p.add_argument("--interval", type=float, default=2.0, help="seconds between reconcile passes")
    p.add_argument("--ready-timeout", type=float, default=600.0)
    p.add_argument("--drain-timeout", type=int, default=30)
    p.add_argument("--telemetry-window", type=float, default=60.0)
    p.add_argument("--host", default="127.0.0.1", help="address replicas listen on")
    p.add_argument("--metrics-host", default="127.0.0.1")
    p.add_argument("--metrics-port", type=int, default=0)
    p.add_argument("--sim-speedup", type=float, default=1.0)
    p.add_argument("--vllm-python", type=Path, help="interpreter of the vLLM venv (default: .venv-vllm)")
    p.add_argument("--vllm-model", help="local model directory served by every vLLM replica")
    p.add_argument("--vllm-max-model-len", type=int)
    p.add_argument("--log-dir", type=Path, default=Path(".llmfleet/agent-logs"))
    p.add_argument("--log-level", default="INFO")
    return p


def config_from_args(args: argparse.Namespace, environ: Mapping[str, str] | None = None) -> AgentConfig:
    env = os.environ if environ is None else environ
    return AgentConfig(
        cluster=args.cluster, api_url=args.api_url, api_key=env.get(API_KEY_ENV, ""), backend=args.backend,
        interval_s=args.interval, ready_timeout_s=args.ready_timeout, drain_timeout_s=args.drain_timeout,
        telemetry_window_s=args.telemetry_window, host=args.host, metrics_host=args.metrics_host,
        metrics_port=args.metrics_port, sim_speedup=args.sim_speedup, vllm_python=args.vllm_python,
        vllm_model=args.vllm_model, vllm_max_model_len=args.vllm_max_model_len, log_dir=args.log_dir,
    )


def parse_config(argv: Sequence[str] | None = None) -> tuple[AgentConfig, str]:
    """(config, log level) from a command line."""
    args = build_parser().parse_args(argv)
    return config_from_args(args), args.log_level
