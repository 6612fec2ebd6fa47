"""Activities of the AutoscaleWorkflow: read the load the agents reported, re-plan through the MILP, and
(when the MILP finds no plan) resize the placement as it stands."""

from __future__ import annotations

import asyncio
from collections.abc import Callable
from dataclasses import replace
from datetime import datetime, timedelta

from sqlalchemy.orm import Session, sessionmaker
from temporalio import activity

from registry.base import utcnow
from registry.db import transaction
from registry.plans import Plan as PlanRow
from registry.plans import find_keyed_plan, record_keyed_plan
from registry.replicas import (
    DesiredState, PlacementItem, Replica, ReplicaStatus, ReplicaTelemetry, current_placement, live_replicas_of,
    set_placement,
)
from scheduler.autoscale import resize
from scheduler.autoscale_replan import ReplanLimits, placed_capacity_rps, planning_demand, replan
from scheduler.perf_model import PerfModel
from scheduler.placement import SolveOptions, build_candidates
from scheduler.placement.snapshot import Deployment
from scheduler.speed_calibration import LatencySample, SpeedModels, rounded, update_speeds
from workflows import planning
from workflows.activities import _deployment
from workflows.types import (
    ApplyResult, Item, LoadObservation, ObserveLoad, ReplanOutcome, ReplanRequest, ScaleTo, Share,
)

STALE_AFTER = timedelta(minutes=5)  # telemetry older than this says nothing about now


def _speed_samples(models: SpeedModels, dep: Deployment,
                   reporting: list[tuple[Replica, ReplicaTelemetry]]) -> list[LatencySample | None]:
    """One window per replica that reported a TPOT: its accelerator's speed as that window shows it, at the
    deployment's declared mean request shape (the agent reports no per-shape split)."""
    shape, variants = dep.mean_shape, {v.name: v for v in dep.variants}
    return [
        models.sample(dep.arch, variants[r.variant], r.pool.accelerator, r.tensor_parallel, shape,
                      t.request_rate, t.tpot_p95_ms, t.request_rate * t.window_s)
        for r, t in reporting
        if t.tpot_p95_ms is not None and r.variant in variants
    ]


def fresh_telemetry(replica: Replica, now: datetime) -> ReplicaTelemetry | None:
    """A ready replica's latest window when it is recent enough to say something about now."""
    t = replica.telemetry
    if replica.status is not ReplicaStatus.READY or t is None:
        return None
    return t if now - t.received_at.replace(tzinfo=now.tzinfo) < STALE_AFTER else None


class AutoscaleActivities:
    def __init__(self, sessions: sessionmaker[Session], *, perf: PerfModel | None = None,
                 clock: Callable[[], datetime] = utcnow) -> None:
        self._sessions = sessions
        self._perf = perf if perf is not None else PerfModel()
        self._speeds = SpeedModels(self._perf)
        self._clock = clock

    def all(self) -> list[Callable[..., object]]:
        return [self.observe, self.replan, self.scale_to]

    @activity.defn(name="autoscale_observe")
    async def observe(self, request: ObserveLoad) -> LoadObservation:
        now = self._clock()
        with transaction(self._sessions) as session:
            row = _deployment(session, request.deployment)
            running = [r for r in live_replicas_of(session, row.id)
                       if r.desired_state is DesiredState.RUNNING and r.version_id == row.version_id]
            reporting = [(r, t) for r in running if (t := fresh_telemetry(r, now)) is not None]
            fresh = [t for _, t in reporting]
            rps = sum(t.request_rate for t in fresh) if fresh else None
            capacity = request.replica_capacity_rps
            speeds = dict(request.speeds)  # learned only when the capacity comes from the model
            if capacity is None and rps is None:
                capacity = 0.0  # blind: the policy holds whatever the capacity, so the model is not asked
            elif capacity is None:
                # What these replicas sustain at the declared request mix: the performance model with each
                # accelerator at the speed the replicas' reported TPOT shows (never above the datasheet).
                snapshot = planning.build_snapshot(session, row, count_starting=True)
                placed = {p.pool for p in snapshot.current}
                snapshot = replace(snapshot, pools=tuple(p for p in snapshot.pools if p.id in placed))
                dep = snapshot.deployment_by_name[row.name]
                speeds = update_speeds(request.speeds, _speed_samples(self._speeds, dep, reporting))
                model = self._speeds.calibrated(rounded(speeds))
                capacity = placed_capacity_rps(snapshot, build_candidates(snapshot, model), row.name) or 0.0
            prices = [r.pool.price_per_hour * r.tensor_parallel / r.pool.gpus_per_instance for r in running]
            return LoadObservation(
                rps=rps, replicas=len(running), capacity_rps=capacity, min_replicas=row.min_replicas,
                max_replicas=row.max_replicas, budget_per_hour=row.budget_per_hour,
                price_per_replica_hour=max(prices) if prices else 0.0, speeds=speeds,
            )

    @activity.defn(name="autoscale_replan")
    async def replan(self, request: ReplanRequest) -> ReplanOutcome:
        """The MILP on the forecast, with what runs (or is starting) as the current placement, so the churn
        penalty keeps replicas where moving them does not pay; recorded as a Plan row under the request's
        key (a retry finds it). Nothing is applied here: the workflow changes the placement make-before-
        break with the fleet activities."""
        return await asyncio.to_thread(self._replan, request)

    def _replan(self, request: ReplanRequest) -> ReplanOutcome:
        with transaction(self._sessions) as session:
            row = _deployment(session, request.deployment)
            previous = [Item(p.cluster, p.pool, p.variant, p.tensor_parallel, p.count)
                        for p in current_placement(session, row)]
            found = find_keyed_plan(session, row.id, request.key)
            if found is not None:
                return _outcome(found, previous)
            snapshot = planning.build_snapshot(session, row, now=self._clock(), count_starting=True)
            limits = ReplanLimits(row.max_replicas, row.budget_per_hour)
        table = build_candidates(snapshot, self._perf)
        dep = snapshot.deployment_by_name[request.deployment]
        demand = planning_demand(
            request.forecast_rps, target_utilisation=request.target_utilisation,
            headroom=dep.headroom or snapshot.headroom, observed_capacity_rps=request.observed_capacity_rps,
            model_capacity_rps=placed_capacity_rps(snapshot, table, request.deployment))
        result = replan(snapshot, table, request.deployment, demand, limits,
                        SolveOptions(time_limit_s=request.time_limit_s, threads=1))
        plan = result.plan
        with transaction(self._sessions) as session:
            row = _deployment(session, request.deployment)
            found = record_keyed_plan(
                session, row.id, request.key, status=plan.status if plan.ok else "infeasible",
                cost_per_hour=plan.cost_per_hour, lower_bound_per_hour=plan.lower_bound_per_hour,
                solve_seconds=plan.solve_seconds, items=planning.plan_to_items(plan, request.deployment),
                shares=planning.plan_to_shares(plan, request.deployment),
                reasons=[f"autoscale: {result.reason}", *plan.reasons, *plan.binding], created_at=self._clock())
            return _outcome(found, previous)

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


def _outcome(row: PlanRow, previous: list[Item]) -> ReplanOutcome:
    ok = row.status in ("optimal", "feasible")
    return ReplanOutcome(
        ok=ok, reason=row.reasons[1] if len(row.reasons) > 1 else row.status, previous=previous,
        items=[Item(**i) for i in row.replicas] if ok else [],
        shares=[Share(**s) for s in row.routing] if ok else [], plan_id=row.id)
