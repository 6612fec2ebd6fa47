"""Activities: thin, idempotent adapters over the registry and the scheduler.

Dependencies (session factory, clock, performance model) come in through `FleetActivities`, so a test or
the worker decides what they are; nothing here is a module-level singleton. Each activity is safe to run
twice: placement and routing are level-triggered, plans are found again by their key, and the observed
generation only moves forward.
"""

from __future__ import annotations

import asyncio
import time
from collections.abc import Callable
from datetime import datetime

from sqlalchemy import select
from sqlalchemy.orm import Session, sessionmaker
from temporalio import activity
from temporalio.exceptions import ApplicationError

from registry import routing
from registry.base import utcnow
from registry.db import transaction
from registry.deployments import Deployment
from registry.errors import Conflict, Invalid
from registry.model_versions import find_version
from registry.plans import Plan as PlanRow
from registry.plans import find_keyed_plan, record_keyed_plan
from registry.replicas import DesiredState, PlacementItem, ReplicaStatus, current_placement, live_replicas_of, set_placement
from scheduler.perf_model import PerfModel
from scheduler.placement import SolveOptions, build_candidates, solve
from workflows import planning
from workflows.types import (
    ApplyPlacement,
    ApplyResult,
    DeploymentRef,
    Done,
    Item,
    MarkObserved,
    PlacementState,
    PlanOutcome,
    PlanRequest,
    PublishShares,
    ReadyResult,
    RoutingResult,
    Share,
    WaitReady,
)


def _deployment(session: Session, name: str) -> Deployment:
    row = session.scalar(select(Deployment).where(Deployment.name == name))
    if row is None:
        # Gone (deleted meanwhile): retrying cannot help.
        raise ApplicationError(f"deployment {name!r} not found", type="NotFound", non_retryable=True)
    return row


def _items(items: list[Item]) -> list[PlacementItem]:
    return [PlacementItem(i.cluster, i.pool, i.variant, i.tensor_parallel, i.count) for i in items]


