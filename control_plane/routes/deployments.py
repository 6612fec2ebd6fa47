"""Deployments: create (idempotent with Idempotency-Key), list, get, update (If-Match), delete (drains first),
and the placement of their replicas (set by hand or by the deploy workflow)."""

from __future__ import annotations

from typing import Annotated

import logging

from fastapi import APIRouter, BackgroundTasks, Header, Request, Response, status
from fastapi.responses import JSONResponse

from control_plane.deps import Deployer, Reader, SessionDep
from control_plane.params import DeploymentName
from control_plane.schemas.deployments import (
    DeploymentCreate,
    DeploymentPublic,
    DeploymentUpdate,
    PlacementPublic,
    PlacementUpdate,
)
from registry import deployments as registry
from registry import idempotency
from registry.clusters import get_cluster
from registry.errors import Invalid, NotFound
from registry.replicas import (
    current_placement,
    drain_deployment,
    live_replicas_of,
    replicas_of,
    set_placement,
)
from scheduler.model_spec import ModelArch
from scheduler.model_spec import Variant as VariantSpec
from scheduler.perf_model import PerfModel

router = APIRouter(prefix="/v1/deployments", tags=["deployments"])
log = logging.getLogger(__name__)

IdempotencyKey = Annotated[
    str | None,
    Header(alias="Idempotency-Key", pattern=r"^[A-Za-z0-9._:-]{1,255}$", description="repeat-safe create"),
]
IfMatch = Annotated[
    str | None, Header(alias="If-Match", pattern=r'^(W/)?"?[0-9]{1,18}"?$', description="resource_version read")
]


def _public(session: SessionDep, row: registry.Deployment) -> DeploymentPublic:
    return DeploymentPublic.of(row, replicas_of(session, row.id))


def _etag(row: registry.Deployment) -> dict[str, str]:
    return {"ETag": f'"{row.row_version}"'}


def _deploy_later(request: Request, background: BackgroundTasks, row: registry.Deployment, *, changed: bool) -> None:
    """With Temporal configured, (re)start `deploy-{name}` once the response is out: by then the session has
    committed, so the workflow's first activity reads the new spec. Without Temporal nothing happens here
    and the placement is set by hand (PUT .../placement), as before."""
    link = request.app.state.temporal
    if link is None:
        return
    labels = {"team": row.team, "deployment": row.name, "version": row.model_version.version}

    async def start() -> None:
        from workflows.client import Labels, request_redeploy, start_deploy
        from workflows.types import DeployInput

        try:
            starter = request_redeploy if changed else start_deploy
            await starter(await link.client(), link.task_queue, DeployInput(row.name), Labels(**labels))
        except Exception:  # noqa: BLE001 - the change is recorded; the operator can redeploy
            log.exception("could not start the deploy workflow of %s", labels["deployment"])

    background.add_task(start)


@router.post("", status_code=status.HTTP_201_CREATED, response_model=DeploymentPublic)
def create_deployment(
    body: DeploymentCreate, session: SessionDep, principal: Deployer, request: Request, background: BackgroundTasks,
    idempotency_key: IdempotencyKey = None,
) -> JSONResponse:
    request_hash = idempotency.fingerprint(body.model_dump(mode="json"))
    if idempotency_key is not None:
        previous = idempotency.find(
            session, team=principal.team, key=idempotency_key, endpoint="POST /v1/deployments",
            request_hash=request_hash,
        )
        if previous is not None:
            return JSONResponse(previous.response, status_code=previous.status_code,
                                headers={"Idempotent-Replayed": "true"})
    row = registry.create_deployment(
        session, team=principal.team, actor=principal.actor, name=body.name, spec=body.to_spec()
    )
    payload = _public(session, row).model_dump(mode="json")
    if idempotency_key is not None:
        idempotency.store(
            session, team=principal.team, key=idempotency_key, endpoint="POST /v1/deployments",
            request_hash=request_hash, status_code=201, response=payload,
        )
    _deploy_later(request, background, row, changed=False)
    return JSONResponse(payload, status_code=201, headers=_etag(row), background=background)


