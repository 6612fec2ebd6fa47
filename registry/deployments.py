"""Deployments: a served endpoint's desired spec (model version, SLO, demand, constraints) and its progress."""

from __future__ import annotations

import enum
from dataclasses import asdict, dataclass, field
from datetime import datetime
from typing import Any

from sqlalchemy import Boolean, Float, ForeignKey, Integer, String, select
from sqlalchemy.orm import Mapped, Session, mapped_column, relationship

from registry import audit
from registry.base import Base, CreatedAtMixin, utcnow
from registry.clusters import known_clouds, known_regions
from registry.enums import str_enum
from registry.environments import Environment
from registry.errors import Conflict, Invalid, NotFound
from registry.model_versions import Model, ModelVersion, get_model, resolve_version


class DeploymentPhase(enum.StrEnum):
    ACTIVE = "active"
    DELETING = "deleting"  # draining its replicas; removed once none is left


@dataclass(frozen=True, slots=True)
class DemandSlice:
    client_region: str
    rps: float
    prompt_tokens: int
    output_tokens: int


@dataclass(slots=True)
class DeploymentSpec:
    """Everything a team may set on a deployment. Cross-field rules are checked against the registry."""

    model: str
    version: str  # a version or an alias, resolved once at create/update
    ttft_p95_ms: float
    tpot_p95_ms: float
    demand: list[DemandSlice]
    environment: Environment = Environment.DEV
    variants: list[str] = field(default_factory=list)  # empty: every variant of the version
    allowed_regions: list[str] = field(default_factory=list)  # empty: anywhere
    allowed_clouds: list[str] = field(default_factory=list)
    min_replicas: int = 1
    max_replicas: int | None = None
    spread: bool = False  # min replicas over at least two failure domains
    max_spot_share: float = 0.0
    max_spot_pool_share: float | None = None  # the most one spot pool may serve; None: no such limit
    max_quality_drop: float = 0.0
    budget_per_hour: float | None = None


class Deployment(CreatedAtMixin, Base):
    __tablename__ = "deployments"

    id: Mapped[int] = mapped_column(primary_key=True)
    # Names are global: they are the `model` a client sends to the gateway and the workflow ids.
    name: Mapped[str] = mapped_column(String(63), unique=True)
    team: Mapped[str] = mapped_column(String(64), index=True)
    model_id: Mapped[int] = mapped_column(ForeignKey("models.id"), index=True)
    version_id: Mapped[int] = mapped_column(ForeignKey("model_versions.id"))
    version_ref: Mapped[str] = mapped_column(String(64))  # what was asked for (a version or an alias)
    variants: Mapped[list[Any]] = mapped_column(default=list)
    ttft_p95_ms: Mapped[float] = mapped_column(Float)
    tpot_p95_ms: Mapped[float] = mapped_column(Float)
    demand: Mapped[list[Any]] = mapped_column(default=list)
    environment: Mapped[Environment] = mapped_column(str_enum(Environment))
    allowed_regions: Mapped[list[Any]] = mapped_column(default=list)
    allowed_clouds: Mapped[list[Any]] = mapped_column(default=list)
    min_replicas: Mapped[int] = mapped_column(Integer)
    max_replicas: Mapped[int | None] = mapped_column(Integer, default=None)
    spread: Mapped[bool] = mapped_column(Boolean, default=False)
    max_spot_share: Mapped[float] = mapped_column(Float, default=0.0)
    max_spot_pool_share: Mapped[float | None] = mapped_column(Float, default=None)
    max_quality_drop: Mapped[float] = mapped_column(Float, default=0.0)
    budget_per_hour: Mapped[float | None] = mapped_column(Float, default=None)
    phase: Mapped[DeploymentPhase] = mapped_column(str_enum(DeploymentPhase), default=DeploymentPhase.ACTIVE)
    # desired_generation bumps on every spec change; workflows copy it to observed_generation once applied.
    desired_generation: Mapped[int] = mapped_column(Integer, default=1)
    observed_generation: Mapped[int] = mapped_column(Integer, default=0)
    updated_at: Mapped[datetime] = mapped_column(default=utcnow)
    row_version: Mapped[int] = mapped_column(Integer, nullable=False)

    model: Mapped[Model] = relationship()
    model_version: Mapped[ModelVersion] = relationship()

    # Optimistic concurrency: every UPDATE checks and bumps row_version.
    __mapper_args__ = {"version_id_col": row_version}

    def spec(self) -> DeploymentSpec:
        return DeploymentSpec(
            model=self.model.name,
            version=self.version_ref,
            ttft_p95_ms=self.ttft_p95_ms,
            tpot_p95_ms=self.tpot_p95_ms,
            demand=[DemandSlice(**d) for d in self.demand],
            environment=self.environment,
            variants=list(self.variants),
            allowed_regions=list(self.allowed_regions),
            allowed_clouds=list(self.allowed_clouds),
            min_replicas=self.min_replicas,
            max_replicas=self.max_replicas,
            spread=self.spread,
            max_spot_share=self.max_spot_share,
            max_spot_pool_share=self.max_spot_pool_share,
            max_quality_drop=self.max_quality_drop,
            budget_per_hour=self.budget_per_hour,
        )


