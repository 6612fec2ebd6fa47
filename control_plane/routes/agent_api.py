"""The agent API: each cluster's agent pulls its desired replicas and posts heartbeats.

Authenticated with an `agent` key bound to that cluster: a key for another cluster, or any team key
(admin included), gets 403. Both calls are idempotent, so an agent may repeat them freely.
"""

from __future__ import annotations

import hashlib
import json
from dataclasses import dataclass
from typing import Annotated

from fastapi import APIRouter, Depends, Header, Response
from fastapi.security import HTTPAuthorizationCredentials, HTTPBearer

from control_plane.deps import SessionDep
from control_plane.params import ClusterName
from control_plane.problems import ProblemException
from control_plane.schemas.agent import DesiredStatePublic, HeartbeatIn, HeartbeatResult
from registry import api_keys
from registry.api_keys import Scope
from registry.replicas import desired_for_cluster, record_heartbeat

router = APIRouter(prefix="/v1/agent/clusters/{cluster}", tags=["agent"])

_bearer = HTTPBearer(auto_error=False, description="The cluster's agent key: `Authorization: Bearer lf_...`")


@dataclass(frozen=True, slots=True)
class AgentPrincipal:
    key_id: str
    cluster: str

    @property
    def actor(self) -> str:
        return f"agent:{self.cluster}"


def _agent_for_cluster(
    cluster: ClusterName,
    session: SessionDep,
    credentials: Annotated[HTTPAuthorizationCredentials | None, Depends(_bearer)],
) -> AgentPrincipal:
    unauthorized = {"WWW-Authenticate": "Bearer"}
    if credentials is None:
        raise ProblemException(401, "missing API key: send `Authorization: Bearer lf_...`", headers=unauthorized)
    row = api_keys.authenticate(session, credentials.credentials)
    if row is None:
        raise ProblemException(401, "unknown or revoked API key", headers=unauthorized)
    if Scope.AGENT not in api_keys.effective_scopes(row.scopes):
        raise ProblemException(403, "the agent API needs an agent key (scope 'agent')")
    if row.cluster != cluster:
        raise ProblemException(403, f"this agent key does not speak for cluster {cluster!r}")
    return AgentPrincipal(key_id=row.key_id, cluster=cluster)


ClusterAgent = Annotated[AgentPrincipal, Depends(_agent_for_cluster)]
IfNoneMatch = Annotated[str | None, Header(alias="If-None-Match", max_length=1024)]


def _etag(body: DesiredStatePublic) -> str:
    # The generation orders snapshots; the content hash makes the tag change whenever what is sent changes,
    # even if a writer forgot to bump the generation.
    digest = hashlib.sha256(json.dumps(body.model_dump(mode="json"), sort_keys=True).encode()).hexdigest()
    return f'"{body.generation}-{digest[:16]}"'


def _matches(if_none_match: str, etag: str) -> bool:
    tags = [t.strip().removeprefix("W/") for t in if_none_match.split(",")]
    return "*" in tags or etag in tags


@router.get(
    "/desired",
    response_model=DesiredStatePublic,
    responses={304: {"description": "unchanged since the ETag sent in If-None-Match"}},
)
def get_desired(
    cluster: ClusterName, session: SessionDep, agent: ClusterAgent, if_none_match: IfNoneMatch = None
) -> Response:
    body = DesiredStatePublic.of(desired_for_cluster(session, cluster))
    etag = _etag(body)
    headers = {"ETag": etag, "Cache-Control": "no-cache"}
    if if_none_match is not None and _matches(if_none_match, etag):
        return Response(status_code=304, headers=headers)
    return Response(body.model_dump_json(), media_type="application/json", headers=headers)


@router.post("/heartbeat")
def post_heartbeat(cluster: ClusterName, body: HeartbeatIn, session: SessionDep, agent: ClusterAgent) -> HeartbeatResult:
    outcome = record_heartbeat(session, cluster_name=cluster, heartbeat=body.to_heartbeat())
    return HeartbeatResult.of(cluster, outcome)
