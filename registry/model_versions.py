"""Models, their immutable versions, servable variants, aliases, environment promotions and eval results."""

from __future__ import annotations

from datetime import datetime
from typing import Any

from sqlalchemy import Float, ForeignKey, Integer, String, UniqueConstraint, select
from sqlalchemy.orm import Mapped, Session, mapped_column, relationship

from registry import audit
from registry.base import Base, CreatedAtMixin, utcnow
from registry.enums import str_enum
from registry.environments import Environment
from registry.errors import Conflict, Invalid, NotFound


class Model(CreatedAtMixin, Base):
    __tablename__ = "models"
    __table_args__ = (UniqueConstraint("team", "name"),)

    id: Mapped[int] = mapped_column(primary_key=True)
    team: Mapped[str] = mapped_column(String(64), index=True)
    name: Mapped[str] = mapped_column(String(64))
    description: Mapped[str] = mapped_column(String(1000), default="")

    versions: Mapped[list[ModelVersion]] = relationship(
        back_populates="model", order_by="ModelVersion.id", cascade="all, delete-orphan"
    )
    aliases: Mapped[list[ModelAlias]] = relationship(
        back_populates="model", order_by="ModelAlias.alias", cascade="all, delete-orphan"
    )


class ModelVersion(CreatedAtMixin, Base):
    """Immutable once registered: nothing in the API updates these columns."""

    __tablename__ = "model_versions"
    __table_args__ = (UniqueConstraint("model_id", "version"),)

    id: Mapped[int] = mapped_column(primary_key=True)
    model_id: Mapped[int] = mapped_column(ForeignKey("models.id", ondelete="CASCADE"), index=True)
    version: Mapped[str] = mapped_column(String(64))
    artifact_uri: Mapped[str] = mapped_column(String(1000))
    digest: Mapped[str] = mapped_column(String(128))
    params_b: Mapped[float] = mapped_column(Float)
    layers: Mapped[int] = mapped_column(Integer)
    hidden: Mapped[int] = mapped_column(Integer)
    kv_heads: Mapped[int] = mapped_column(Integer)
    head_dim: Mapped[int] = mapped_column(Integer)
    context: Mapped[int] = mapped_column(Integer)
    parent_id: Mapped[int | None] = mapped_column(ForeignKey("model_versions.id"), default=None)
    registered_by: Mapped[str] = mapped_column(String(128))

    model: Mapped[Model] = relationship(back_populates="versions")
    parent: Mapped[ModelVersion | None] = relationship(remote_side="ModelVersion.id")
    variants: Mapped[list[Variant]] = relationship(
        back_populates="version", order_by="Variant.id", cascade="all, delete-orphan"
    )
    promotions: Mapped[list[VersionPromotion]] = relationship(
        back_populates="version", order_by="VersionPromotion.id", cascade="all, delete-orphan"
    )
    evals: Mapped[list[EvalResult]] = relationship(
        back_populates="version", order_by="EvalResult.id", cascade="all, delete-orphan"
    )

    @property
    def environments(self) -> list[Environment]:
        return [p.environment for p in self.promotions]


class Variant(CreatedAtMixin, Base):
    __tablename__ = "variants"
    __table_args__ = (UniqueConstraint("version_id", "name"),)

    id: Mapped[int] = mapped_column(primary_key=True)
    version_id: Mapped[int] = mapped_column(ForeignKey("model_versions.id", ondelete="CASCADE"), index=True)
    name: Mapped[str] = mapped_column(String(64))
    bytes_per_param: Mapped[float] = mapped_column(Float)
    quality_delta: Mapped[float] = mapped_column(Float, default=0.0)
    kv_bytes_per_elem: Mapped[float] = mapped_column(Float, default=2.0)

    version: Mapped[ModelVersion] = relationship(back_populates="variants")


