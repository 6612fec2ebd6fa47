"""Constrained field types shared by every schema."""

from __future__ import annotations

from typing import Annotated

from pydantic import BaseModel, ConfigDict, Field

# Names that end up in URLs, workflow ids and metric labels: lower-case, DNS-label-like.
Slug = Annotated[str, Field(pattern=r"^[a-z0-9]([a-z0-9-]{0,61}[a-z0-9])?$", min_length=1, max_length=63)]
# Model, version, variant and alias names also allow dots and underscores (llama-3.1-8b, v1.2, awq-int4).
Label = Annotated[str, Field(pattern=r"^[A-Za-z0-9][A-Za-z0-9._-]{0,63}$", min_length=1, max_length=64)]
# Cloud, region and zone names as providers spell them (us-east-1, CA-MTL-1, use1-az2).
Place = Annotated[str, Field(pattern=r"^[A-Za-z0-9][A-Za-z0-9._-]{0,63}$", min_length=1, max_length=64)]
# Free text: no control characters (PostgreSQL rejects NUL; logs hate the rest).
Text = Annotated[str, Field(pattern=r"^[^\x00-\x08\x0b\x0c\x0e-\x1f\x7f]*$", max_length=1000)]
Uri = Annotated[str, Field(pattern=r"^[A-Za-z][A-Za-z0-9+.-]*://[^\s\x00-\x1f\x7f]+$", max_length=1000)]
Digest = Annotated[str, Field(pattern=r"^[a-z0-9]+:[A-Fa-f0-9]{32,128}$", max_length=128)]
PositiveInt = Annotated[int, Field(gt=0, le=2**31 - 1)]
Count = Annotated[int, Field(ge=0, le=100_000)]
Fraction = Annotated[float, Field(ge=0.0, le=1.0, allow_inf_nan=False)]


class Strict(BaseModel):
    """Input models: unknown fields are an error, never silently dropped."""

    model_config = ConfigDict(extra="forbid")


class Public(BaseModel):
    model_config = ConfigDict(from_attributes=True)
