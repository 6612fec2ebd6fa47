"""Activities of failover: find lost clusters, mark health, move traffic off a cluster, wait for it back;
and the lighter path for spot preemption: find preempted replicas, move traffic off the capacity they were."""

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
from registry.replicas import (
    DesiredState,
    Replica,
    ReplicaStatus,
    live_replicas_of,
    replicas_of,
    request_drain,
)
from workflows.types import (
    Done,
    Evacuation,
    FindLost,
    FindPreempted,
    LostClusters,
    MarkCluster,
    PreemptedGroup,
    Preemptions,
    Shifted,
    ShiftFromPreempted,
    WaitHealthy,
)


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
        return [self.find_lost, self.mark, self.evacuate, self.wait_healthy, self.find_preempted,
                self.shift_from_preempted]

    @activity.defn(name="failover_find_lost")
    async def find_lost(self, request: FindLost) -> LostClusters:
        """Clusters that served replicas and have been silent past the threshold. (Replicas lost to spot
        preemption on a cluster that still reports are `find_preempted`'s: the cluster stays healthy.)"""
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

    @activity.defn(name="failover_find_preempted")
    async def find_preempted(self, request: FindPreempted) -> Preemptions:
        """Replicas preempted within the lookback that were still wanted (no drain asked), of live
        deployments, on clusters not already failed over; those not yet handled are grouped by deployment."""
        since = self._clock() - timedelta(seconds=request.lookback_s)
        handled = set(request.handled)
        by_deployment: dict[str, list[str]] = defaultdict(list)
        recent: list[str] = []
        with transaction(self._sessions) as session:
            rows = session.scalars(
                select(Replica)
                .where(Replica.preempted_at.is_not(None), Replica.preempted_at >= since,
                       Replica.terminated_at.is_(None), Replica.drain_requested_at.is_(None))
                .order_by(Replica.name))
            for replica in rows:
                if replica.deployment.phase is DeploymentPhase.DELETING:
                    continue
                if replica.cluster.health in (ClusterHealth.UNHEALTHY, ClusterHealth.CORDONED):
                    continue  # the cluster's failover (or its operator) has it
                recent.append(replica.name)
                if replica.name not in handled:
                    by_deployment[replica.deployment.name].append(replica.name)
        return Preemptions([PreemptedGroup(d, names) for d, names in sorted(by_deployment.items())], recent)

    @activity.defn(name="failover_shift_from_preempted")
    async def shift_from_preempted(self, request: ShiftFromPreempted) -> Shifted:
        """At once, before the re-plan: scale each cluster's published shares by the part of its ready
        capacity that is left (ready / (ready + preempted)) and renormalise per client region. Only
        replicas preempted after the last publish count, so running this twice shifts once."""
        with transaction(self._sessions) as session:
            deployment = session.scalar(select(Deployment).where(Deployment.name == request.deployment))
            if deployment is None or deployment.phase is DeploymentPhase.DELETING:
                return Shifted(request.deployment, None)
            state = session.get(routing.RoutingState, deployment.id)
            if state is None or not state.shares_published:
                # Default routing is computed from ready replicas on every read: it has moved already.
                return Shifted(request.deployment, None)
            published_at = state.updated_at
            wanted = set(request.replicas)
            lost: dict[str, int] = defaultdict(int)
            ready: dict[str, int] = defaultdict(int)
            for r in replicas_of(session, deployment.id):
                if r.name in wanted and r.preempted_at is not None and r.ready_at is not None \
                        and _aware(r.preempted_at, published_at) > published_at:
                    # It was serving (it had been ready) and the published shares still counted on it.
                    lost[r.cluster.name] += 1
                elif r.status is ReplicaStatus.READY and r.desired_state is DesiredState.RUNNING:
                    ready[r.cluster.name] += 1
            if not lost:
                return Shifted(request.deployment, state.generation)
            keep = {c: ready[c] / (ready[c] + n) for c, n in lost.items()}
            shares = _scaled_shares(state, keep, ready)
            generation = routing.publish_routing(session, deployment=deployment, shares=shares, actor=request.actor)
            return Shifted(request.deployment, generation, sorted(lost))


def _scaled_shares(state: routing.RoutingState, keep: dict[str, float],
                   ready: dict[str, int]) -> list[routing.RouteShare]:
    """Published shares with cluster c's scaled by keep[c], renormalised per client region; a region left
    with nothing goes to the clusters with ready replicas, by their count, or else stays as it was."""
    current: dict[str, dict[str, float]] = defaultdict(dict)
    for s in state.shares:
        current[s.client_region][s.cluster.name] = s.share
    out: list[routing.RouteShare] = []
    for region in sorted(current):
        scaled = {c: s * keep.get(c, 1.0) for c, s in current[region].items()}
        scaled = {c: s for c, s in scaled.items() if s > 0}
        if not scaled:
            scaled = {c: float(n) for c, n in ready.items() if n > 0} or current[region]
        total = sum(scaled.values())
        out += [routing.RouteShare(region, c, s / total) for c, s in sorted(scaled.items())]
    return out


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