def _resolve(session: Session, team: str, spec: DeploymentSpec) -> ModelVersion:
    """Check every reference and cross-field rule of a spec; return the resolved model version."""
    try:
        model = get_model(session, team, spec.model)
    except NotFound as error:
        raise Invalid(error.detail, field="model") from None
    version = resolve_version(model, spec.version)
    if spec.environment not in version.environments:
        raise Invalid(
            f"{model.name}@{version.version} is not promoted to {spec.environment.value}", field="environment"
        )
    names = {v.name: v for v in version.variants}
    if not names:
        raise Invalid(f"{model.name}@{version.version} has no variants to serve", field="version")
    unknown = [v for v in spec.variants if v not in names]
    if unknown:
        raise Invalid(f"unknown variant(s) of {model.name}@{version.version}: {', '.join(unknown)}", field="variants")
    chosen = [names[v] for v in spec.variants] if spec.variants else list(names.values())
    if all(v.quality_delta > spec.max_quality_drop for v in chosen):
        raise Invalid("no allowed variant is within max_quality_drop", field="max_quality_drop")
    regions = known_regions(session)
    for label, wanted in (("allowed_regions", spec.allowed_regions), ("demand", [d.client_region for d in spec.demand])):
        missing = sorted(set(wanted) - regions)
        if missing:
            raise Invalid(f"unknown region(s): {', '.join(missing)} (no cluster there)", field=label)
    missing_clouds = sorted(set(spec.allowed_clouds) - known_clouds(session))
    if missing_clouds:
        raise Invalid(f"unknown cloud(s): {', '.join(missing_clouds)}", field="allowed_clouds")
    if spec.max_replicas is not None and spec.max_replicas < spec.min_replicas:
        raise Invalid("max_replicas is below min_replicas", field="max_replicas")
    return version


def _apply(row: Deployment, spec: DeploymentSpec, version: ModelVersion) -> None:
    row.model_id = version.model_id
    row.version_id = version.id
    row.version_ref = spec.version
    row.variants = list(spec.variants)
    row.ttft_p95_ms = spec.ttft_p95_ms
    row.tpot_p95_ms = spec.tpot_p95_ms
    row.demand = [asdict(d) for d in spec.demand]
    row.environment = spec.environment
    row.allowed_regions = list(spec.allowed_regions)
    row.allowed_clouds = list(spec.allowed_clouds)
    row.min_replicas = spec.min_replicas
    row.max_replicas = spec.max_replicas
    row.spread = spec.spread
    row.max_spot_share = spec.max_spot_share
    row.max_spot_pool_share = spec.max_spot_pool_share
    row.max_quality_drop = spec.max_quality_drop
    row.budget_per_hour = spec.budget_per_hour