@router.get("")
def list_deployments(session: SessionDep, principal: Reader) -> list[DeploymentPublic]:
    return [_public(session, row) for row in registry.list_deployments(session, principal.team)]


@router.get("/{name}")
def get_deployment(name: DeploymentName, session: SessionDep, principal: Reader, response: Response) -> DeploymentPublic:
    row = registry.get_deployment(session, principal.team, name)
    response.headers.update(_etag(row))
    return _public(session, row)


@router.patch("/{name}")
def update_deployment(
    name: DeploymentName,
    body: DeploymentUpdate,
    session: SessionDep,
    principal: Deployer,
    response: Response,
    request: Request,
    background: BackgroundTasks,
    if_match: IfMatch = None,
) -> DeploymentPublic:
    expected = int(if_match.removeprefix("W/").strip('"')) if if_match is not None else None
    row = registry.update_deployment(
        session, team=principal.team, actor=principal.actor, name=name, changes=body.changes(),
        expected_version=expected,
    )
    response.headers.update(_etag(row))
    _deploy_later(request, background, row, changed=True)
    return _public(session, row)


@router.delete(
    "/{name}",
    status_code=status.HTTP_202_ACCEPTED,
    response_model=DeploymentPublic,
    responses={204: {"description": "deleted at once: nothing was left to drain"}},
)
def delete_deployment(name: DeploymentName, session: SessionDep, principal: Deployer) -> Response:
    row = registry.get_deployment(session, principal.team, name)
    live = live_replicas_of(session, row.id)
    gone = registry.request_delete(
        session, team=principal.team, actor=principal.actor, name=name, has_live_replicas=bool(live)
    )
    if gone:
        return Response(status_code=status.HTTP_204_NO_CONTENT)
    drain_deployment(session, row, actor=principal.actor)
    return JSONResponse(_public(session, row).model_dump(mode="json"), status_code=202)


def _check_fit(row: registry.Deployment, body: PlacementUpdate, session: SessionDep) -> None:
    """Refuse a placement the performance model says cannot load (weights plus a minimal KV cache).
    Accelerators the model does not know are let through: it cannot judge them."""
    perf = PerfModel()
    version = row.model_version
    arch = ModelArch(name=version.model.name, params_b=version.params_b, layers=version.layers,
                     hidden=version.hidden, kv_heads=version.kv_heads, head_dim=version.head_dim,
                     context=version.context)
    variants = {v.name: v for v in version.variants}
    for i, entry in enumerate(body.replicas):
        variant = variants.get(entry.variant)
        if variant is None or entry.count == 0:
            continue  # the registry reports unknown variants with the allowed list
        try:
            pool = next((p for p in get_cluster(session, entry.cluster).pools if p.name == entry.pool), None)
        except NotFound:
            continue
        if pool is None or pool.accelerator not in perf.gpus:
            continue
        spec = VariantSpec(name=variant.name, bytes_per_param=variant.bytes_per_param,
                           quality_delta=variant.quality_delta, kv_bytes_per_elem=variant.kv_bytes_per_elem)
        problem = perf.fit_problem(arch, spec, pool.accelerator, entry.tensor_parallel)
        if problem is not None:
            raise Invalid(f"{arch.name} {variant.name} on {entry.tensor_parallel}x{pool.accelerator}: {problem}",
                          field=f"replicas[{i}]")


@router.get("/{name}/placement")
def get_placement(name: DeploymentName, session: SessionDep, principal: Reader) -> PlacementPublic:
    row = registry.get_deployment(session, principal.team, name)
    return PlacementPublic.of(row.name, current_placement(session, row))


@router.put("/{name}/placement")
def put_placement(
    name: DeploymentName, body: PlacementUpdate, session: SessionDep, principal: Deployer
) -> PlacementPublic:
    """Set where the deployment's replicas run. Level-triggered: sending the same placement again changes
    nothing; replicas the new placement does not cover drain."""
    row = registry.get_deployment(session, principal.team, name)
    _check_fit(row, body, session)
    change = set_placement(
        session, deployment=row, items=[e.to_item() for e in body.replicas], actor=principal.actor
    )
    return PlacementPublic.of(row.name, current_placement(session, row), change)


