"""The routing-table API: `GET /v1/routing`, pulled by every regional gateway (with If-None-Match).

Readable by agent keys (any cluster: a region's gateway runs beside its agent and uses its key) and by
admins. It carries the SHA-256 hashes of live team keys so gateways authenticate clients locally; a key
revoked here disappears from the next snapshot, so it stops working within one gateway poll interval.
"""

from __future__ import annotations

import hashlib
from typing import Annotated

from fastapi import APIRouter, Depends, Header, Response
from fastapi.security import HTTPAuthorizationCredentials, HTTPBearer

from control_plane.deps import SessionDep
from control_plane.problems import ProblemException
from control_plane.schemas.routing import RoutingTablePublic
from registry import api_keys
from registry.api_keys import Scope
from registry.routing import routing_table

router = APIRouter(prefix="/v1/routing", tags=["routing"])

_bearer = HTTPBearer(auto_error=False, description="An agent key or an admin key: `Authorization: Bearer lf_...`")
IfNoneMatch = Annotated[str | None, Header(alias="If-None-Match", max_length=1024)]


def _routing_reader(
    session: SessionDep, credentials: Annotated[HTTPAuthorizationCredentials | None, Depends(_bearer)]
) -> str:
    unauthorized = {"WWW-Authenticate": "Bearer"}
    if credentials is None:
        raise ProblemException(401, "missing API key: send `Authorization: Bearer lf_...`", headers=unauthorized)
    row = api_keys.authenticate(session, credentials.credentials)
    if row is None:
        raise ProblemException(401, "unknown or revoked API key", headers=unauthorized)
    scopes = api_keys.effective_scopes(row.scopes)
    if Scope.AGENT not in scopes and Scope.ADMIN not in scopes:
        raise ProblemException(403, "the routing table is readable by agent and admin keys only")
    return row.key_id


RoutingReader = Annotated[str, Depends(_routing_reader)]


def _matches(if_none_match: str, etag: str) -> bool:
    tags = [t.strip().removeprefix("W/") for t in if_none_match.split(",")]
    return "*" in tags or etag in tags


@router.get(
    "",
    response_model=RoutingTablePublic,
    responses={304: {"description": "unchanged since the ETag sent in If-None-Match"}},
)
def get_routing(session: SessionDep, reader: RoutingReader, if_none_match: IfNoneMatch = None) -> Response:
    table = RoutingTablePublic.of(routing_table(session))
    body = table.model_dump_json()
    # The generation orders publishes; the content hash also catches what moves without a publish
    # (a replica becoming ready or draining, a key revoked).
    etag = f'"{table.generation}-{hashlib.sha256(body.encode()).hexdigest()[:24]}"'
    headers = {"ETag": etag, "Cache-Control": "no-cache"}
    if if_none_match is not None and _matches(if_none_match, etag):
        return Response(status_code=304, headers=headers)
    return Response(body, media_type="application/json", headers=headers)

