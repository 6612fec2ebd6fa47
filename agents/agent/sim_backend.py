"""The `sim` replica backend: simulated vLLM replicas hosted in the agent's own process.

Adapts agents.sim's async `SimHost` to the synchronous ReplicaBackend protocol (agents.backends.base):
the host runs on its own event loop in a background thread, and each protocol call hands a coroutine to
that loop. A slow or wedged replica then never stalls the agent's loop, and a whole cluster's replicas
cost one thread instead of one process each (the machine has 2 cores).

Spec mapping: `model` names the simulated architecture (known families resolve by name; `params_b` in
`options` sizes unknown ones), the `variant` option picks the precision, `accelerator` and
`tensor_parallel_size` the GPU; `speedup` (option) scales simulated time.
"""

from __future__ import annotations

import asyncio
import threading
import time
from collections.abc import Callable, Coroutine
from dataclasses import dataclass
from typing import Any, TypeVar

import httpx

from agents.backends.base import BackendError, ReplicaHandle, ReplicaSpec, ReplicaState, ReplicaStatus
from agents.sim import ReplicaSpec as SimSpec
from agents.sim import ReplicaState as SimState
from agents.sim import SimHost, SimReplica, SpecError
from agents.sim.spec import Resolver

T = TypeVar("T")


@dataclass(slots=True)
class _Record:
    handle: ReplicaHandle
    replica: SimReplica
    port: int  # kept: a closed replica can no longer tell its port (its socket is gone)
    ever_ready: bool = False
    probe_failures: int = 0
    stop_requested: bool = False
    final: ReplicaStatus | None = None


