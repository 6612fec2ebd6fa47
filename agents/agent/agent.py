"""One agent: the reconcile loop of one cluster.

Each pass: pull the desired state (If-None-Match; keep the last good one when the control plane is away),
poll the replicas, decide (agents.agent.plan), act, scrape, and post a heartbeat. Nothing here stops a
replica because the control plane is unreachable: only a desired state actually received does that.
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
import time
from collections.abc import Callable
from datetime import UTC, datetime
from typing import Any

from agents.agent import AGENT_VERSION
from agents.agent.client import ControlPlaneClient, ControlPlaneUnavailable
from agents.agent.config import AgentConfig
from agents.agent.desired import DesiredState
from agents.agent.metrics import AgentMetrics
from agents.agent.plan import plan
from agents.agent.reconciler import ReplicaManager

log = logging.getLogger(__name__)

# A control plane restored from a backup restarts its generations lower. One lower snapshot is stale and
# ignored; this many in a row means the control plane really is there now, and the agent follows it.
STALE_PATIENCE = 5


def wall_clock_utc() -> datetime:
    return datetime.now(UTC)


class Agent:
    def __init__(
        self,
        config: AgentConfig,
        *,
        client: ControlPlaneClient,
        replicas: ReplicaManager,
        metrics: AgentMetrics,
        clock: Callable[[], float] = time.monotonic,
        wall_clock: Callable[[], datetime] = wall_clock_utc,
    ) -> None:
        self.config = config
        self.client = client
        self.replicas = replicas
        self.metrics = metrics
        self._clock = clock
        self._wall_clock = wall_clock
        self.desired: DesiredState | None = None
        self.control_plane_up = False
        self._stale_in_a_row = 0

    async def tick(self) -> None:
        """One reconcile pass."""
        self.metrics.reconcile_total.inc()
        await self._pull_desired()
        await self.replicas.observe()
        if self.desired is not None:
            wanted = self.desired.by_name()
            actions = plan(wanted, self.replicas.records, self._clock(), self.config.ready_timeout_s)
            await self.replicas.apply(actions, wanted)
        await self.replicas.scrape()
        await self._heartbeat()
        self.metrics.set_replica_phases(r.phase for r in self.replicas.records.values())

    async def run(self, stop: asyncio.Event) -> None:
        while not stop.is_set():
            try:
                await self.tick()
            except Exception:  # the loop outlives any one bad pass
                log.exception("reconcile pass failed")
                self.metrics.reconcile_errors_total.inc()
            with contextlib.suppress(TimeoutError):
                await asyncio.wait_for(stop.wait(), self.config.interval_s)

    async def shutdown(self) -> None:
        """Drain the replicas (the agent is going away; the control plane learns it from missing heartbeats)."""
        await self.replicas.shutdown()
        await self.client.aclose()

    def status(self) -> dict[str, Any]:
        return {
            "cluster": self.config.cluster,
            "backend": self.config.backend,
            "agent_version": AGENT_VERSION,
            "generation": self.desired.generation if self.desired else None,
            "control_plane_up": self.control_plane_up,
            "replicas": self.replicas.status(),
        }

    # ---- talking to the control plane ----------------------------------------------------------------

    def _contact(self, operation: str, ok: bool) -> None:
        self.control_plane_up = ok
        self.metrics.control_plane_up.set(1 if ok else 0)
        if not ok:
            self.metrics.control_plane_errors_total.labels(operation).inc()

    async def _pull_desired(self) -> None:
        try:
            snapshot = await self.client.fetch_desired(self.desired.etag if self.desired else None)
        except ControlPlaneUnavailable as error:
            log.warning("cannot pull the desired state (keeping the last one): %s", error)
            self._contact("desired", ok=False)
            return
        self._contact("desired", ok=True)
        if snapshot is None:
            return  # 304: unchanged
        if snapshot.cluster != self.config.cluster:
            log.error("the control plane sent the desired state of %s to the agent of %s",
                      snapshot.cluster, self.config.cluster)
            return
        current = self.desired
        if current is not None and snapshot.generation < current.generation:
            self._stale_in_a_row += 1
            self.metrics.stale_desired_total.inc()
            if self._stale_in_a_row < STALE_PATIENCE:
                log.info("ignoring desired state %d: %d is already applied", snapshot.generation, current.generation)
                return
            log.warning("the control plane's generation went back to %d; following it", snapshot.generation)
        self._stale_in_a_row = 0
        self.desired = snapshot
        self.metrics.desired_generation.set(snapshot.generation)

    async def _heartbeat(self) -> None:
        body = {
            "agent_version": AGENT_VERSION,
            "applied_generation": self.desired.generation if self.desired else None,
            "replicas": self.replicas.reports(self._wall_clock()),
        }
        try:
            await self.client.post_heartbeat(body)
        except ControlPlaneUnavailable as error:
            log.warning("heartbeat not delivered (the next one carries the same state): %s", error)
            self._contact("heartbeat", ok=False)
            return
        self._contact("heartbeat", ok=True)
        self.metrics.heartbeats_total.inc()
