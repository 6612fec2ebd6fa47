"""Models, versions, variants, aliases, promotions and eval results (a team sees only its own)."""

from __future__ import annotations

from fastapi import APIRouter, Response, status

from control_plane.deps import Deployer, Reader, SessionDep
from control_plane.params import AliasName, ModelName, VersionName
from control_plane.schemas.models import (
    AliasSet,
    EvalResultCreate,
    EvalResultPublic,
    ModelCreate,
    ModelPublic,
    PromotionCreate,
    VariantCreate,
    VariantPublic,
    VersionCreate,
    VersionPublic,
)
from registry import model_versions as registry

router = APIRouter(prefix="/v1/models", tags=["models"])


@router.post("", status_code=status.HTTP_201_CREATED)
def create_model(body: ModelCreate, session: SessionDep, principal: Deployer) -> ModelPublic:
    row = registry.create_model(
        session, team=principal.team, actor=principal.actor, name=body.name, description=body.description
    )
    return ModelPublic.of(row)


@router.get("")
def list_models(session: SessionDep, principal: Reader) -> list[ModelPublic]:
    return [ModelPublic.of(m) for m in registry.list_models(session, principal.team)]


@router.get("/{model}")
def get_model(model: ModelName, session: SessionDep, principal: Reader) -> ModelPublic:
    return ModelPublic.of(registry.get_model(session, principal.team, model))


@router.post("/{model}/versions", status_code=status.HTTP_201_CREATED)
def register_version(model: ModelName, body: VersionCreate, session: SessionDep, principal: Deployer) -> VersionPublic:
    row = registry.register_version(
        session,
        team=principal.team,
        actor=principal.actor,
        model_name=model,
        version=body.version,
        architecture=body.architecture.model_dump(),
        artifact_uri=body.artifact_uri,
        digest=body.digest,
        parent_version=body.parent_version,
        variants=[v.model_dump() for v in body.variants],
    )
    return VersionPublic.of(row)


@router.get("/{model}/versions")
def list_versions(model: ModelName, session: SessionDep, principal: Reader) -> list[VersionPublic]:
    return [VersionPublic.of(v) for v in registry.get_model(session, principal.team, model).versions]


@router.get("/{model}/versions/{version}")
def get_version(model: ModelName, version: VersionName, session: SessionDep, principal: Reader) -> VersionPublic:
    return VersionPublic.of(registry.get_version(session, principal.team, model, version))


@router.post("/{model}/versions/{version}/variants", status_code=status.HTTP_201_CREATED)
def add_variant(
    model: ModelName, version: VersionName, body: VariantCreate, session: SessionDep, principal: Deployer
) -> VariantPublic:
    row = registry.add_variant(
        session, team=principal.team, actor=principal.actor, model_name=model, version=version,
        spec=body.model_dump(),
    )
    return VariantPublic.model_validate(row)


@router.put("/{model}/aliases/{alias}")
def set_alias(model: ModelName, alias: AliasName, body: AliasSet, session: SessionDep, principal: Deployer) -> ModelPublic:
    registry.set_alias(
        session, team=principal.team, actor=principal.actor, model_name=model, alias=alias, version=body.version
    )
    return ModelPublic.of(registry.get_model(session, principal.team, model))


@router.delete("/{model}/aliases/{alias}", status_code=status.HTTP_204_NO_CONTENT)
def delete_alias(model: ModelName, alias: AliasName, session: SessionDep, principal: Deployer) -> Response:
    registry.delete_alias(session, team=principal.team, actor=principal.actor, model_name=model, alias=alias)
    return Response(status_code=status.HTTP_204_NO_CONTENT)


@router.post("/{model}/versions/{version}/promotions")
def promote(
    model: ModelName, version: VersionName, body: PromotionCreate, session: SessionDep, principal: Deployer
) -> VersionPublic:
    row = registry.promote(
        session, team=principal.team, actor=principal.actor, model_name=model, version=version,
        environment=body.environment,
    )
    return VersionPublic.of(row)


@router.post("/{model}/versions/{version}/evals", status_code=status.HTTP_201_CREATED)
def add_eval(
    model: ModelName, version: VersionName, body: EvalResultCreate, session: SessionDep, principal: Deployer
) -> EvalResultPublic:
    row = registry.add_eval_result(
        session, team=principal.team, actor=principal.actor, model_name=model, version=version,
        **body.model_dump(),
    )
    return EvalResultPublic.model_validate(row)
