"""`POST /v1/plans/preview`: dry-run the placement of a deployment request on the current fleet.

The request is validated exactly as `POST /v1/deployments` validates it (model, version or alias, variants,
environment, regions) by creating the deployment inside a savepoint that is always rolled back, so the
preview writes nothing, and a request the create would refuse is refused here with the same problem.
"""

from __future__ import annotations

from typing import Annotated

from fastapi import APIRouter, Query

from control_plane.deps import Deployer, Reader, SessionDep
from control_plane.schemas.deployments import DeploymentCreate
from control_plane.params import DeploymentName
from control_plane.schemas.plans import PlanPreview, PreviewReplicas, PreviewShare, RecordedPlan
from registry import deployments as registry
from registry.base import utcnow
from registry.errors import NotFound
from registry.plans import PLAN_KEY_PREFIX, latest_plan
from scheduler.perf_model import PerfModel
from scheduler.placement import SolveOptions, build_candidates, solve
from workflows import planning

router = APIRouter(tags=["plans"])

# One solve per request on the API's threads: a cap keeps a preview from holding a worker thread long.
MAX_TIME_LIMIT_S = 30.0


@router.post("/v1/plans/preview")
def preview_plan(
    body: DeploymentCreate, session: SessionDep, principal: Deployer,
    time_limit_s: Annotated[float, Query(gt=0, le=MAX_TIME_LIMIT_S)] = 5.0,
) -> PlanPreview:
    savepoint = session.begin_nested()
    try:
        row = registry.create_deployment(session, team=principal.team, actor=principal.actor, name=body.name,
                                         spec=body.to_spec())
        snapshot = planning.build_snapshot(session, row, now=utcnow())  # with spot-availability hints
    finally:
        savepoint.rollback()
    plan = solve(snapshot, build_candidates(snapshot, PerfModel()), SolveOptions(time_limit_s=time_limit_s))
    reasons = {(d.pool, d.variant, d.tp): d.reason for d in plan.replicas if d.deployment == body.name}
    replicas = [
        PreviewReplicas(cluster=c, pool=p, variant=v, tensor_parallel=tp, count=n,
                        reason=reasons.get((planning.pool_id(c, p), v, tp), ""))
        for c, p, v, tp, n in planning.plan_to_items(plan, body.name)
    ]
    routing = [PreviewShare(client_region=r, cluster=c, share=s)
               for r, c, s in planning.plan_to_shares(plan, body.name)]
    return PlanPreview(
        deployment=body.name, status=plan.status, cost_per_hour=plan.cost_per_hour if plan.ok else None,
        lower_bound_per_hour=plan.lower_bound_per_hour, gap=plan.gap, solve_seconds=plan.solve_seconds,
        replicas=replicas, routing=routing, reasons=list(plan.reasons), binding=list(plan.binding),
    )


@router.get("/v1/deployments/{name}/plan")
def get_plan(name: DeploymentName, session: SessionDep, principal: Reader) -> RecordedPlan:
    row = registry.get_deployment(session, principal.team, name)
    plan = latest_plan(session, row.id)
    if plan is None:
        raise NotFound(f"deployment {name!r} has no plan yet (it is planned by its deploy workflow)")
    # The first reason of a recorded plan may be the workflow's idempotency tag: not a reason for people.
    reasons = [r for r in plan.reasons if not str(r).startswith(PLAN_KEY_PREFIX)]
    return RecordedPlan(deployment=name, status=plan.status, cost_per_hour=plan.cost_per_hour,
                        lower_bound_per_hour=plan.lower_bound_per_hour, solve_seconds=plan.solve_seconds,
                        created_at=plan.created_at, replicas=plan.replicas, routing=plan.routing, reasons=reasons)