class ModelAlias(Base):
    """A movable name (`champion`, `canary`) for one version; unique per model."""

    __tablename__ = "model_aliases"
    __table_args__ = (UniqueConstraint("model_id", "alias"),)

    id: Mapped[int] = mapped_column(primary_key=True)
    model_id: Mapped[int] = mapped_column(ForeignKey("models.id", ondelete="CASCADE"), index=True)
    alias: Mapped[str] = mapped_column(String(64))
    version_id: Mapped[int] = mapped_column(ForeignKey("model_versions.id", ondelete="CASCADE"))
    updated_at: Mapped[datetime] = mapped_column(default=utcnow)

    model: Mapped[Model] = relationship(back_populates="aliases")
    version: Mapped[ModelVersion] = relationship()


class VersionPromotion(Base):
    """A version is usable in an environment once promoted there; promotion goes dev → staging → prod."""

    __tablename__ = "version_promotions"
    __table_args__ = (UniqueConstraint("version_id", "environment"),)

    id: Mapped[int] = mapped_column(primary_key=True)
    version_id: Mapped[int] = mapped_column(ForeignKey("model_versions.id", ondelete="CASCADE"), index=True)
    environment: Mapped[Environment] = mapped_column(str_enum(Environment))
    promoted_at: Mapped[datetime] = mapped_column(default=utcnow)
    promoted_by: Mapped[str] = mapped_column(String(128))

    version: Mapped[ModelVersion] = relationship(back_populates="promotions")


class EvalResult(CreatedAtMixin, Base):
    """An offline evaluation of a version (appended, never edited)."""

    __tablename__ = "eval_results"

    id: Mapped[int] = mapped_column(primary_key=True)
    version_id: Mapped[int] = mapped_column(ForeignKey("model_versions.id", ondelete="CASCADE"), index=True)
    dataset: Mapped[str] = mapped_column(String(256))
    metric: Mapped[str] = mapped_column(String(64))
    value: Mapped[float] = mapped_column(Float)
    samples: Mapped[int] = mapped_column(Integer, default=0)
    details: Mapped[dict[str, Any]] = mapped_column(default=dict)

    version: Mapped[ModelVersion] = relationship(back_populates="evals")


# ---- operations -----------------------------------------------------------------------------------


def get_model(session: Session, team: str, name: str) -> Model:
    model = session.scalar(select(Model).where(Model.team == team, Model.name == name))
    if model is None:
        raise NotFound(f"model {name!r} not found")
    return model


def list_models(session: Session, team: str) -> list[Model]:
    return list(session.scalars(select(Model).where(Model.team == team).order_by(Model.name)))


def create_model(session: Session, *, team: str, actor: str, name: str, description: str = "") -> Model:
    if session.scalar(select(Model.id).where(Model.team == team, Model.name == name)) is not None:
        raise Conflict(f"model {name!r} already exists")
    model = Model(team=team, name=name, description=description, created_at=utcnow())
    session.add(model)
    session.flush()
    audit.record(
        session, team=team, actor=actor, action="create", object_type="model", object_id=name,
        details={"description": description},
    )
    return model


def find_version(model: Model, version: str) -> ModelVersion | None:
    return next((v for v in model.versions if v.version == version), None)


def get_version(session: Session, team: str, model_name: str, version: str) -> ModelVersion:
    found = find_version(get_model(session, team, model_name), version)
    if found is None:
        raise NotFound(f"version {version!r} of model {model_name!r} not found")
    return found


def resolve_version(model: Model, ref: str) -> ModelVersion:
    """A version string or an alias (a version string wins when both match)."""
    found = find_version(model, ref)
    if found is not None:
        return found
    alias = next((a for a in model.aliases if a.alias == ref), None)
    if alias is None:
        raise Invalid(f"model {model.name!r} has no version or alias {ref!r}", field="version")
    return alias.version


