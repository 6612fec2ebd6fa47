"""Schemas for deployments: create, partial update, and the public view with desired and observed state."""

from __future__ import annotations

from dataclasses import asdict
from datetime import datetime
from typing import Annotated, Any

from pydantic import Field, field_validator, model_validator

from control_plane.schemas.common import Count, Fraction, Label, Place, Public, Slug, Strict
from registry.deployments import DemandSlice, Deployment, DeploymentPhase, DeploymentSpec
from registry.environments import Environment
from registry.replicas import PlacementChange, PlacementItem, Replica, ReplicaTelemetry

Millis = Annotated[float, Field(gt=0, le=3_600_000, allow_inf_nan=False)]


class Slo(Strict):
    ttft_p95_ms: Millis
    tpot_p95_ms: Millis


class Demand(Strict):
    client_region: Place
    rps: Annotated[float, Field(gt=0, le=10_000_000, allow_inf_nan=False)]
    prompt_tokens: Annotated[int, Field(gt=0, le=10_000_000)] = 512
    output_tokens: Annotated[int, Field(gt=0, le=10_000_000)] = 128


class Constraints(Strict):
    allowed_regions: Annotated[list[Place], Field(max_length=256)] = Field(default_factory=list)
    allowed_clouds: Annotated[list[Place], Field(max_length=32)] = Field(default_factory=list)
    min_replicas: Count = 1
    max_replicas: Count | None = None
    spread: bool = False
    max_spot_share: Fraction = 0.0
    # The most of the traffic one spot pool (an instance type in one zone) may serve; null: no such limit.
    max_spot_pool_share: Fraction | None = None
    max_quality_drop: Fraction = 0.0
    budget_per_hour: Annotated[float, Field(gt=0, le=1_000_000, allow_inf_nan=False)] | None = None

    @model_validator(mode="after")
    def _bounds(self) -> Constraints:
        if self.max_replicas is not None and self.max_replicas < self.min_replicas:
            raise ValueError("max_replicas must be >= min_replicas")
        if self.spread and self.min_replicas < 2:
            raise ValueError("spread needs min_replicas >= 2 (one per failure domain)")
        return self


def _unique_regions(demand: list[Demand] | None) -> list[Demand] | None:
    regions = [d.client_region for d in demand or []]
    if len(regions) != len(set(regions)):
        raise ValueError("demand lists a client_region more than once")
    return demand


class DeploymentCreate(Strict):
    name: Slug
    model: Label
    version: Label  # a version or an alias such as "champion"
    variants: Annotated[list[Label], Field(max_length=32)] = Field(default_factory=list)
    slo: Slo
    demand: Annotated[list[Demand], Field(min_length=1, max_length=256)]
    environment: Environment = Environment.DEV
    constraints: Constraints = Field(default_factory=Constraints)

    _demand_regions_unique = field_validator("demand")(_unique_regions)

    def to_spec(self) -> DeploymentSpec:
        c = self.constraints
        return DeploymentSpec(
            model=self.model,
            version=self.version,
            ttft_p95_ms=self.slo.ttft_p95_ms,
            tpot_p95_ms=self.slo.tpot_p95_ms,
            demand=[DemandSlice(**d.model_dump()) for d in self.demand],
            environment=self.environment,
            variants=list(self.variants),
            allowed_regions=list(c.allowed_regions),
            allowed_clouds=list(c.allowed_clouds),
            min_replicas=c.min_replicas,
            max_replicas=c.max_replicas,
            spread=c.spread,
            max_spot_share=c.max_spot_share,
            max_spot_pool_share=c.max_spot_pool_share,
            max_quality_drop=c.max_quality_drop,
            budget_per_hour=c.budget_per_hour,
        )


class ConstraintsUpdate(Strict):
    allowed_regions: Annotated[list[Place], Field(max_length=256)] | None = None
    allowed_clouds: Annotated[list[Place], Field(max_length=32)] | None = None
    min_replicas: Count | None = None
    max_replicas: Count | None = None
    spread: bool | None = None
    max_spot_share: Fraction | None = None
    max_spot_pool_share: Fraction | None = None
    max_quality_drop: Fraction | None = None
    budget_per_hour: Annotated[float, Field(gt=0, le=1_000_000, allow_inf_nan=False)] | None = None


class DeploymentUpdate(Strict):
    """Only the fields sent change. `max_replicas`, `max_spot_pool_share` and `budget_per_hour` may be
    cleared with null."""

    version: Label | None = None
    variants: Annotated[list[Label], Field(max_length=32)] | None = None
    slo: Slo | None = None
    demand: Annotated[list[Demand], Field(min_length=1, max_length=256)] | None = None
    environment: Environment | None = None
    constraints: ConstraintsUpdate | None = None

    _demand_regions_unique = field_validator("demand")(_unique_regions)

    @model_validator(mode="after")
    def _check(self) -> DeploymentUpdate:
        nullable = {"max_replicas", "max_spot_pool_share", "budget_per_hour"}
        if self.constraints is not None:
            for name in self.constraints.model_fields_set - nullable:
                if getattr(self.constraints, name) is None:
                    raise ValueError(f"constraints.{name} cannot be null")
        for name in self.model_fields_set - {"constraints"}:
            if getattr(self, name) is None:
                raise ValueError(f"{name} cannot be null")
        if not self.model_fields_set:
            raise ValueError("nothing to change")
        return self

    def changes(self) -> dict[str, Any]:
        """Flat field → value changes in DeploymentSpec terms."""
        out: dict[str, Any] = {}
        if self.version is not None:
            out["version"] = self.version
        if self.variants is not None:
            out["variants"] = list(self.variants)
        if self.slo is not None:
            out["ttft_p95_ms"], out["tpot_p95_ms"] = self.slo.ttft_p95_ms, self.slo.tpot_p95_ms
        if self.demand is not None:
            out["demand"] = [DemandSlice(**d.model_dump()) for d in self.demand]
        if self.environment is not None:
            out["environment"] = self.environment
        if self.constraints is not None:
            for name in self.constraints.model_fields_set:
                out[name] = getattr(self.constraints, name)
        return out


