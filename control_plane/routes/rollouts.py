"""Rollouts of a deployment (start, list, approve, abort), autoscaling pause/resume, and the deployment's
running workflows with links into the Temporal UI. Everything that moves the fleet runs as a workflow, so
these routes need a Temporal address; without one they answer 409 (the request conflicts with how this
control plane is configured; a 5xx would claim a server fault)."""

from __future__ import annotations

from fastapi import APIRouter, Request, status

from control_plane.deps import Deployer, Reader, SessionDep
from control_plane.params import DeploymentName
from control_plane.problems import ProblemException
from control_plane.schemas.rollouts import DeploymentWorkflows, RolloutCreate, RolloutPublic, WorkflowRef, WorkflowStatus
from registry import deployments as registry
from registry.errors import NotFound
from registry.model_versions import ModelVersion, find_version
from registry.rollouts import latest_rollouts

router = APIRouter(prefix="/v1/deployments", tags=["rollouts"])


def _temporal(request: Request):  # type: ignore[no-untyped-def]
    link = request.app.state.temporal
    if link is None:
        raise ProblemException(409, "no Temporal configured (LLMFLEET_TEMPORAL_ADDRESS): workflows are off",
                               kind="temporal-unavailable")
    return link


async def _signal(link, workflow_id: str, signal: str) -> None:  # type: ignore[no-untyped-def]
    from temporalio.service import RPCError

    client = await link.client()
    try:
        await client.get_workflow_handle(workflow_id).signal(signal)
    except RPCError as error:
        raise NotFound(f"no running workflow {workflow_id!r} ({error.message})") from None


@router.post("/{name}/rollouts", status_code=status.HTTP_202_ACCEPTED)
async def start_rollout(name: DeploymentName, body: RolloutCreate, session: SessionDep, principal: Deployer,
                        request: Request) -> WorkflowRef:
    """Start moving the deployment to `version` in SLO-gated steps (repeating the request returns the same run)."""
    from workflows.client import Labels
    from workflows.client import start_rollout as start
    from workflows.types import RolloutInput

    link = _temporal(request)
    row = registry.get_deployment(session, principal.team, name)
    if find_version(row.model, body.version) is None:
        raise NotFound(f"model {row.model.name!r} has no version {body.version!r}")
    inp = RolloutInput(deployment=name, to_version=body.version, steps=list(body.steps), mode=body.mode,
                       bake_s=body.bake_seconds, min_requests=body.min_requests, actor=principal.actor)
    handle = await start(await link.client(), link.task_queue, inp,
                         Labels(team=row.team, deployment=name, version=body.version))
    return WorkflowRef(workflow_id=handle.id, run_id=handle.result_run_id,
                       url=link.ui_link(handle.id, handle.result_run_id))


@router.get("/{name}/rollouts")
def list_rollouts(name: DeploymentName, session: SessionDep, principal: Reader) -> list[RolloutPublic]:
    row = registry.get_deployment(session, principal.team, name)
    versions = {v.id: v.version for v in session.query(ModelVersion).filter(ModelVersion.model_id == row.model_id)}
    return [RolloutPublic.of(r, versions) for r in latest_rollouts(session, row.id)]


@router.post("/{name}/rollouts/{version}/approve", status_code=status.HTTP_202_ACCEPTED)
async def approve_rollout(name: DeploymentName, version: str, session: SessionDep, principal: Deployer,
                          request: Request) -> WorkflowRef:
    """Let a paused (inconclusive) rollout go on to its next step."""
    from workflows.rollout import rollout_workflow_id

    link = _temporal(request)
    registry.get_deployment(session, principal.team, name)  # ownership
    wid = rollout_workflow_id(name, version)
    await _signal(link, wid, "approve")
    return WorkflowRef(workflow_id=wid, url=link.ui_link(wid, None))


@router.post("/{name}/rollouts/{version}/abort", status_code=status.HTTP_202_ACCEPTED)
async def abort_rollout(name: DeploymentName, version: str, session: SessionDep, principal: Deployer,
                        request: Request) -> WorkflowRef:
    """Stop a rollout: all traffic back to the old version, the new version's replicas drained."""
    from workflows.rollout import rollout_workflow_id

    link = _temporal(request)
    registry.get_deployment(session, principal.team, name)
    wid = rollout_workflow_id(name, version)
    await _signal(link, wid, "abort")
    return WorkflowRef(workflow_id=wid, url=link.ui_link(wid, None))


@router.get("/{name}/workflows")
async def deployment_workflows(name: DeploymentName, session: SessionDep, principal: Reader,
                               request: Request) -> DeploymentWorkflows:
    """The deployment's running workflows (deploy, rollouts, autoscale) with links into the Temporal UI."""
    registry.get_deployment(session, principal.team, name)
    link = request.app.state.temporal
    if link is None:
        return DeploymentWorkflows(deployment=name, temporal=False, workflows=[])
    running = await link.running_for(name)
    return DeploymentWorkflows(deployment=name, temporal=True,
                               workflows=[WorkflowStatus(**w) for w in running])


async def _autoscale_signal(name: str, signal: str, session: SessionDep, principal: Deployer,
                            request: Request) -> WorkflowRef:
    from workflows.client import Labels, signal_autoscale
    from workflows.types import AutoscaleInput

    link = _temporal(request)
    row = registry.get_deployment(session, principal.team, name)
    handle = await signal_autoscale(await link.client(), link.task_queue, AutoscaleInput(deployment=name),
                                    Labels(team=row.team, deployment=name, version=row.model_version.version), signal)
    return WorkflowRef(workflow_id=handle.id, run_id=handle.result_run_id,
                       url=link.ui_link(handle.id, handle.result_run_id))


@router.post("/{name}/autoscaling/pause", status_code=status.HTTP_202_ACCEPTED)
async def pause_autoscaling(name: DeploymentName, session: SessionDep, principal: Deployer,
                            request: Request) -> WorkflowRef:
    """Stop changing the replica count (the workflow keeps running, paused)."""
    return await _autoscale_signal(name, "pause", session, principal, request)


@router.post("/{name}/autoscaling/resume", status_code=status.HTTP_202_ACCEPTED)
async def resume_autoscaling(name: DeploymentName, session: SessionDep, principal: Deployer,
                             request: Request) -> WorkflowRef:
    """Resume autoscaling, starting `autoscale-{name}` if it is not running."""
    return await _autoscale_signal(name, "resume", session, principal, request)
