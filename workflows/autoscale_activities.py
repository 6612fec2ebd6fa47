"""Activities of the AutoscaleWorkflow: read the load the agents reported, and scale the placement."""

from __future__ import annotations

from collections.abc import Callable
from datetime import datetime, timedelta

from sqlalchemy.orm import Session, sessionmaker
from temporalio import activity

from registry.base import utcnow
from registry.db import transaction
from registry.plans import latest_plan
from registry.replicas import (
    DesiredState, PlacementItem, Replica, ReplicaStatus, ReplicaTelemetry, current_placement, live_replicas_of,
    set_placement,
)
from scheduler.autoscale import resize
from workflows.activities import _deployment
from workflows.types import ApplyResult, LoadObservation, ObserveLoad, ScaleTo

PLAN_HEADROOM = 0.8  # the optimizer's default planned load per replica (scheduler.placement.Snapshot.headroom)
STALE_AFTER = timedelta(minutes=5)  # telemetry older than this says nothing about now


def fresh_telemetry(replica: Replica, now: datetime) -> ReplicaTelemetry | None:
    """A ready replica's latest window when it is recent enough to say something about now."""
    t = replica.telemetry
    if replica.status is not ReplicaStatus.READY or t is None:
        return None
    return t if now - t.received_at.replace(tzinfo=now.tzinfo) < STALE_AFTER else None


class AutoscaleActivities:
    def __init__(self, sessions: sessionmaker[Session], *, clock: Callable[[], datetime] = utcnow) -> None:
        self._sessions = sessions
        self._clock = clock

    def all(self) -> list[Callable[..., object]]:
        return [self.observe, self.scale_to]

    @activity.defn(name="autoscale_observe")
    async def observe(self, request: ObserveLoad) -> LoadObservation:
        now = self._clock()
        with transaction(self._sessions) as session:
            row = _deployment(session, request.deployment)
            running = [r for r in live_replicas_of(session, row.id)
                       if r.desired_state is DesiredState.RUNNING and r.version_id == row.version_id]
            fresh = [t for r in running if (t := fresh_telemetry(r, now)) is not None]
            rps = sum(t.request_rate for t in fresh) if fresh else None
            capacity = request.replica_capacity_rps
            if capacity is None:
                # The plan sized its replicas for the declared demand at the optimizer's headroom.
                plan = latest_plan(session, row.id)
                planned = sum(int(i["count"]) for i in plan.replicas) if plan is not None else 0
                declared = sum(float(d["rps"]) for d in row.demand)
                capacity = declared / planned / PLAN_HEADROOM if planned and declared else 0.0
            prices = [r.pool.price_per_hour * r.tensor_parallel / r.pool.gpus_per_instance for r in running]
            return LoadObservation(
                rps=rps, replicas=len(running), capacity_rps=capacity, min_replicas=row.min_replicas,
                max_replicas=row.max_replicas, budget_per_hour=row.budget_per_hour,
                price_per_replica_hour=max(prices) if prices else 0.0,
            )

    @activity.defn(name="autoscale_scale_to")
    async def scale_to(self, request: ScaleTo) -> ApplyResult:
        """Keep the placement's shape and change its size: add where the traffic goes (the item whose replicas
        carry the most observed load each), take from where it does not (`scheduler.autoscale.resize`).
        Surplus replicas drain (the agent stops them only once their in-flight requests are done).
        Level-triggered on the target count, so a retry changes nothing more."""
        now = self._clock()
        with transaction(self._sessions) as session:
            row = _deployment(session, request.deployment)
            items = [PlacementItem(i.cluster, i.pool, i.variant, i.tensor_parallel, i.count)
                     for i in current_placement(session, row)]
            if not items:
                return ApplyResult([], [])  # nothing deployed yet: the DeployWorkflow decides the shape
            load: dict[tuple[str, str, str, int], float] = {}
            for r in live_replicas_of(session, row.id):
                if r.version_id == row.version_id and (t := fresh_telemetry(r, now)) is not None:
                    key = (r.cluster.name, r.pool.name, r.variant, r.tensor_parallel)
                    load[key] = load.get(key, 0.0) + t.request_rate
            counts = resize([i.count for i in items],
                            [load.get((i.cluster, i.pool, i.variant, i.tensor_parallel), 0.0) for i in items],
                            request.replicas)
            wanted = [PlacementItem(i.cluster, i.pool, i.variant, i.tensor_parallel, n) for i, n in zip(items, counts, strict=True)]
            change = set_placement(session, deployment=row, items=wanted, actor=request.actor)
            return ApplyResult(change.created, change.drained)
