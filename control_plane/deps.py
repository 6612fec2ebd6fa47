"""Request dependencies that read as capabilities: SessionDep, Reader, Deployer, Admin."""

from __future__ import annotations

from collections.abc import Callable, Iterator
from dataclasses import dataclass
from typing import Annotated

from fastapi import Depends, Request
from fastapi.security import HTTPAuthorizationCredentials, HTTPBearer
from sqlalchemy import Engine
from sqlalchemy.orm import Session, sessionmaker

from control_plane.problems import ProblemException
from control_plane.rate_limit import RateLimiter, retry_after_header
from control_plane.settings import Settings
from registry import api_keys
from registry.api_keys import Scope

SAFE_METHODS = frozenset({"GET", "HEAD", "OPTIONS"})


@dataclass(slots=True)
class AppState:
    settings: Settings
    engine: Engine
    sessions: sessionmaker[Session]
    limiter: RateLimiter


def app_state(request: Request) -> AppState:
    state: AppState = request.app.state.llmfleet
    return state


def _session(request: Request) -> Iterator[Session]:
    # Function scope: the commit runs before the response is sent, so a failed commit becomes the response.
    with app_state(request).sessions() as session:
        try:
            yield session
            session.commit()
        except BaseException:
            session.rollback()
            raise


SessionDep = Annotated[Session, Depends(_session, scope="function")]
StateDep = Annotated[AppState, Depends(app_state)]


@dataclass(frozen=True, slots=True)
class Principal:
    key_id: str
    team: str
    scopes: frozenset[Scope]

    @property
    def actor(self) -> str:
        return f"key:{self.key_id}"

    @property
    def is_admin(self) -> bool:
        return Scope.ADMIN in self.scopes


_bearer = HTTPBearer(auto_error=False, description="An llmfleet API key: `Authorization: Bearer lf_...`")


def _authenticate(
    session: SessionDep, credentials: Annotated[HTTPAuthorizationCredentials | None, Depends(_bearer)]
) -> Principal:
    unauthorized = {"WWW-Authenticate": "Bearer"}
    if credentials is None:
        raise ProblemException(401, "missing API key: send `Authorization: Bearer lf_...`", headers=unauthorized)
    row = api_keys.authenticate(session, credentials.credentials)
    if row is None:
        raise ProblemException(401, "unknown or revoked API key", headers=unauthorized)
    return Principal(key_id=row.key_id, team=row.team, scopes=api_keys.effective_scopes(row.scopes))


CurrentPrincipal = Annotated[Principal, Depends(_authenticate)]


def _require(scope: Scope) -> Callable[..., Principal]:
    def dependency(principal: CurrentPrincipal, request: Request, state: StateDep) -> Principal:
        if scope not in principal.scopes:
            raise ProblemException(403, f"this API key lacks the {scope.value!r} scope")
        if request.method not in SAFE_METHODS:
            wait = state.limiter.acquire(principal.key_id)
            if wait is not None:
                raise ProblemException(
                    429, f"rate limit of {state.limiter.per_minute} changes per minute reached for this key",
                    headers=retry_after_header(wait),
                )
        return principal

    return dependency


Reader = Annotated[Principal, Depends(_require(Scope.READ))]
Deployer = Annotated[Principal, Depends(_require(Scope.DEPLOY))]
Admin = Annotated[Principal, Depends(_require(Scope.ADMIN))]
