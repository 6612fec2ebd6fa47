"""What the agent knows about each replica it runs: one record per replica name, kept across passes."""

from __future__ import annotations

import asyncio
import enum
from dataclasses import dataclass, field

from agents.agent.desired import DesiredReplica
from agents.agent.window import TelemetryWindow
from agents.backends.base import ReplicaHandle


class LocalPhase(enum.StrEnum):
    STARTING = "starting"  # launched, not healthy yet
    READY = "ready"
    DRAINING = "draining"  # being stopped by the agent
    BACKOFF = "backoff"  # crashed after serving; restarts when the delay is over
    FAILED = "failed"  # given up on: never became ready, could not launch, or crash loop
    PREEMPTED = "preempted"  # its spot capacity was reclaimed: the control plane places it elsewhere
    TERMINATED = "terminated"  # stopped because it is no longer wanted

    @property
    def reported(self) -> str:
        """The state the heartbeat reports (the control plane's vocabulary)."""
        return "starting" if self is LocalPhase.BACKOFF else self.value

    @property
    def settled(self) -> bool:
        return self in (LocalPhase.FAILED, LocalPhase.PREEMPTED, LocalPhase.TERMINATED)


@dataclass(slots=True)
class LocalReplica:
    name: str
    desired: DesiredReplica
    phase: LocalPhase
    window: TelemetryWindow
    handle: ReplicaHandle | None = None
    port: int | None = None
    launched_at: float | None = None  # agent clock, this incarnation
    ready_since: float | None = None  # agent clock, this incarnation
    ever_ready: bool = False  # this incarnation
    restarts: int = 0  # restarts after crashes, over the replica's life on this agent
    crash_streak: int = 0  # consecutive crashes without a stable period in between
    retry_at: float | None = None  # BACKOFF: when to restart
    failure_reason: str | None = None
    stop_task: asyncio.Task[None] | None = field(default=None, repr=False)

    @property
    def endpoint(self) -> str | None:
        return self.handle.base_url if self.handle is not None else None
