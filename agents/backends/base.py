"""The replica-backend protocol: how an agent's reconcile loop starts, watches and stops model servers.

One backend runs replicas of one kind: ``vllm`` (real vLLM server processes,
``agents.backends.vllm_process``), ``sim`` (the vLLM-compatible simulator, ``agents.sim``), later
``skypilot``. The reconcile loop only speaks this protocol, so every backend is interchangeable behind it::

    class ReplicaBackend(Protocol):
        name: str
        def start(self, spec: ReplicaSpec) -> ReplicaHandle: ...
        def poll(self, handle: ReplicaHandle) -> ReplicaStatus: ...
        def stop(self, handle: ReplicaHandle, drain: bool = True) -> ReplicaStatus: ...

Contract (what the reconcile loop may rely on):

- ``start(spec)`` launches the replica and returns at once (it does not wait for readiness). It raises
  ``BackendError`` when the replica cannot even be launched (port taken, bad spec, missing executable);
  a launch that fails later shows up as ``FAILED`` from ``poll``.
- ``poll(handle)`` is cheap and non-blocking (at most one short health probe). It never raises for a
  replica problem; it reports it. States:

  ========== ==============================================================================
  STARTING   launched, not yet healthy, still inside ``spec.startup_timeout_s``
  READY      healthy on its last probe (``spec.base_url`` serves the OpenAI API)
  DRAINING   ``stop`` was called and the replica has not exited yet
  FAILED     needs replacing: exited unexpectedly, never became ready in time (the backend has
             already killed it), or stopped answering its health check after being ready
  EXITED     gone after ``stop`` (or exited on its own with status 0)
  ========== ==============================================================================

  ``ReplicaStatus.ever_ready`` lets the loop tell "crashed after serving" (restart with backoff) from
  "never came up" (do not relaunch in a loop).
  ``ReplicaStatus.preempted`` (with ``state`` FAILED) marks a replica whose spot capacity was reclaimed;
  it is reported on the first poll that sees it, so failover can start without waiting for timeouts.
- ``stop(handle, drain)`` blocks until the replica is gone and returns its final status. ``drain=True``
  lets in-flight requests finish (up to ``spec.drain_timeout_s``); ``drain=False`` stops it promptly.
  Either way the backend guarantees nothing it started survives (escalating to a hard kill).
  Calling it again, or on a replica that already exited, is harmless. Run it in a worker thread
  (``asyncio.to_thread``) from an async loop.
- Handles are plain values; the backend keeps any process state internally, keyed by ``replica_id``.

Secrets: ``ReplicaSpec.api_key`` is excluded from ``repr`` and backends must not put it on a command line
(other users of the host can read argv through ``ps``).
"""

from __future__ import annotations

import time
from collections.abc import Callable
from dataclasses import dataclass, field
from enum import StrEnum
from typing import Protocol, runtime_checkable


class BackendError(RuntimeError):
    """A replica could not be launched or controlled at all (as opposed to a replica that failed)."""


class ReplicaState(StrEnum):
    STARTING = "starting"
    READY = "ready"
    DRAINING = "draining"
    FAILED = "failed"
    EXITED = "exited"

    @property
    def terminal(self) -> bool:
        """True once the replica will never serve again without a new ``start``."""
        return self in (ReplicaState.FAILED, ReplicaState.EXITED)


