"""The audit trail is append-only and commits or rolls back with the change it records."""

from __future__ import annotations

import pytest
from sqlalchemy import Engine, func, select

from registry import audit, model_versions
from registry.audit import AuditEvent
from registry.db import session_factory, transaction


def _count(engine: Engine) -> int:
    with session_factory(engine)() as session:
        return session.scalar(select(func.count()).select_from(AuditEvent)) or 0


def test_event_rolls_back_with_the_change(engine: Engine) -> None:
    with pytest.raises(RuntimeError), transaction(session_factory(engine)) as session:
        model_versions.create_model(session, team="t", actor="test", name="m")
        raise RuntimeError("the request failed after the change")
    assert _count(engine) == 0
    with transaction(session_factory(engine)) as session:
        model_versions.create_model(session, team="t", actor="test", name="m")
    assert _count(engine) == 1


def test_events_cannot_be_changed_or_deleted(engine: Engine) -> None:
    with transaction(session_factory(engine)) as session:
        audit.record(session, team="t", actor="test", action="create", object_type="model", object_id="m")
    with pytest.raises(PermissionError), transaction(session_factory(engine)) as session:
        event = session.scalars(select(AuditEvent)).one()
        event.action = "forged"
        session.flush()
    with pytest.raises(PermissionError), transaction(session_factory(engine)) as session:
        session.delete(session.scalars(select(AuditEvent)).one())
        session.flush()
    with session_factory(engine)() as session:
        assert session.scalars(select(AuditEvent.action)).all() == ["create"]
