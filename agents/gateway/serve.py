"""Running one gateway process on the lean server until SIGTERM/SIGINT, then draining in-flight requests."""

from __future__ import annotations

import asyncio
import signal

from agents.gateway.build import Parts, asgi_app, running
from agents.gateway.server import GatewayServer

GRACE_S = 30.0


async def serve(parts: Parts, *, stop: asyncio.Event | None = None,
                started: asyncio.Event | None = None) -> None:
    config = parts.gateway.config
    stop = stop or asyncio.Event()
    loop = asyncio.get_running_loop()
    for sig in (signal.SIGTERM, signal.SIGINT):
        try:
            loop.add_signal_handler(sig, stop.set)
        except (ValueError, RuntimeError):  # not the main thread (tests run gateways in threads)
            break
    server = GatewayServer(parts.gateway, asgi_app(parts), parts.tracer)
    async with running(parts):
        await server.start(config.host, config.port)
        if started is not None:
            started.set()
        await stop.wait()
        await server.shutdown(GRACE_S)


def run(parts: Parts) -> None:
    """Blocking; uvloop when installed (the proxy's per-request cost is mostly event-loop work)."""
    try:
        import uvloop
    except ImportError:
        asyncio.run(serve(parts))
    else:
        uvloop.run(serve(parts))
