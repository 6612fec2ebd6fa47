"""Schemas for models, versions, variants, aliases, promotions and eval results."""

from __future__ import annotations

import json
from datetime import datetime
from typing import Annotated, Any

from pydantic import Field, field_validator, model_validator

from control_plane.schemas.common import Digest, Label, Public, Strict, Text, Uri
from registry.environments import Environment
from registry.model_versions import Model, ModelVersion


class ModelCreate(Strict):
    name: Label
    description: Text = ""


class VariantCreate(Strict):
    name: Label
    bytes_per_param: Annotated[float, Field(gt=0, le=8, allow_inf_nan=False)]
    quality_delta: Annotated[float, Field(ge=0, le=1, allow_inf_nan=False)] = 0.0
    kv_bytes_per_elem: Annotated[float, Field(gt=0, le=8, allow_inf_nan=False)] = 2.0


class Architecture(Strict):
    params_b: Annotated[float, Field(gt=0, le=100_000, allow_inf_nan=False)]
    layers: Annotated[int, Field(gt=0, le=10_000)]
    hidden: Annotated[int, Field(gt=0, le=1_000_000)]
    kv_heads: Annotated[int, Field(gt=0, le=10_000)]
    head_dim: Annotated[int, Field(gt=0, le=10_000)]
    context: Annotated[int, Field(gt=0, le=100_000_000)]


class VersionCreate(Strict):
    version: Label
    artifact_uri: Uri
    digest: Digest
    architecture: Architecture
    parent_version: Label | None = None
    variants: Annotated[list[VariantCreate], Field(min_length=1, max_length=32)]

    @model_validator(mode="after")
    def _unique_variants(self) -> VersionCreate:
        names = [v.name for v in self.variants]
        if len(names) != len(set(names)):
            raise ValueError("variant names must be unique")
        return self


class AliasSet(Strict):
    version: Label


class PromotionCreate(Strict):
    environment: Environment


class EvalResultCreate(Strict):
    dataset: Text
    metric: Label
    value: Annotated[float, Field(allow_inf_nan=False, ge=-1e12, le=1e12)]
    samples: Annotated[int, Field(ge=0, le=2**31 - 1)] = 0
    details: dict[str, Any] = Field(default_factory=dict)

    @field_validator("details")
    @classmethod
    def _small(cls, value: dict[str, Any]) -> dict[str, Any]:
        if len(json.dumps(value)) > 65_536:
            raise ValueError("details must serialise to at most 64 KiB of JSON")
        return value


class VariantPublic(Public):
    name: str
    bytes_per_param: float
    quality_delta: float
    kv_bytes_per_elem: float


class EvalResultPublic(Public):
    dataset: str
    metric: str
    value: float
    samples: int
    details: dict[str, Any]
    created_at: datetime


class VersionPublic(Public):
    model: str
    version: str
    artifact_uri: str
    digest: str
    architecture: Architecture
    parent_version: str | None
    variants: list[VariantPublic]
    environments: list[Environment]
    aliases: list[str]
    evals: list[EvalResultPublic]
    registered_by: str
    created_at: datetime

    @classmethod
    def of(cls, row: ModelVersion) -> VersionPublic:
        return cls(
            model=row.model.name,
            version=row.version,
            artifact_uri=row.artifact_uri,
            digest=row.digest,
            architecture=Architecture(
                params_b=row.params_b, layers=row.layers, hidden=row.hidden, kv_heads=row.kv_heads,
                head_dim=row.head_dim, context=row.context,
            ),
            parent_version=row.parent.version if row.parent else None,
            variants=[VariantPublic.model_validate(v) for v in row.variants],
            environments=row.environments,
            aliases=[a.alias for a in row.model.aliases if a.version_id == row.id],
            evals=[EvalResultPublic.model_validate(e) for e in row.evals],
            registered_by=row.registered_by,
            created_at=row.created_at,
        )


class ModelPublic(Public):
    name: str
    team: str
    description: str
    versions: list[str]
    aliases: dict[str, str]
    created_at: datetime

    @classmethod
    def of(cls, row: Model) -> ModelPublic:
        return cls(
            name=row.name,
            team=row.team,
            description=row.description,
            versions=[v.version for v in row.versions],
            aliases={a.alias: a.version.version for a in row.aliases},
            created_at=row.created_at,
        )


