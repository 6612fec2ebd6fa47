"""One simulated replica: engine + metrics + HTTP app + its own uvicorn server, and its lifecycle.

Lifecycle: running -> draining -> stopped, or -> crashed. Several replicas share one event loop (one
uvicorn.Server each, on its own socket); none of them installs signal handlers: the process owner decides
what SIGTERM means (see agents.sim.host).
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
import os
import random
import socket
import time
from collections.abc import Callable, Iterator
from dataclasses import replace
from enum import Enum
from typing import Any

import uvicorn

from agents.sim.app import ApiConfig, SimApp
from agents.sim.clock import Clock, Sleep
from agents.sim.engine import Engine
from agents.sim.faults import CrashScope, FaultMode, FaultSpec, FaultState
from agents.sim.metrics import ReplicaMetrics, cache_config_labels
from agents.sim.scheduler import SchedulerConfig
from agents.sim.spec import ReplicaSpec, ResolvedModel

log = logging.getLogger(__name__)


_FLUSH_TIMEOUT_S = 10


class ReplicaState(str, Enum):
    CREATED = "created"
    RUNNING = "running"
    DRAINING = "draining"
    STOPPED = "stopped"
    CRASHED = "crashed"


class _Server(uvicorn.Server):
    """A uvicorn server that leaves signals alone: many share one process."""

    @contextlib.contextmanager
    def capture_signals(self) -> Iterator[None]:
        yield


def _bind(host: str, port: int) -> socket.socket:
    family = socket.AF_INET6 if ":" in host else socket.AF_INET
    sock = socket.socket(family, socket.SOCK_STREAM)
    sock.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
    # Accepted connections inherit it: a stream is many small writes, and with Nagle each one after the first
    # waits for the client's (delayed, up to 40 ms) ACK on a kept-alive connection.
    sock.setsockopt(socket.IPPROTO_TCP, socket.TCP_NODELAY, 1)
    sock.bind((host, port))
    sock.listen(1024)
    sock.setblocking(False)
    return sock


class SimReplica:
    def __init__(
        self,
        spec: ReplicaSpec,
        resolved: ResolvedModel,
        *,
        clock: Clock = time.monotonic,
        sleep: Sleep = asyncio.sleep,
        wall_clock: Callable[[], float] = time.time,
        process_exit: Callable[[int], None] = os._exit,
    ) -> None:
        self.spec = spec
        self.resolved = resolved
        self.state = ReplicaState.CREATED
        self._process_exit = process_exit
        timing = resolved.timing
        num_blocks = timing.kv_cache_tokens // spec.block_size
        if num_blocks < 1:
            raise ValueError(f"{spec.model} leaves no KV cache on {spec.accelerator}")
        self.max_model_len = min(spec.max_model_len or resolved.context, num_blocks * spec.block_size)
        config = SchedulerConfig(
            num_blocks=num_blocks,
            block_size=spec.block_size,
            max_num_seqs=spec.max_num_seqs,
            max_num_batched_tokens=spec.max_num_batched_tokens,
            chunked_prefill=spec.chunked_prefill,
            preemption=spec.preemption,
            prefix_caching=spec.prefix_caching,
        )
        cache_info = cache_config_labels(spec.block_size, num_blocks, spec.prefix_caching, self.max_model_len)
        self.metrics = ReplicaMetrics(spec.name, self.max_model_len, cache_info, wall_clock)
        self.engine = Engine(timing, config, speedup=spec.speedup, observer=self.metrics, clock=clock, sleep=sleep)
        self.faults = FaultState(random.Random(spec.seed))
        api = ApiConfig(
            served_model_name=spec.name,
            root=spec.model,
            max_model_len=self.max_model_len,
            default_max_tokens=spec.default_max_tokens,
            block_size=spec.block_size,
            api_key=spec.api_key,
        )
        self.app = SimApp(self.engine, self.metrics, self.faults, api, self, wall_clock=wall_clock)
        self._sock: socket.socket | None = None
        self._server: _Server | None = None
        self._serve_task: asyncio.Task[None] | None = None
        self._drain_task: asyncio.Task[None] | None = None
        self._crash_task: asyncio.Task[None] | None = None
        self._timers: list[asyncio.TimerHandle] = []
        self._done = asyncio.Event()
        self._port = spec.port  # the bound port once started (spec.port may be 0)

    # ----- lifecycle -----

    @property
    def port(self) -> int:
        return self._port

    @property
    def url(self) -> str:
        host = f"[{self.spec.host}]" if ":" in self.spec.host else self.spec.host
        return f"http://{host}:{self.port}"

    async def start(self) -> None:
        if self.state is not ReplicaState.CREATED:
            raise RuntimeError(f"replica already {self.state.value}")
        self._sock = _bind(self.spec.host, self.spec.port)
        self._port = int(self._sock.getsockname()[1])
        config = uvicorn.Config(
            self.app.asgi,
            lifespan="off",
            ws="none",
            log_config=None,
            access_log=False,
            # Drain waits for the engine itself (drain_timeout_s); this only bounds flushing the last bytes.
            timeout_graceful_shutdown=_FLUSH_TIMEOUT_S,
            timeout_keep_alive=30,
        )
        self._server = _Server(config)
        self._serve_task = asyncio.create_task(self._server.serve(sockets=[self._sock]), name=f"sim-http-{self.port}")
        self.engine.start()
        while not self._server.started:
            if self._serve_task.done():
                await self._serve_task  # surfaces the startup error
                raise RuntimeError("uvicorn exited during startup")
            await asyncio.sleep(0.005)
        self.state = ReplicaState.RUNNING
        for fault in self.spec.faults:
            self.apply_fault(fault)

    async def drain(self) -> None:
        """Refuse new requests, finish every accepted one (up to drain_timeout_s), then close the server."""
        if self.state is ReplicaState.RUNNING:
            self.state = ReplicaState.DRAINING
            self.app.draining = True
            try:
                await asyncio.wait_for(self.engine.wait_idle(), self.spec.drain_timeout_s)
            except asyncio.TimeoutError:
                log.warning("replica %s on port %d: drain timed out after %.0f s, aborting %d requests",
                            self.spec.name, self.port, self.spec.drain_timeout_s,
                            self.engine.num_running + self.engine.num_waiting)
                await self.engine.stop()  # unfinished streams end with finish_reason "abort"
            await self._close_server(graceful=True)
            await self.engine.stop()
            self._finish(ReplicaState.STOPPED)
        else:
            await self._done.wait()

    async def stop(self) -> None:
        """Stop now: in-flight requests are aborted."""
        if self.state in (ReplicaState.STOPPED, ReplicaState.CRASHED):
            return
        await self.engine.stop()
        await self._close_server(graceful=False)
        self._finish(ReplicaState.STOPPED)

    async def crash(self) -> None:
        """Die abruptly: close the listener, reset every connection, lose in-flight work."""
        if self.state in (ReplicaState.STOPPED, ReplicaState.CRASHED):
            return
        self.state = ReplicaState.CRASHED
        server = self._server
        if server is not None:
            for listener in getattr(server, "servers", []):
                listener.close()
            for connection in list(server.server_state.connections):
                transport = getattr(connection, "transport", None)
                if transport is not None:
                    transport.abort()
        await self._close_server(graceful=False)
        await self.engine.stop()
        self._finish(ReplicaState.CRASHED)

    async def wait(self) -> ReplicaState:
        """Wait until the replica has stopped or crashed."""
        await self._done.wait()
        return self.state

    def _finish(self, state: ReplicaState) -> None:
        for timer in self._timers:
            timer.cancel()
        self.state = state
        self._done.set()

    async def _close_server(self, *, graceful: bool) -> None:
        server, task = self._server, self._serve_task
        if server is None or task is None:
            return
        server.should_exit = True
        if not graceful:
            server.force_exit = True
            task.cancel()
        with contextlib.suppress(asyncio.CancelledError):
            await task
        if self._sock is not None:
            self._sock.close()

    # ----- ReplicaControls (admin API) -----

    def apply_fault(self, spec: FaultSpec) -> None:
        if spec.after_s > 0:
            loop = asyncio.get_running_loop()
            self._timers.append(loop.call_later(spec.after_s, self.apply_fault, replace(spec, after_s=0.0)))
            return
        log.warning("replica %s on port %d: injecting fault %s", self.spec.name, self.port, spec.mode.value)
        if spec.mode is FaultMode.HANG:
            self.faults.hang()
            self.engine.pause()
        elif spec.mode is FaultMode.SLOW:
            self.faults.slowdown = spec.slowdown
            self.engine.slowdown = spec.slowdown
        elif spec.mode is FaultMode.ERROR:
            self.faults.error_probability = spec.probability
            self.faults.error_status = spec.status
        elif spec.scope is CrashScope.PROCESS:
            self._process_exit(spec.exit_code)
        else:
            # Crash from inside a request handler: let the admin response go out first.
            asyncio.get_running_loop().call_later(0.05, self._crash_soon)

    def _crash_soon(self) -> None:
        if self._crash_task is None:
            self._crash_task = asyncio.get_running_loop().create_task(self.crash())

    def clear_faults(self) -> None:
        self.faults.clear()
        self.engine.slowdown = 1.0
        self.engine.resume()

    def request_drain(self) -> None:
        if self._drain_task is None:
            self._drain_task = asyncio.get_running_loop().create_task(self.drain())

    def stats(self) -> dict[str, Any]:
        engine = self.engine
        return {
            "state": self.state.value,
            "model": self.spec.name,
            "port": self.port,
            "description": self.resolved.description,
            "tp": self.resolved.tp,
            "max_model_len": self.max_model_len,
            "kv_cache_blocks": engine.scheduler.pool.num_blocks,
            "running": engine.num_running,
            "waiting": engine.num_waiting,
            "kv_cache_usage": engine.kv_usage,
            "steps": engine.stats.steps,
            "busy_sim_s": engine.stats.busy_sim_s,
            "lag_mean_s": engine.stats.lag_mean_s,
            "lag_max_s": engine.stats.lag_max_s,
            "speedup": engine.speedup,
            "faults": self.faults.as_json(),
        }
