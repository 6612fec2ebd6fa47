"""A real control plane that can go down and come back on the same port, and a real agent (sim backend) in a
background thread, for the agent's integration tests."""

from __future__ import annotations

import asyncio
import threading
import time
from collections.abc import Callable
from typing import Any, TypeVar

import httpx
import uvicorn
from fastapi import FastAPI

from agents.agent.agent import Agent
from agents.agent.config import AgentConfig
from agents.agent.main import serve
from agents.agent.sim_backend import SimBackend
from agents.sim import fixed_resolver
from agents.sim.timing import LinearTiming
from tests.support.ports import free_port

T = TypeVar("T")

# A synthetic GPU (10 ms decode steps, 64k KV tokens): fast, deterministic, no performance-model cost.
FAKE_GPU = LinearTiming(kv_cache_tokens=65536, prefill_base_s=0.010, prefill_per_token_s=0.00005,
                        decode_base_s=0.010, decode_per_seq_s=0.0002)


def wait_for(condition: Callable[[], T | None], what: str, timeout: float = 60.0, interval: float = 0.1) -> T:
    """Poll until `condition()` is truthy and return it; fail with `what` after `timeout` seconds."""
    deadline = time.monotonic() + timeout
    last: Any = None
    while time.monotonic() < deadline:
        try:
            last = condition()
        except (httpx.HTTPError, KeyError, StopIteration) as error:
            last = error
        else:
            if last:
                return last
        time.sleep(interval)
    raise AssertionError(f"timed out after {timeout:.0f} s waiting for {what} (last: {last!r})")


class ControlPlaneServer:
    """The API under uvicorn in a thread, on a fixed port, so a test can stop it and start it again."""

    def __init__(self, app: FastAPI) -> None:
        self.app = app
        self.port = free_port()
        self.url = f"http://127.0.0.1:{self.port}"
        self._server: uvicorn.Server | None = None
        self._thread: threading.Thread | None = None

    def start(self) -> None:
        server = uvicorn.Server(uvicorn.Config(self.app, host="127.0.0.1", port=self.port, log_level="warning"))
        thread = threading.Thread(target=server.run, daemon=True)
        thread.start()
        wait_for(lambda: server.started or not thread.is_alive(), "the API to start", timeout=20)
        assert thread.is_alive(), "the API did not start"
        self._server, self._thread = server, thread

    def stop(self) -> None:
        if self._server is not None and self._thread is not None:
            self._server.should_exit = True
            self._thread.join(20)
            self._server = self._thread = None


class AgentThread:
    """`agents.agent.main.serve` with a SimBackend on fast synthetic timing, in its own thread and loop."""

    def __init__(self, config: AgentConfig) -> None:
        self.config = config
        self.backend = SimBackend(resolver=fixed_resolver(FAKE_GPU, context=8192), probe_timeout_s=1.0)
        self.agent: Agent | None = None
        self.url = ""
        self._loop: asyncio.AbstractEventLoop | None = None
        self._stop: asyncio.Event | None = None
        self._started = threading.Event()
        self._error: BaseException | None = None
        self._thread = threading.Thread(target=self._run, name=f"agent-{config.cluster}", daemon=True)

    def _run(self) -> None:
        try:
            asyncio.run(self._main())
        except BaseException as error:  # noqa: BLE001 - surfaced to the test thread
            self._error = error
            self._started.set()

    async def _main(self) -> None:
        self._loop = asyncio.get_running_loop()
        self._stop = asyncio.Event()
        await serve(self.config, self._stop, backend=self.backend, on_ready=self._on_ready)

    def _on_ready(self, agent: Agent, url: str) -> None:
        self.agent, self.url = agent, url
        self._started.set()

    def start(self) -> AgentThread:
        self._thread.start()
        assert self._started.wait(30), "the agent did not start"
        if self._error is not None:
            raise self._error
        return self

    def status(self) -> dict[str, Any]:
        response = httpx.get(f"{self.url}/status", timeout=5)
        response.raise_for_status()
        result: dict[str, Any] = response.json()
        return result

    def metrics(self) -> str:
        return httpx.get(f"{self.url}/metrics", timeout=5).text

    def stop(self) -> None:
        if self._loop is not None and self._stop is not None and self._thread.is_alive():
            self._loop.call_soon_threadsafe(self._stop.set)
            self._thread.join(60)
        assert not self._thread.is_alive(), "the agent did not stop"
