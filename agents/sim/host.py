"""Many simulated replicas in one process and one event loop: the Python API the agent's `sim` backend uses.

    host = await start_replicas([ReplicaSpec("Llama-3.1-8B", "H100", port=0), ...])
    host.ports                      # the bound ports, in spec order
    await host.drain(port)          # refuse new requests, finish in-flight ones, close
    await host.close()              # drain everything

A replica that crashes (fault injection) stays in `replicas` with state `crashed` until removed.
"""

from __future__ import annotations

import asyncio
import os
import time
from collections.abc import Callable, Iterable

from agents.sim.clock import Clock, Sleep
from agents.sim.replica import ReplicaState, SimReplica
from agents.sim.spec import ReplicaSpec, Resolver, perf_model_resolver


class SimHost:
    def __init__(
        self,
        resolver: Resolver | None = None,
        *,
        clock: Clock = time.monotonic,
        sleep: Sleep = asyncio.sleep,
        wall_clock: Callable[[], float] = time.time,
        process_exit: Callable[[int], None] = os._exit,
    ) -> None:
        self._resolver = resolver if resolver is not None else perf_model_resolver()
        self._clock = clock
        self._sleep = sleep
        self._wall_clock = wall_clock
        self._process_exit = process_exit
        self.replicas: dict[int, SimReplica] = {}
        self._order: list[int] = []

    @property
    def ports(self) -> list[int]:
        return list(self._order)

    def build(self, spec: ReplicaSpec) -> SimReplica:
        """Resolve and construct a replica without starting it (raises SpecError on a bad spec)."""
        return SimReplica(spec, self._resolver(spec), clock=self._clock, sleep=self._sleep,
                          wall_clock=self._wall_clock, process_exit=self._process_exit)

    async def start(self, spec: ReplicaSpec) -> SimReplica:
        replica = self.build(spec)
        await replica.start()
        self.replicas[replica.port] = replica
        self._order.append(replica.port)
        return replica

    async def start_many(self, specs: Iterable[ReplicaSpec]) -> list[int]:
        # Resolve every spec first so a bad one starts nothing.
        return await self.launch([self.build(spec) for spec in specs])

    async def launch(self, built: Iterable[SimReplica]) -> list[int]:
        """Start replicas made by build(); returns their ports."""
        ports: list[int] = []
        for replica in built:
            await replica.start()
            self.replicas[replica.port] = replica
            self._order.append(replica.port)
            ports.append(replica.port)
        return ports

    def replica(self, port: int) -> SimReplica:
        return self.replicas[port]

    async def drain(self, port: int) -> None:
        await self.replicas[port].drain()

    async def stop(self, port: int) -> None:
        await self.replicas[port].stop()

    def remove(self, port: int) -> None:
        """Forget a replica that has stopped or crashed."""
        replica = self.replicas[port]
        if replica.state not in (ReplicaState.STOPPED, ReplicaState.CRASHED):
            raise RuntimeError(f"replica on port {port} is still {replica.state.value}")
        del self.replicas[port]
        self._order.remove(port)

    async def drain_all(self) -> None:
        await asyncio.gather(*(r.drain() for r in self.replicas.values()))

    async def stop_all(self) -> None:
        await asyncio.gather(*(r.stop() for r in self.replicas.values()))

    async def close(self) -> None:
        await self.drain_all()

    async def wait_all(self) -> list[ReplicaState]:
        """Wait until every replica has stopped or crashed; returns their final states."""
        return list(await asyncio.gather(*(r.wait() for r in self.replicas.values())))


async def start_replicas(specs: Iterable[ReplicaSpec], resolver: Resolver | None = None) -> SimHost:
    """Start replicas in the running event loop; `host.ports` lists their ports in spec order."""
    host = SimHost(resolver)
    await host.start_many(specs)
    return host