def register_version(
    session: Session,
    *,
    team: str,
    actor: str,
    model_name: str,
    version: str,
    architecture: dict[str, Any],
    artifact_uri: str,
    digest: str,
    parent_version: str | None,
    variants: list[dict[str, Any]],
) -> ModelVersion:
    model = get_model(session, team, model_name)
    if find_version(model, version) is not None:
        raise Conflict(f"version {version!r} of model {model_name!r} already exists; versions are immutable")
    parent = None
    if parent_version is not None:
        parent = find_version(model, parent_version)
        if parent is None:
            raise Invalid(f"parent version {parent_version!r} not found", field="parent_version")
    row = ModelVersion(
        model=model,
        version=version,
        artifact_uri=artifact_uri,
        digest=digest,
        parent=parent,
        registered_by=actor,
        created_at=utcnow(),
        **architecture,
    )
    session.add(row)
    row.promotions.append(VersionPromotion(environment=Environment.DEV, promoted_by=actor, promoted_at=utcnow()))
    for spec in variants:
        row.variants.append(Variant(created_at=utcnow(), **spec))
    session.flush()
    audit.record(
        session, team=team, actor=actor, action="register_version", object_type="model", object_id=model_name,
        details={"version": version, "digest": digest, "variants": [v["name"] for v in variants]},
    )
    return row


def add_variant(
    session: Session, *, team: str, actor: str, model_name: str, version: str, spec: dict[str, Any]
) -> Variant:
    row = get_version(session, team, model_name, version)
    if any(v.name == spec["name"] for v in row.variants):
        raise Conflict(f"variant {spec['name']!r} already exists on {model_name}@{version}")
    variant = Variant(created_at=utcnow(), **spec)
    row.variants.append(variant)
    session.flush()
    audit.record(
        session, team=team, actor=actor, action="add_variant", object_type="model", object_id=model_name,
        details={"version": version, **spec},
    )
    return variant


def set_alias(session: Session, *, team: str, actor: str, model_name: str, alias: str, version: str) -> ModelAlias:
    model = get_model(session, team, model_name)
    target = find_version(model, version)
    if target is None:
        raise Invalid(f"version {version!r} of model {model_name!r} not found", field="version")
    existing = next((a for a in model.aliases if a.alias == alias), None)
    previous = existing.version.version if existing is not None else None
    if existing is None:
        existing = ModelAlias(alias=alias, version=target, updated_at=utcnow())
        model.aliases.append(existing)
    else:
        existing.version = target
        existing.updated_at = utcnow()
    session.flush()
    audit.record(
        session, team=team, actor=actor, action="set_alias", object_type="model", object_id=model_name,
        details={"alias": alias, "version": version, "previous": previous},
    )
    return existing


def delete_alias(session: Session, *, team: str, actor: str, model_name: str, alias: str) -> None:
    model = get_model(session, team, model_name)
    existing = next((a for a in model.aliases if a.alias == alias), None)
    if existing is None:
        raise NotFound(f"alias {alias!r} of model {model_name!r} not found")
    model.aliases.remove(existing)
    audit.record(
        session, team=team, actor=actor, action="delete_alias", object_type="model", object_id=model_name,
        details={"alias": alias, "version": existing.version.version},
    )


def promote(
    session: Session, *, team: str, actor: str, model_name: str, version: str, environment: Environment
) -> ModelVersion:
    row = get_version(session, team, model_name, version)
    if environment in row.environments:
        raise Conflict(f"{model_name}@{version} is already promoted to {environment.value}")
    previous = environment.previous
    if previous is not None and previous not in row.environments:
        raise Invalid(
            f"{model_name}@{version} must be promoted to {previous.value} before {environment.value}",
            field="environment",
        )
    row.promotions.append(VersionPromotion(environment=environment, promoted_by=actor, promoted_at=utcnow()))
    session.flush()
    audit.record(
        session, team=team, actor=actor, action="promote", object_type="model", object_id=model_name,
        details={"version": version, "environment": environment.value},
    )
    return row


def add_eval_result(
    session: Session,
    *,
    team: str,
    actor: str,
    model_name: str,
    version: str,
    dataset: str,
    metric: str,
    value: float,
    samples: int,
    details: dict[str, Any],
) -> EvalResult:
    row = get_version(session, team, model_name, version)
    result = EvalResult(dataset=dataset, metric=metric, value=value, samples=samples, details=details,
                        created_at=utcnow())
    row.evals.append(result)
    session.flush()
    audit.record(
        session, team=team, actor=actor, action="add_eval", object_type="model", object_id=model_name,
        details={"version": version, "dataset": dataset, "metric": metric, "value": value},
    )
    return result