@dataclass(frozen=True, slots=True)
class ReplicaSpec:
    """What to run: one model server for one (model version, variant) on one port.

    Fields a backend does not understand it ignores (the simulator has no real quantization, vLLM has no
    simulated accelerator); backend-specific knobs go in ``options``.
    """

    replica_id: str
    model: str  # what the engine loads: a local model directory or a hub id
    served_model_name: str  # the name clients pass as `model` in API calls
    port: int
    host: str = "127.0.0.1"
    quantization: str | None = None  # engine method, e.g. "fp8", "awq"; None = weights as stored
    tensor_parallel_size: int = 1
    max_model_len: int | None = None  # None = the model's own context length
    dtype: str = "auto"
    api_key: str | None = field(default=None, repr=False)
    startup_timeout_s: float = 600.0  # a replica not READY by then is FAILED (and killed)
    drain_timeout_s: int = 30  # in-flight requests get this long to finish on stop(drain=True)
    accelerator: str | None = None  # GPU type it runs on (informational for vllm, simulated by sim)
    extra_args: tuple[str, ...] = ()  # passed to the engine verbatim (after validation)
    options: tuple[tuple[str, str], ...] = ()  # backend-specific settings as (key, value) pairs

    def __post_init__(self) -> None:
        if not self.replica_id or not self.replica_id.strip():
            raise ValueError("ReplicaSpec.replica_id must not be empty")
        if not self.model or not self.served_model_name:
            raise ValueError("ReplicaSpec.model and served_model_name must not be empty")
        if not 1 <= self.port <= 65535:
            raise ValueError(f"ReplicaSpec.port out of range: {self.port}")
        if self.tensor_parallel_size < 1:
            raise ValueError("ReplicaSpec.tensor_parallel_size must be >= 1")
        if self.max_model_len is not None and self.max_model_len < 1:
            raise ValueError("ReplicaSpec.max_model_len must be positive")
        if self.quantization is not None and (
            not self.quantization or self.quantization != self.quantization.strip()
        ):
            raise ValueError("ReplicaSpec.quantization must be a method name or None")
        if self.api_key is not None and not self.api_key:
            raise ValueError("ReplicaSpec.api_key must be None or non-empty")
        if self.startup_timeout_s <= 0 or self.drain_timeout_s < 0:
            raise ValueError("ReplicaSpec timeouts must be positive")

    @property
    def base_url(self) -> str:
        """Root URL of the server (the OpenAI API lives under ``/v1``)."""
        host = f"[{self.host}]" if ":" in self.host else self.host
        return f"http://{host}:{self.port}"

    def option(self, key: str, default: str | None = None) -> str | None:
        return dict(self.options).get(key, default)


@dataclass(frozen=True, slots=True)
class ReplicaHandle:
    """A started replica, as the caller holds it. ``pid`` is None for replicas hosted in-process."""

    replica_id: str
    backend: str
    spec: ReplicaSpec
    started_at: float  # backend clock (monotonic seconds) at launch
    pid: int | None = None

    @property
    def base_url(self) -> str:
        return self.spec.base_url


@dataclass(frozen=True, slots=True)
class ReplicaStatus:
    state: ReplicaState
    exit_code: int | None = None  # process exit status; negative = killed by that signal number
    ever_ready: bool = False
    detail: str = ""  # why, for FAILED (with a log tail when there is one); empty otherwise
    # FAILED because the cloud took the capacity back (spot preemption), not because the replica broke:
    # the caller should fail over at once (likely to another zone or market) rather than retry in place.
    # ``detail`` then starts with "preempted". Only backends on preemptible capacity ever set it.
    preempted: bool = False


@runtime_checkable
class ReplicaBackend(Protocol):
    name: str

    def start(self, spec: ReplicaSpec) -> ReplicaHandle: ...

    def poll(self, handle: ReplicaHandle) -> ReplicaStatus: ...

    def stop(self, handle: ReplicaHandle, drain: bool = True) -> ReplicaStatus: ...


def wait_until_settled(
    backend: ReplicaBackend,
    handle: ReplicaHandle,
    *,
    interval_s: float = 0.5,
    clock: Callable[[], float] = time.monotonic,
    sleep: Callable[[float], None] = time.sleep,
) -> ReplicaStatus:
    """Poll until the replica is READY or terminal. For scripts and tests; the reconcile loop polls itself.

    No timeout argument of its own: the backend turns ``spec.startup_timeout_s`` into FAILED, so this
    always ends. A hard stop at twice that guards against a backend that breaks the contract.
    """
    deadline = clock() + 2 * handle.spec.startup_timeout_s + 30
    while True:
        status = backend.poll(handle)
        if status.state is ReplicaState.READY or status.state.terminal:
            return status
        if clock() > deadline:
            raise BackendError(
                f"{backend.name} backend left {handle.replica_id} {status.state} past its timeout"
            )
        sleep(interval_s)
