"""Idempotency keys for creates: the first response is stored and replayed for a repeat of the same request."""

from __future__ import annotations

import hashlib
import json
from typing import Any

from sqlalchemy import Integer, String, UniqueConstraint, select
from sqlalchemy.orm import Mapped, Session, mapped_column

from registry.base import Base, CreatedAtMixin, utcnow
from registry.errors import Invalid


class IdempotencyRecord(CreatedAtMixin, Base):
    __tablename__ = "idempotency_records"
    __table_args__ = (UniqueConstraint("team", "key", "endpoint"),)

    id: Mapped[int] = mapped_column(primary_key=True)
    team: Mapped[str] = mapped_column(String(64))
    key: Mapped[str] = mapped_column(String(255))
    endpoint: Mapped[str] = mapped_column(String(255))
    request_hash: Mapped[str] = mapped_column(String(64))
    status_code: Mapped[int] = mapped_column(Integer)
    response: Mapped[dict[str, Any]] = mapped_column(default=dict)


def fingerprint(payload: Any) -> str:
    return hashlib.sha256(json.dumps(payload, sort_keys=True, default=str).encode()).hexdigest()


def find(session: Session, *, team: str, key: str, endpoint: str, request_hash: str) -> IdempotencyRecord | None:
    """The stored response for this key, or None. The same key with another request body is an error."""
    row = session.scalar(
        select(IdempotencyRecord).where(
            IdempotencyRecord.team == team, IdempotencyRecord.key == key, IdempotencyRecord.endpoint == endpoint
        )
    )
    if row is not None and row.request_hash != request_hash:
        raise Invalid("Idempotency-Key was already used with a different request body", field="Idempotency-Key")
    return row


def store(
    session: Session, *, team: str, key: str, endpoint: str, request_hash: str, status_code: int,
    response: dict[str, Any],
) -> None:
    session.add(
        IdempotencyRecord(
            team=team, key=key, endpoint=endpoint, request_hash=request_hash, status_code=status_code,
            response=response, created_at=utcnow(),
        )
    )
