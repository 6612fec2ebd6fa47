"""The audit trail: a team reads its own events; admins read everyone's."""

from __future__ import annotations

from typing import Annotated

from fastapi import APIRouter, Query

from control_plane.deps import Reader, SessionDep
from control_plane.params import ObjectId, ObjectType
from control_plane.schemas.audit import AuditEventPublic
from registry import audit as registry

router = APIRouter(prefix="/v1/audit", tags=["audit"])


@router.get("")
def list_audit(
    session: SessionDep,
    principal: Reader,
    object_type: ObjectType = None,
    object_id: ObjectId = None,
    limit: Annotated[int, Query(ge=1, le=1000)] = 100,
    before: Annotated[int | None, Query(ge=1, le=2**62, description="only events older than this id")] = None,
) -> list[AuditEventPublic]:
    rows = registry.list_events(
        session,
        team=None if principal.is_admin else principal.team,
        object_type=object_type,
        object_id=object_id,
        limit=limit,
        before_id=before,
    )
    return [AuditEventPublic.model_validate(r) for r in rows]
