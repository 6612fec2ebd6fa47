"""The plan preview: what the optimizer would do with a deployment request on the current fleet."""

from __future__ import annotations

from datetime import datetime
from typing import Any

from control_plane.schemas.common import Public


class PreviewReplicas(Public):
    cluster: str
    pool: str
    variant: str
    tensor_parallel: int
    count: int
    reason: str


class PreviewShare(Public):
    client_region: str
    cluster: str
    share: float


class PlanPreview(Public):
    deployment: str
    status: str  # optimal, feasible (time limit reached: see gap) or infeasible (see binding)
    cost_per_hour: float | None
    lower_bound_per_hour: float | None
    gap: float | None
    solve_seconds: float
    replicas: list[PreviewReplicas]
    routing: list[PreviewShare]
    reasons: list[str]
    binding: list[str]  # when infeasible: the constraints that cannot all hold


class RecordedPlan(Public):
    """The plan the deployment runs on: the latest one its workflows recorded."""

    deployment: str
    status: str
    cost_per_hour: float | None
    lower_bound_per_hour: float | None
    solve_seconds: float
    created_at: datetime
    replicas: list[dict[str, Any]]
    routing: list[dict[str, Any]]
    reasons: list[str]
