"""Simulated replicas served on real sockets from a background event loop, for synchronous test clients."""

from __future__ import annotations

import asyncio
import threading
from collections.abc import Coroutine, Iterator
from typing import Any, TypeVar

from agents.sim.host import SimHost
from agents.sim.replica import SimReplica
from agents.sim.spec import ReplicaSpec, fixed_resolver
from agents.sim.timing import LinearTiming

T = TypeVar("T")

# A synthetic GPU: 10 ms decode steps (+0.2 ms per sequence), 10 ms + 0.05 ms/token prefill, 64k KV tokens.
FAKE_TIMING = LinearTiming(kv_cache_tokens=65536, prefill_base_s=0.010, prefill_per_token_s=0.00005,
                           decode_base_s=0.010, decode_per_seq_s=0.0002)
SPEEDUP = 20.0  # 0.5 ms of wall time per decode step: fast tests, still far above timer noise per request


class HostThread:
    """SimHosts running in their own thread and event loop (one host per timing)."""

    def __init__(self) -> None:
        self.loop = asyncio.new_event_loop()
        self._thread = threading.Thread(target=self.loop.run_forever, daemon=True)
        self._thread.start()
        self.host: SimHost = self.call(self._make_host(FAKE_TIMING))
        self._hosts = [self.host]
        self._replicas: dict[str, SimReplica] = {}

    @staticmethod
    async def _make_host(timing: LinearTiming) -> SimHost:
        return SimHost(fixed_resolver(timing, context=8192))

    def call(self, coro: Coroutine[Any, Any, T], timeout: float = 30.0) -> T:
        return asyncio.run_coroutine_threadsafe(coro, self.loop).result(timeout)

    def submit(self, coro: Coroutine[Any, Any, T]) -> Any:
        """Start a coroutine in the host loop without waiting for it."""
        return asyncio.run_coroutine_threadsafe(coro, self.loop)

    def start(self, timing: LinearTiming | None = None, **spec: Any) -> str:
        host = self.host
        if timing is not None:
            host = self.call(self._make_host(timing))
            self._hosts.append(host)
        values = {"model": "sim-model", "accelerator": "fake", "speedup": SPEEDUP, **spec}
        replica = self.call(host.start(ReplicaSpec(**values)))
        self._replicas[replica.url] = replica
        return replica.url

    def replica(self, url: str) -> SimReplica:
        return self._replicas[url]

    def close(self) -> None:
        for host in self._hosts:
            self.call(host.stop_all())
        self.loop.call_soon_threadsafe(self.loop.stop)
        self._thread.join(10)