class FleetActivities:
    def __init__(self, sessions: sessionmaker[Session], *, perf: PerfModel | None = None,
                 clock: Callable[[], datetime] = utcnow, monotonic: Callable[[], float] = time.monotonic) -> None:
        self._sessions = sessions
        self._perf = perf if perf is not None else PerfModel()
        self._clock = clock
        self._monotonic = monotonic

    def all(self) -> list[Callable[..., object]]:
        return [self.current_placement, self.plan_deployment, self.apply_placement, self.wait_ready,
                self.publish_shares, self.mark_observed]

    @activity.defn
    async def current_placement(self, ref: DeploymentRef) -> PlacementState:
        """What runs now, so a failed deploy can put it back."""
        with transaction(self._sessions) as session:
            row = _deployment(session, ref.deployment)
            items = [Item(p.cluster, p.pool, p.variant, p.tensor_parallel, p.count)
                     for p in current_placement(session, row)]
            return PlacementState(ref.deployment, row.desired_generation, items)

    @activity.defn
    async def plan_deployment(self, request: PlanRequest) -> PlanOutcome:
        """Solve the placement for one deployment and record it as a Plan row (once per key)."""
        # The MILP is CPU-bound: keep it off the worker's event loop.
        return await asyncio.to_thread(self._plan, request)

    def _plan(self, request: PlanRequest) -> PlanOutcome:
        with transaction(self._sessions) as session:
            row = _deployment(session, request.deployment)
            generation = row.desired_generation
            found = find_keyed_plan(session, row.id, request.key)
            if found is not None:
                return self._outcome(found, generation)
            snapshot = planning.build_snapshot(session, row, request.exclude_clusters, now=self._clock())
        table = build_candidates(snapshot, self._perf)
        plan = solve(snapshot, table, SolveOptions(time_limit_s=request.time_limit_s, threads=1))
        items = planning.plan_to_items(plan, request.deployment)
        shares = planning.plan_to_shares(plan, request.deployment)
        with transaction(self._sessions) as session:
            row = _deployment(session, request.deployment)
            if row.max_replicas is not None and sum(i[4] for i in items) > row.max_replicas:
                reasons = [f"the plan needs {sum(i[4] for i in items)} replicas, max_replicas is {row.max_replicas}"]
                status = "infeasible"
            else:
                reasons = list(plan.reasons) + list(plan.binding)
                status = plan.status if plan.ok else "infeasible"
            plan_row = record_keyed_plan(
                session, row.id, request.key, status=status, cost_per_hour=plan.cost_per_hour,
                lower_bound_per_hour=plan.lower_bound_per_hour, solve_seconds=plan.solve_seconds,
                items=items, shares=shares, reasons=reasons, created_at=self._clock())
            return self._outcome(plan_row, generation)

    @staticmethod
    def _outcome(row: PlanRow, generation: int) -> PlanOutcome:
        ok = row.status in ("optimal", "feasible")
        return PlanOutcome(
            ok=ok, plan_id=row.id, status=row.status, generation=generation,
            items=[Item(**i) for i in row.replicas], shares=[Share(**s) for s in row.routing],
            reason="; ".join(row.reasons[1:4]) if not ok else "",
        )

    @activity.defn
    async def apply_placement(self, request: ApplyPlacement) -> ApplyResult:
        """Level-triggered: running it again with the same items creates and drains nothing."""
        try:
            with transaction(self._sessions) as session:
                row = _deployment(session, request.deployment)
                change = set_placement(session, deployment=row, items=_items(request.items), actor=request.actor)
                return ApplyResult(change.created, change.drained)
        except (Invalid, Conflict) as error:
            raise ApplicationError(str(error.detail), type=type(error).__name__, non_retryable=True) from None

    @activity.defn
    async def wait_ready(self, request: WaitReady) -> ReadyResult:
        """Poll the registry until every wanted replica reports ready; heartbeats carry progress so a
        stuck wait is visible and a dead worker is noticed within the heartbeat timeout."""
        wanted = {(i.cluster, i.pool, i.variant, i.tensor_parallel): i.count for i in request.items}
        total = sum(wanted.values())
        deadline = self._monotonic() + request.timeout_s
        while True:
            ready = self._count_ready(request.deployment, wanted, request.version)
            activity.heartbeat(ready)
            if ready >= total:
                return ReadyResult(ready, total)
            if self._monotonic() >= deadline:
                raise ApplicationError(f"{ready} of {total} replicas ready after {request.timeout_s:.0f} s",
                                       type="NotReady", non_retryable=True)
            await asyncio.sleep(request.poll_interval_s)

    def _count_ready(self, deployment: str, wanted: dict[tuple[str, str, str, int], int], version: str) -> int:
        with transaction(self._sessions) as session:
            row = _deployment(session, deployment)
            version_id = row.version_id
            if version:
                found = find_version(row.model, version)
                if found is None:
                    raise ApplicationError(f"version {version!r} not found", type="NotFound", non_retryable=True)
                version_id = found.id
            have: dict[tuple[str, str, str, int], int] = {}
            for r in live_replicas_of(session, row.id):
                if r.status is ReplicaStatus.READY and r.desired_state is DesiredState.RUNNING \
                        and r.version_id == version_id:
                    key = (r.cluster.name, r.pool.name, r.variant, r.tensor_parallel)
                    have[key] = have.get(key, 0) + 1
            return sum(min(n, have.get(key, 0)) for key, n in wanted.items())

    @activity.defn
    async def publish_shares(self, request: PublishShares) -> RoutingResult:
        with transaction(self._sessions) as session:
            row = _deployment(session, request.deployment)
            shares = [routing.RouteShare(s.client_region, s.cluster, s.share) for s in request.shares]
            try:
                generation = routing.publish_routing(session, deployment=row, shares=shares, actor=request.actor)
            except (Invalid, Conflict) as error:
                raise ApplicationError(str(error.detail), type=type(error).__name__, non_retryable=True) from None
            return RoutingResult(generation)

    @activity.defn
    async def mark_observed(self, request: MarkObserved) -> Done:
        with transaction(self._sessions) as session:
            row = _deployment(session, request.deployment)
            # Only forward: a late, older run must not hide a newer spec's progress.
            if request.generation > row.observed_generation:
                row.observed_generation = min(request.generation, row.desired_generation)
            return Done()