class SimBackend:
    name = "sim"

    def __init__(
        self,
        *,
        speedup: float = 1.0,
        resolver: Resolver | None = None,
        http: httpx.Client | None = None,
        clock: Callable[[], float] = time.monotonic,
        probe_timeout_s: float = 2.0,
        unhealthy_after: int = 3,
        call_timeout_s: float = 30.0,
    ) -> None:
        self.speedup = speedup
        self._clock = clock
        self.probe_timeout_s = probe_timeout_s
        self.unhealthy_after = unhealthy_after
        self.call_timeout_s = call_timeout_s
        self._http = http if http is not None else httpx.Client(trust_env=False)
        self._owns_http = http is None
        self._loop = asyncio.new_event_loop()
        self._thread = threading.Thread(target=self._loop.run_forever, name="sim-host", daemon=True)
        self._thread.start()
        self._host: SimHost = self._call(self._make_host(resolver))
        self._records: dict[str, _Record] = {}
        self._lock = threading.Lock()

    @staticmethod
    async def _make_host(resolver: Resolver | None) -> SimHost:
        return SimHost(resolver)

    def _call(self, coro: Coroutine[Any, Any, T], timeout: float | None = None) -> T:
        future = asyncio.run_coroutine_threadsafe(coro, self._loop)
        try:
            return future.result(timeout if timeout is not None else self.call_timeout_s)
        except TimeoutError:
            future.cancel()
            raise

    # -- protocol -------------------------------------------------------------------------------------

    def start(self, spec: ReplicaSpec) -> ReplicaHandle:
        with self._lock:
            existing = self._records.get(spec.replica_id)
        if existing is not None and existing.final is None:
            if existing.handle.spec == spec:
                return existing.handle  # a repeated start of the same replica is not a new replica
            raise BackendError(f"replica {spec.replica_id} is running with a different spec; stop it first")
        sim_spec = self._sim_spec(spec)
        try:
            replica = self._call(self._host.start(sim_spec))
        except (SpecError, OSError, RuntimeError, ValueError) as error:
            raise BackendError(f"cannot start simulated replica {spec.replica_id}: {error}") from error
        handle = ReplicaHandle(replica_id=spec.replica_id, backend=self.name, spec=spec, started_at=self._clock())
        with self._lock:
            self._records[spec.replica_id] = _Record(handle=handle, replica=replica, port=replica.port)
        return handle

    def poll(self, handle: ReplicaHandle) -> ReplicaStatus:
        record = self._get(handle)
        if record.final is not None:
            return record.final
        state = record.replica.state
        if record.stop_requested or state is SimState.DRAINING:
            return ReplicaStatus(ReplicaState.DRAINING, ever_ready=record.ever_ready)
        if state is SimState.CRASHED:
            return self._settle(record, ReplicaStatus(
                ReplicaState.FAILED, ever_ready=record.ever_ready, detail="simulated replica crashed"))
        if state is SimState.STOPPED:  # stopped on its own (admin drain)
            return self._settle(record, ReplicaStatus(ReplicaState.EXITED, exit_code=0, ever_ready=record.ever_ready))
        if self._healthy(handle.spec):
            record.ever_ready = True
            record.probe_failures = 0
            return ReplicaStatus(ReplicaState.READY, ever_ready=True)
        if not record.ever_ready:
            waited = self._clock() - handle.started_at
            if waited > handle.spec.startup_timeout_s:
                self._force_stop(record)
                return self._settle(record, ReplicaStatus(
                    ReplicaState.FAILED, detail=f"not ready after {waited:.0f} s (startup timeout)"))
            return ReplicaStatus(ReplicaState.STARTING)
        record.probe_failures += 1
        if record.probe_failures >= self.unhealthy_after:
            self._force_stop(record)
            return self._settle(record, ReplicaStatus(
                ReplicaState.FAILED, ever_ready=True,
                detail=f"health check failed {record.probe_failures} times in a row"))
        return ReplicaStatus(ReplicaState.READY, ever_ready=True)  # one slow probe is not a failure yet

    def stop(self, handle: ReplicaHandle, drain: bool = True) -> ReplicaStatus:
        record = self._get(handle)
        if record.final is not None:
            return record.final
        record.stop_requested = True
        port = record.port
        if drain:
            try:
                # The replica finishes in-flight requests and refuses new ones, then closes.
                self._call(self._host.drain(port), timeout=handle.spec.drain_timeout_s + 5.0)
            except TimeoutError:
                self._force_stop(record)
        else:
            self._force_stop(record)
        return self._settle(record, ReplicaStatus(ReplicaState.EXITED, exit_code=0, ever_ready=record.ever_ready))

    # -- extras ---------------------------------------------------------------------------------------

    def replica(self, handle: ReplicaHandle) -> SimReplica:
        """The simulated replica behind a handle (tests inject faults through it)."""
        return self._get(handle).replica

    def close(self) -> None:
        """Stop every replica at once and end the host thread."""
        with self._lock:
            records = list(self._records.values())
        for record in records:
            if record.final is None:
                self._force_stop(record)
                self._settle(record, ReplicaStatus(ReplicaState.EXITED, exit_code=0, ever_ready=record.ever_ready))
        self._loop.call_soon_threadsafe(self._loop.stop)
        self._thread.join(timeout=10)
        if self._owns_http:
            self._http.close()

    # -- internals ------------------------------------------------------------------------------------

    def _sim_spec(self, spec: ReplicaSpec) -> SimSpec:
        if not spec.accelerator:
            raise BackendError(f"replica {spec.replica_id}: the sim backend needs an accelerator to simulate")
        params_b = spec.option("params_b")
        try:
            return SimSpec(
                model=spec.model,
                accelerator=spec.accelerator,
                params_b=float(params_b) if params_b is not None else None,
                variant=spec.option("variant", "bf16") or "bf16",
                tp=spec.tensor_parallel_size,
                host=spec.host,
                port=spec.port,
                speedup=float(spec.option("speedup", str(self.speedup)) or self.speedup),
                served_model_name=spec.served_model_name,
                api_key=spec.api_key,
                max_model_len=spec.max_model_len,
                drain_timeout_s=float(spec.drain_timeout_s),
            )
        except (SpecError, ValueError) as error:
            raise BackendError(f"replica {spec.replica_id}: {error}") from error

    def _get(self, handle: ReplicaHandle) -> _Record:
        with self._lock:
            record = self._records.get(handle.replica_id)
        if record is None or record.handle != handle:
            raise BackendError(f"replica {handle.replica_id} was not started by this backend")
        return record

    def _healthy(self, spec: ReplicaSpec) -> bool:
        try:
            return self._http.get(f"{spec.base_url}/health", timeout=self.probe_timeout_s).status_code == 200
        except httpx.HTTPError:
            return False

    def _force_stop(self, record: _Record) -> None:
        try:
            self._call(self._host.stop(record.port))
        except TimeoutError:
            pass  # the replica's task is cancelled with the call; nothing else holds its port

    def _settle(self, record: _Record, status: ReplicaStatus) -> ReplicaStatus:
        with self._lock:
            if record.final is not None:
                return record.final
            record.final = status
        try:
            self._call(self._forget(record.port))
        except TimeoutError:
            pass
        return status

    async def _forget(self, port: int) -> None:
        # On the host's loop: SimHost is not thread-safe. A replica still running (a hung one whose stop
        # timed out) stays listed; its port is not reused by this backend's callers anyway.
        try:
            self._host.remove(port)
        except (KeyError, RuntimeError):
            pass