def _spec_details(spec: DeploymentSpec, version: ModelVersion) -> dict[str, Any]:
    details = asdict(spec)
    details["environment"] = spec.environment.value
    details["resolved_version"] = version.version
    return details


def get_deployment(session: Session, team: str, name: str) -> Deployment:
    row = session.scalar(select(Deployment).where(Deployment.name == name, Deployment.team == team))
    if row is None:
        raise NotFound(f"deployment {name!r} not found")
    return row


def list_deployments(session: Session, team: str) -> list[Deployment]:
    return list(session.scalars(select(Deployment).where(Deployment.team == team).order_by(Deployment.name)))


def create_deployment(session: Session, *, team: str, actor: str, name: str, spec: DeploymentSpec) -> Deployment:
    if session.scalar(select(Deployment.id).where(Deployment.name == name)) is not None:
        raise Conflict(f"deployment name {name!r} is taken")
    version = _resolve(session, team, spec)
    row = Deployment(name=name, team=team, created_at=utcnow(), updated_at=utcnow())
    _apply(row, spec, version)
    session.add(row)
    session.flush()
    audit.record(
        session, team=team, actor=actor, action="create", object_type="deployment", object_id=name,
        details=_spec_details(spec, version),
    )
    return row


def update_deployment(
    session: Session, *, team: str, actor: str, name: str, changes: dict[str, Any], expected_version: int | None
) -> Deployment:
    """Apply a partial change. `expected_version` (from If-Match) guards against lost updates."""
    row = get_deployment(session, team, name)
    if row.phase is DeploymentPhase.DELETING:
        raise Conflict(f"deployment {name!r} is being deleted")
    if expected_version is not None and expected_version != row.row_version:
        raise Conflict(f"deployment {name!r} is at version {row.row_version}, not {expected_version}")
    spec = row.spec()
    for key, value in changes.items():
        if key == "demand":
            value = [DemandSlice(**d) if isinstance(d, dict) else d for d in value]
        if key == "environment":
            value = Environment(value)
        setattr(spec, key, value)
    version = _resolve(session, team, spec)
    before = _spec_details(row.spec(), row.model_version)
    _apply(row, spec, version)
    row.desired_generation += 1
    row.updated_at = utcnow()
    session.flush()
    after = _spec_details(spec, version)
    audit.record(
        session, team=team, actor=actor, action="update", object_type="deployment", object_id=name,
        details={"changed": {k: {"from": before[k], "to": after[k]} for k in after if before.get(k) != after[k]}},
    )
    return row


def request_delete(session: Session, *, team: str, actor: str, name: str, has_live_replicas: bool) -> bool:
    """Start deleting; returns True when the deployment is gone at once (nothing left to drain)."""
    row = get_deployment(session, team, name)
    audit.record(session, team=team, actor=actor, action="delete", object_type="deployment", object_id=name)
    if not has_live_replicas:
        session.delete(row)
        session.flush()
        return True
    if row.phase is not DeploymentPhase.DELETING:
        row.phase = DeploymentPhase.DELETING
        row.desired_generation += 1
        row.updated_at = utcnow()
        session.flush()
    return False


def switch_version(session: Session, *, deployment: Deployment, version: ModelVersion, actor: str) -> bool:
    """Make `version` the deployment's own (a rollout promoted it). The spec changed, but the rollout has
    already applied it, so desired and observed generations move together. Returns False if already so."""
    if deployment.version_id == version.id:
        return False
    before = deployment.model_version.version
    deployment.version_id = version.id
    deployment.version_ref = version.version
    deployment.desired_generation += 1
    deployment.observed_generation = deployment.desired_generation
    deployment.updated_at = utcnow()
    session.flush()
    audit.record(
        session, team=deployment.team, actor=actor, action="switch_version", object_type="deployment",
        object_id=deployment.name, details={"from": before, "to": version.version},
    )
    return True
