"""`python -m agents.gateway --region R --api-url U`: run one regional gateway until SIGTERM.

The key that reads the routing table comes from the environment (LLMFLEET_GATEWAY_KEY, else
LLMFLEET_AGENT_KEY), never from argv where `ps` would show it.
"""

from __future__ import annotations

import argparse
import logging
import os
import sys
from collections.abc import Sequence

from agents.gateway.build import build_gateway
from agents.gateway.config import GatewayConfig
from agents.gateway.limits import LimitConfig

KEY_ENV = ("LLMFLEET_GATEWAY_KEY", "LLMFLEET_AGENT_KEY")


def build_parser() -> argparse.ArgumentParser:
    p = argparse.ArgumentParser(prog="python -m agents.gateway", description="llmfleet regional gateway")
    p.add_argument("--region", required=True, help="the gateway's region (default client region)")
    p.add_argument("--api-url", required=True, help="control plane base URL")
    p.add_argument("--host", default="127.0.0.1")
    p.add_argument("--port", type=int, default=8090)
    p.add_argument("--poll-interval", type=float, default=2.0, help="routing table refresh, seconds")
    p.add_argument("--auth-max-staleness", type=float, default=120.0)
    p.add_argument("--requests-per-minute", type=int, default=0, help="per key; 0 = unlimited")
    p.add_argument("--tokens-per-minute", type=int, default=0, help="per key; 0 = unlimited")
    p.add_argument("--redis-url", default=os.environ.get("LLMFLEET_REDIS_URL"),
                   help="share rate limits through Redis (e.g. redis://127.0.0.1:6379/0)")
    p.add_argument("--max-body-bytes", type=int, default=4 * 1024 * 1024)
    p.add_argument("--max-attempts", type=int, default=3)
    p.add_argument("--prefix-affinity-chars", type=int, default=0,
                   help="route requests sharing this many leading prompt characters to one replica; 0 = off")
    p.add_argument("--log-level", default="warning")
    return p


def config_from_args(args: argparse.Namespace, key: str) -> GatewayConfig:
    return GatewayConfig(
        region=args.region, api_url=args.api_url, api_key=key, host=args.host, port=args.port,
        poll_interval_s=args.poll_interval, auth_max_staleness_s=args.auth_max_staleness,
        max_body_bytes=args.max_body_bytes, max_attempts=args.max_attempts,
        prefix_affinity_chars=args.prefix_affinity_chars,
        limits=LimitConfig(args.requests_per_minute, args.tokens_per_minute), redis_url=args.redis_url or None,
    )


def main(argv: Sequence[str] | None = None) -> int:
    args = build_parser().parse_args(argv)
    key = next((os.environ[name] for name in KEY_ENV if os.environ.get(name)), "")
    try:
        config = config_from_args(args, key)
    except ValueError as error:
        print(f"error: {error} (key from {' or '.join(KEY_ENV)})", file=sys.stderr)
        return 2
    logging.basicConfig(level=args.log_level.upper(), format="%(asctime)s %(levelname)s %(name)s: %(message)s")
    from agents.gateway.serve import run

    run(build_gateway(config))
    return 0
