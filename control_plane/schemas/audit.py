"""Schema for audit events."""

from __future__ import annotations

from datetime import datetime
from typing import Any

from control_plane.schemas.common import Public


class AuditEventPublic(Public):
    id: int
    at: datetime
    team: str
    actor: str
    action: str
    object_type: str
    object_id: str
    details: dict[str, Any]
