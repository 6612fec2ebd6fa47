"""The agent's own HTTP face: /metrics for Prometheus, /healthz, and /status (its replicas, as JSON)."""

from __future__ import annotations

import asyncio
import contextlib
import socket
from collections.abc import Callable, Iterator
from typing import Any

import uvicorn
from prometheus_client import CONTENT_TYPE_LATEST
from starlette.applications import Starlette
from starlette.requests import Request
from starlette.responses import JSONResponse, Response
from starlette.routing import Route


class _QuietServer(uvicorn.Server):
    """Leaves signal handling to the agent (which drains its replicas on SIGTERM)."""

    @contextlib.contextmanager
    def capture_signals(self) -> Iterator[None]:
        yield


def build_app(render_metrics: Callable[[], bytes], status: Callable[[], dict[str, Any]]) -> Starlette:
    async def metrics(request: Request) -> Response:
        return Response(render_metrics(), media_type=CONTENT_TYPE_LATEST)

    async def healthz(request: Request) -> Response:
        return JSONResponse({"status": "ok"})

    async def status_endpoint(request: Request) -> Response:
        return JSONResponse(status())

    return Starlette(routes=[
        Route("/metrics", metrics, methods=["GET"]),
        Route("/healthz", healthz, methods=["GET"]),
        Route("/status", status_endpoint, methods=["GET"]),
    ])


class AgentHttpServer:
    def __init__(self, app: Starlette, host: str, port: int) -> None:
        self._sock = socket.socket(socket.AF_INET6 if ":" in host else socket.AF_INET, socket.SOCK_STREAM)
        self._sock.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
        self._sock.bind((host, port))  # bound now, so a taken port fails at start, loudly
        self._host = host
        self._server = _QuietServer(uvicorn.Config(app, lifespan="off", log_config=None, access_log=False))
        self._task: asyncio.Task[None] | None = None

    @property
    def url(self) -> str:
        port = self._sock.getsockname()[1]
        host = f"[{self._host}]" if ":" in self._host else self._host
        return f"http://{host}:{port}"

    async def start(self) -> None:
        self._task = asyncio.create_task(self._server.serve(sockets=[self._sock]), name="agent-http")
        while not self._server.started:
            if self._task.done():
                await self._task
                raise RuntimeError("the agent's HTTP server exited during startup")
            await asyncio.sleep(0.01)

    async def stop(self) -> None:
        self._server.should_exit = True
        if self._task is not None:
            with contextlib.suppress(asyncio.CancelledError):
                await self._task
        self._sock.close()
