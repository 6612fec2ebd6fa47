"""API keys: `lf_<id>_<secret>`, stored only as a SHA-256 hash, each bound to a team and scopes.

An agent key carries only the `agent` scope and names the one cluster whose agent API it may use; it opens
no team endpoint, and no team key (not even admin) opens the agent API.
"""

from __future__ import annotations

import enum
import hashlib
import secrets
from dataclasses import dataclass
from datetime import datetime
from typing import Any

from sqlalchemy import String, select
from sqlalchemy.orm import Mapped, Session, mapped_column

from registry import audit
from registry.base import Base, CreatedAtMixin, utcnow
from registry.clusters import Cluster
from registry.errors import Invalid, NotFound

KEY_PREFIX = "lf_"


class Scope(enum.StrEnum):
    READ = "read"
    DEPLOY = "deploy"
    ADMIN = "admin"
    AGENT = "agent"  # a cluster's agent: pull desired replicas, post heartbeats (needs `cluster`)


# A broader scope includes the narrower ones: admin ⊇ deploy ⊇ read. `agent` stands apart on purpose:
# a leaked agent key must not read team data, and a team key must not impersonate a cluster.
_IMPLIES: dict[Scope, frozenset[Scope]] = {
    Scope.READ: frozenset({Scope.READ}),
    Scope.DEPLOY: frozenset({Scope.READ, Scope.DEPLOY}),
    Scope.ADMIN: frozenset({Scope.READ, Scope.DEPLOY, Scope.ADMIN}),
    Scope.AGENT: frozenset({Scope.AGENT}),
}


def effective_scopes(granted: list[str] | list[Scope]) -> frozenset[Scope]:
    result: frozenset[Scope] = frozenset()
    for scope in granted:
        result |= _IMPLIES[Scope(scope)]
    return result


class ApiKey(CreatedAtMixin, Base):
    __tablename__ = "api_keys"

    id: Mapped[int] = mapped_column(primary_key=True)
    key_id: Mapped[str] = mapped_column(String(16), unique=True)  # the public part, safe to log
    key_hash: Mapped[str] = mapped_column(String(64), unique=True)
    team: Mapped[str] = mapped_column(String(64), index=True)
    scopes: Mapped[list[Any]] = mapped_column(default=list)
    name: Mapped[str] = mapped_column(String(128), default="")
    # The cluster an `agent` key speaks for (by name, as it appears in the agent API's URLs); None otherwise.
    cluster: Mapped[str | None] = mapped_column(String(64), default=None)
    revoked_at: Mapped[datetime | None] = mapped_column(default=None)
    # Model traffic limits the gateways enforce for this key (None: the gateway's default).
    requests_per_minute: Mapped[int | None] = mapped_column(default=None)
    tokens_per_minute: Mapped[int | None] = mapped_column(default=None)


@dataclass(frozen=True, slots=True)
class KeyLimits:
    requests_per_minute: int | None = None
    tokens_per_minute: int | None = None

    def __post_init__(self) -> None:
        for name in ("requests_per_minute", "tokens_per_minute"):
            value = getattr(self, name)
            if value is not None and value < 1:
                raise Invalid(f"{name} must be at least 1 (omit it for the gateway's default)", field=name)


def hash_key(plaintext: str) -> str:
    return hashlib.sha256(plaintext.encode()).hexdigest()


@dataclass(frozen=True, slots=True)
class IssuedKey:
    plaintext: str  # shown once, never stored
    row: ApiKey


def _check_cluster_binding(session: Session, scopes: list[Scope], cluster: str | None) -> None:
    if Scope.AGENT in scopes:
        if set(scopes) != {Scope.AGENT}:
            raise Invalid("an agent key carries only the agent scope", field="scopes")
        if cluster is None:
            raise Invalid("an agent key needs the cluster it speaks for", field="cluster")
        if session.scalar(select(Cluster.id).where(Cluster.name == cluster)) is None:
            raise Invalid(f"cluster {cluster!r} not found", field="cluster")
    elif cluster is not None:
        raise Invalid("only an agent key is bound to a cluster", field="cluster")


def issue_key(
    session: Session, *, team: str, scopes: list[Scope], name: str, actor: str, cluster: str | None = None,
    limits: KeyLimits | None = None,
) -> IssuedKey:
    _check_cluster_binding(session, scopes, cluster)
    limits = limits or KeyLimits()
    key_id = secrets.token_hex(4)
    plaintext = f"{KEY_PREFIX}{key_id}_{secrets.token_urlsafe(32)}"
    row = ApiKey(
        key_id=key_id,
        key_hash=hash_key(plaintext),
        team=team,
        scopes=sorted(s.value for s in scopes),
        name=name,
        cluster=cluster,
        requests_per_minute=limits.requests_per_minute,
        tokens_per_minute=limits.tokens_per_minute,
        created_at=utcnow(),
    )
    session.add(row)
    session.flush()
    details: dict[str, Any] = {"scopes": row.scopes, "name": name}
    if cluster is not None:
        details["cluster"] = cluster
    if limits != KeyLimits():
        details["limits"] = {"requests_per_minute": limits.requests_per_minute,
                             "tokens_per_minute": limits.tokens_per_minute}
    audit.record(
        session, team=team, actor=actor, action="create", object_type="api_key", object_id=key_id,
        details=details,
    )
    return IssuedKey(plaintext=plaintext, row=row)


def authenticate(session: Session, plaintext: str) -> ApiKey | None:
    """The live key matching the plaintext, or None. Lookup is by hash, so no timing leak on the secret."""
    if not plaintext.startswith(KEY_PREFIX):
        return None
    row = session.scalar(select(ApiKey).where(ApiKey.key_hash == hash_key(plaintext)))
    if row is None or row.revoked_at is not None:
        return None
    return row


def list_keys(session: Session, team: str | None = None) -> list[ApiKey]:
    query = select(ApiKey).order_by(ApiKey.id)
    if team is not None:
        query = query.where(ApiKey.team == team)
    return list(session.scalars(query))


def set_limits(session: Session, *, key_id: str, limits: KeyLimits, actor: str) -> ApiKey:
    """Replace a key's traffic limits (gateways pick them up with the next routing-table poll)."""
    row = session.scalar(select(ApiKey).where(ApiKey.key_id == key_id))
    if row is None:
        raise NotFound(f"key {key_id!r} not found")
    if row.revoked_at is not None:
        raise Invalid(f"key {key_id!r} is revoked", field="key_id")
    row.requests_per_minute, row.tokens_per_minute = limits.requests_per_minute, limits.tokens_per_minute
    audit.record(session, team=row.team, actor=actor, action="set_limits", object_type="api_key", object_id=key_id,
                 details={"requests_per_minute": limits.requests_per_minute,
                          "tokens_per_minute": limits.tokens_per_minute})
    return row


def revoke_key(session: Session, *, key_id: str, actor: str, team: str) -> ApiKey:
    row = session.scalar(select(ApiKey).where(ApiKey.key_id == key_id))
    if row is None:
        raise NotFound(f"key {key_id!r} not found")
    if row.revoked_at is None:
        row.revoked_at = utcnow()
        audit.record(session, team=row.team, actor=actor, action="revoke", object_type="api_key", object_id=key_id)
    return row
