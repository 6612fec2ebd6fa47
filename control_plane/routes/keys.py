"""API keys, managed by admins. The secret appears once, in the create response."""

from __future__ import annotations

from fastapi import APIRouter, status

from control_plane.deps import Admin, SessionDep
from control_plane.params import KeyId
from control_plane.schemas.keys import KeyCreate, KeyIssued, KeyLimitsUpdate, KeyPublic
from registry import api_keys as registry

router = APIRouter(prefix="/v1/keys", tags=["keys"])


@router.post("", status_code=status.HTTP_201_CREATED)
def create_key(body: KeyCreate, session: SessionDep, principal: Admin) -> KeyIssued:
    limits = registry.KeyLimits(body.requests_per_minute, body.tokens_per_minute)
    issued = registry.issue_key(session, team=body.team, scopes=body.scopes, name=body.name, actor=principal.actor,
                                limits=limits)
    return KeyIssued(**KeyPublic.of(issued.row).model_dump(), key=issued.plaintext)


@router.get("")
def list_keys(session: SessionDep, principal: Admin) -> list[KeyPublic]:
    return [KeyPublic.of(k) for k in registry.list_keys(session)]


@router.put("/{key_id}/limits")
def set_key_limits(key_id: KeyId, body: KeyLimitsUpdate, session: SessionDep, principal: Admin) -> KeyPublic:
    """Replace the key's requests/min and tokens/min (omitted: the gateways' default). Gateways apply it
    with their next routing-table poll."""
    limits = registry.KeyLimits(body.requests_per_minute, body.tokens_per_minute)
    return KeyPublic.of(registry.set_limits(session, key_id=key_id, limits=limits, actor=principal.actor))


@router.delete("/{key_id}")
def revoke_key(key_id: KeyId, session: SessionDep, principal: Admin) -> KeyPublic:
    return KeyPublic.of(registry.revoke_key(session, key_id=key_id, actor=principal.actor, team=principal.team))
