"""Append-only audit trail. Every change writes its event in the same transaction as the change itself."""

from __future__ import annotations

from datetime import datetime
from typing import Any

from sqlalchemy import ForeignKey, String, event, select
from sqlalchemy.orm import Mapped, Session, mapped_column

from registry.base import Base, utcnow


class AuditEvent(Base):
    __tablename__ = "audit_events"

    id: Mapped[int] = mapped_column(primary_key=True)
    at: Mapped[datetime] = mapped_column(default=utcnow, index=True)
    team: Mapped[str] = mapped_column(String(64), index=True)
    actor: Mapped[str] = mapped_column(String(128))  # who: "key:<key id>" or "system:<component>"
    action: Mapped[str] = mapped_column(String(64))  # e.g. "create", "update", "delete", "set_alias"
    object_type: Mapped[str] = mapped_column(String(64), index=True)
    object_id: Mapped[str] = mapped_column(String(256), index=True)
    details: Mapped[dict[str, Any]] = mapped_column(default=dict)
    parent_id: Mapped[int | None] = mapped_column(ForeignKey("audit_events.id"), default=None)


def record(
    session: Session,
    *,
    team: str,
    actor: str,
    action: str,
    object_type: str,
    object_id: str,
    details: dict[str, Any] | None = None,
) -> AuditEvent:
    """Add an event to the session; it commits (or rolls back) together with the change it describes."""
    row = AuditEvent(
        team=team,
        actor=actor,
        action=action,
        object_type=object_type,
        object_id=object_id,
        details=details or {},
        at=utcnow(),
    )
    session.add(row)
    return row


def list_events(
    session: Session,
    *,
    team: str | None,
    object_type: str | None = None,
    object_id: str | None = None,
    limit: int = 100,
    before_id: int | None = None,
) -> list[AuditEvent]:
    """Newest first. `team=None` means every team (platform admins)."""
    query = select(AuditEvent).order_by(AuditEvent.id.desc()).limit(limit)
    if team is not None:
        query = query.where(AuditEvent.team == team)
    if object_type is not None:
        query = query.where(AuditEvent.object_type == object_type)
    if object_id is not None:
        query = query.where(AuditEvent.object_id == object_id)
    if before_id is not None:
        query = query.where(AuditEvent.id < before_id)
    return list(session.scalars(query))


@event.listens_for(Session, "before_flush")
def _refuse_audit_rewrites(session: Session, flush_context: object, instances: object) -> None:
    # The trail is evidence: the ORM may insert events, never change or remove them.
    for obj in list(session.dirty) + list(session.deleted):
        if isinstance(obj, AuditEvent):
            raise PermissionError("audit events are append-only")
