"""Activities of failover: find lost clusters, mark health, move traffic off a cluster, wait for it back."""

from __future__ import annotations

import asyncio
import time
from collections import defaultdict
from collections.abc import Callable
from datetime import datetime, timedelta

from sqlalchemy import select
from sqlalchemy.orm import Session, sessionmaker
from temporalio import activity
from temporalio.exceptions import ApplicationError

from registry import audit, routing
from registry.base import utcnow
from registry.clusters import Cluster, ClusterHealth, bump_desired_generation, get_cluster
from registry.db import transaction
from registry.deployments import Deployment, DeploymentPhase
from registry.errors import NotFound
from registry.replicas import Replica, ReplicaStatus, live_replicas_of, request_drain
from workflows.types import Done, Evacuation, FindLost, LostClusters, MarkCluster, WaitHealthy


def _aware(value: datetime, like: datetime) -> datetime:
    # SQLite hands back naive datetimes; compare in the clock's zone.
    return value if value.tzinfo is not None else value.replace(tzinfo=like.tzinfo)


class FailoverActivities:
    def __init__(self, sessions: sessionmaker[Session], *, clock: Callable[[], datetime] = utcnow,
                 monotonic: Callable[[], float] = time.monotonic) -> None:
        self._sessions = sessions
        self._clock = clock
        self._monotonic = monotonic

    def all(self) -> list[Callable[..., object]]:
        return [self.find_lost, self.mark, self.evacuate, self.wait_healthy]

    @activity.defn(name="failover_find_lost")
    async def find_lost(self, request: FindLost) -> LostClusters:
        """Clusters that served replicas and have been silent past the threshold, or that lost replicas
        nobody asked to stop (failed or preempted while wanted running)."""
        now = self._clock()
        silent_after = now - timedelta(seconds=request.heartbeat_threshold_s)
        lost: list[str] = []
        reasons: list[str] = []
        with transaction(self._sessions) as session:
            for cluster in session.scalars(select(Cluster).order_by(Cluster.name)):
                if cluster.health in (ClusterHealth.UNHEALTHY, ClusterHealth.CORDONED):
                    continue  # already failed over (or taken out by an operator)
                if cluster.last_heartbeat_at is None:
                    continue  # never heard from: nothing runs there to fail over
                if _aware(cluster.last_heartbeat_at, now) < silent_after:
                    lost.append(cluster.name)
                    reasons.append(f"no heartbeat for more than {request.heartbeat_threshold_s:.0f} s")
        return LostClusters(lost, reasons)

    @activity.defn(name="failover_mark")
    async def mark(self, request: MarkCluster) -> Done:
        with transaction(self._sessions) as session:
            cluster = get_cluster(session, request.cluster)
            health = ClusterHealth(request.health)
            if cluster.health is not health and cluster.health is not ClusterHealth.CORDONED:
                before = cluster.health
                cluster.health = health
                audit.record(session, team="platform", actor=request.actor, action="set_health",
                             object_type="cluster", object_id=cluster.name,
                             details={"from": before.value, "to": health.value, "reason": request.reason})
            return Done()

    @activity.defn(name="failover_evacuate")
    async def evacuate(self, request: MarkCluster) -> Evacuation:
        """At once, before any re-plan: publish every affected deployment's shares without the cluster and
        ask its replicas to drain (so they are not routable even by default routing). Idempotent."""
        with transaction(self._sessions) as session:
            try:
                lost = get_cluster(session, request.cluster)
            except NotFound:
                raise ApplicationError(f"cluster {request.cluster!r} not found", non_retryable=True) from None
            affected: list[str] = []
            drained: list[str] = []
            now = self._clock()
            for deployment in session.scalars(select(Deployment).order_by(Deployment.name)):
                if deployment.phase is DeploymentPhase.DELETING:
                    continue
                live = live_replicas_of(session, deployment.id)
                state = session.get(routing.RoutingState, deployment.id)
                routed_there = state is not None and any(s.cluster_id == lost.id for s in state.shares)
                on_lost = [r for r in live if r.cluster_id == lost.id]
                if not on_lost and not routed_there:
                    continue
                affected.append(deployment.name)
                shares = _shares_without(deployment, state, live, lost)
                routing.publish_routing(session, deployment=deployment, shares=shares, actor=request.actor)
                drained += [r.name for r in on_lost if request_drain(r, now)]
            if drained:
                bump_desired_generation(session, {lost.id})
            return Evacuation(request.cluster, affected, drained)

    @activity.defn(name="failover_wait_healthy")
    async def wait_healthy(self, request: WaitHealthy) -> Done:
        """Until the cluster's agent reports again (a fresh heartbeat), heartbeating meanwhile."""
        deadline = self._monotonic() + request.timeout_s
        while True:
            with transaction(self._sessions) as session:
                cluster = get_cluster(session, request.cluster)
                now = self._clock()
                fresh = cluster.last_heartbeat_at is not None and \
                    _aware(cluster.last_heartbeat_at, now) > now - timedelta(seconds=request.heartbeat_threshold_s)
            activity.heartbeat()
            if fresh:
                return Done()
            if self._monotonic() >= deadline:
                raise ApplicationError(f"{request.cluster} did not come back", type="NotRecovered",
                                       non_retryable=True)
            await asyncio.sleep(request.poll_interval_s)


def _shares_without(deployment: Deployment, state: routing.RoutingState | None, live: list[Replica],
                    lost: Cluster) -> list[routing.RouteShare]:
    """The deployment's shares with the lost cluster removed and each client region renormalised; a region
    left with nothing goes to the clusters that still have ready replicas, by their count."""
    current: dict[str, dict[str, float]] = defaultdict(dict)
    if state is not None and state.shares_published:
        for s in state.shares:
            current[s.client_region][s.cluster.name] = s.share
    ready: dict[str, int] = defaultdict(int)
    for r in live:
        if r.cluster_id != lost.id and r.status is ReplicaStatus.READY:
            ready[r.cluster.name] += 1
    regions = set(current) | {d["client_region"] for d in deployment.demand}
    out: list[routing.RouteShare] = []
    for region in sorted(regions):
        kept = {c: s for c, s in current.get(region, {}).items() if c != lost.name and s > 0}
        if not kept:
            kept = {c: float(n) for c, n in ready.items()}
        total = sum(kept.values())
        if total <= 0:
            continue  # nowhere to send it yet: the re-plan brings capacity up and publishes again
        out += [routing.RouteShare(region, c, s / total) for c, s in sorted(kept.items())]
    return out
