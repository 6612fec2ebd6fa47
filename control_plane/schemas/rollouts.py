"""Rollouts: start one (version, steps, mode, bake time) and read its progress."""

from __future__ import annotations

from datetime import datetime
from typing import Annotated, Any, Literal

from pydantic import Field, field_validator

from control_plane.schemas.common import Public, Strict
from registry.rollouts import Rollout

Percent = Annotated[float, Field(gt=0, le=100)]


class RolloutCreate(Strict):
    version: Annotated[str, Field(min_length=1, max_length=64, pattern=r"^[A-Za-z0-9._-]+$")]
    steps: Annotated[list[Percent], Field(min_length=1, max_length=20)] = Field(
        default_factory=lambda: [5.0, 25.0, 50.0, 100.0])
    mode: Literal["canary", "blue_green"] = "canary"
    bake_seconds: Annotated[float, Field(ge=0, le=86400)] = 300.0
    min_requests: Annotated[float, Field(ge=0)] = 20.0

    @field_validator("steps")
    @classmethod
    def _increasing_to_100(cls, steps: list[float]) -> list[float]:
        if steps[-1] != 100 or any(b <= a for a, b in zip(steps, steps[1:], strict=False)):
            raise ValueError("steps must increase strictly and end at 100")
        return steps


class WorkflowRef(Public):
    workflow_id: str
    run_id: str | None = None
    url: str | None = None  # into the Temporal UI, when settings.temporal_ui_url is set


class RolloutPublic(Public):
    workflow_id: str | None
    from_version: str
    to_version: str
    state: str
    steps: list[float]
    current_step: int
    verdicts: list[dict[str, Any]]
    created_at: datetime
    updated_at: datetime

    @classmethod
    def of(cls, row: Rollout, versions: dict[int, str]) -> RolloutPublic:
        return cls(workflow_id=row.workflow_id, from_version=versions.get(row.from_version_id, "?"),
                   to_version=versions.get(row.to_version_id, "?"), state=row.state.value,
                   steps=[float(s) for s in row.steps], current_step=row.current_step, verdicts=list(row.verdicts),
                   created_at=row.created_at, updated_at=row.updated_at)


class WorkflowStatus(Public):
    workflow_id: str
    run_id: str | None
    type: str | None
    status: str | None
    url: str | None


class DeploymentWorkflows(Public):
    deployment: str
    temporal: bool  # False: no Temporal configured, the API applies changes itself
    workflows: list[WorkflowStatus]