class TelemetryPublic(Public):
    """The latest window the cluster's agent reported for a replica."""

    observed_at: datetime
    agent_state: str
    window_s: float
    request_rate: float
    prompt_tokens_per_s: float
    generation_tokens_per_s: float
    ttft_p95_ms: float | None
    tpot_p95_ms: float | None
    e2e_p95_ms: float | None
    running: float | None
    queue_length: float | None
    kv_cache_usage: float | None
    errors: int

    @classmethod
    def of(cls, row: ReplicaTelemetry) -> TelemetryPublic:
        return cls.model_validate(row)


class ReplicaPublic(Public):
    name: str
    cluster: str
    pool: str
    variant: str
    tensor_parallel: int
    status: str
    desired_state: str
    endpoint: str | None
    restarts: int
    failure_reason: str | None
    telemetry: TelemetryPublic | None

    @classmethod
    def of(cls, row: Replica) -> ReplicaPublic:
        return cls(
            name=row.name, cluster=row.cluster.name, pool=row.pool.name, variant=row.variant,
            tensor_parallel=row.tensor_parallel, status=row.status.value, desired_state=row.desired_state.value,
            endpoint=row.endpoint, restarts=row.restarts, failure_reason=row.failure_reason,
            telemetry=TelemetryPublic.of(row.telemetry) if row.telemetry is not None else None,
        )


# Pool names come from catalog imports: `instance-type/market[/zone]`.
PoolName = Annotated[str, Field(pattern=r"^[A-Za-z0-9][A-Za-z0-9._/-]{0,127}$", max_length=128)]


class PlacementEntry(Strict):
    """`count` replicas as `variant` on `tensor_parallel` GPUs of one pool of one cluster."""

    cluster: Slug
    pool: PoolName
    variant: Label
    tensor_parallel: Annotated[int, Field(ge=1, le=64)] = 1
    count: Annotated[int, Field(ge=0, le=1000)]

    def to_item(self) -> PlacementItem:
        return PlacementItem(cluster=self.cluster, pool=self.pool, variant=self.variant,
                             tensor_parallel=self.tensor_parallel, count=self.count)

    @classmethod
    def of(cls, item: PlacementItem) -> PlacementEntry:
        return cls(cluster=item.cluster, pool=item.pool, variant=item.variant,
                   tensor_parallel=item.tensor_parallel, count=item.count)


class PlacementUpdate(Strict):
    """The complete desired placement: replicas not covered by an entry drain (an empty list drains all)."""

    replicas: Annotated[list[PlacementEntry], Field(max_length=256)]


class PlacementPublic(Public):
    deployment: str
    replicas: list[PlacementEntry]  # live replicas meant to run, grouped
    created: list[str] = Field(default_factory=list)  # by this request
    drained: list[str] = Field(default_factory=list)  # by this request

    @classmethod
    def of(cls, deployment: str, items: list[PlacementItem], change: PlacementChange | None = None) -> PlacementPublic:
        return cls(
            deployment=deployment, replicas=[PlacementEntry.of(i) for i in items],
            created=change.created if change else [], drained=change.drained if change else [],
        )


class ObservedState(Public):
    generation: int
    replicas: list[ReplicaPublic]
    replicas_by_status: dict[str, int]


class DeploymentPublic(Public):
    name: str
    team: str
    model: str
    version: str  # the resolved version
    version_ref: str  # what was asked for
    variants: list[str]
    slo: Slo
    demand: list[Demand]
    environment: Environment
    constraints: Constraints
    phase: DeploymentPhase
    desired_generation: int
    observed: ObservedState
    resource_version: int  # send back as If-Match to update safely
    created_at: datetime
    updated_at: datetime

    @classmethod
    def of(cls, row: Deployment, replicas: list[Replica]) -> DeploymentPublic:
        spec = row.spec()
        by_status: dict[str, int] = {}
        for replica in replicas:
            by_status[replica.status.value] = by_status.get(replica.status.value, 0) + 1
        return cls(
            name=row.name,
            team=row.team,
            model=row.model.name,
            version=row.model_version.version,
            version_ref=row.version_ref,
            variants=spec.variants,
            slo=Slo(ttft_p95_ms=spec.ttft_p95_ms, tpot_p95_ms=spec.tpot_p95_ms),
            demand=[Demand.model_validate(asdict(d)) for d in spec.demand],
            environment=spec.environment,
            constraints=Constraints.model_construct(
                allowed_regions=spec.allowed_regions, allowed_clouds=spec.allowed_clouds,
                min_replicas=spec.min_replicas, max_replicas=spec.max_replicas, spread=spec.spread,
                max_spot_share=spec.max_spot_share, max_spot_pool_share=spec.max_spot_pool_share,
                max_quality_drop=spec.max_quality_drop,
                budget_per_hour=spec.budget_per_hour,
            ),
            phase=row.phase,
            desired_generation=row.desired_generation,
            observed=ObservedState(
                generation=row.observed_generation,
                replicas=[ReplicaPublic.of(r) for r in replicas],
                replicas_by_status=by_status,
            ),
            resource_version=row.row_version,
            created_at=row.created_at,
            updated_at=row.updated_at,
        )

