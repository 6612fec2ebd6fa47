"""Schemas for API keys."""

from __future__ import annotations

from datetime import datetime
from typing import Annotated

from pydantic import Field

from control_plane.schemas.common import Public, Slug, Strict, Text
from registry.api_keys import ApiKey, Scope


PerMinute = Annotated[int, Field(ge=1, le=10_000_000_000)]


class KeyCreate(Strict):
    team: Slug
    scopes: Annotated[list[Scope], Field(min_length=1, max_length=3)]
    name: Text = ""
    requests_per_minute: PerMinute | None = None  # enforced by the gateways; None: their default
    tokens_per_minute: PerMinute | None = None


class KeyLimitsUpdate(Strict):
    requests_per_minute: PerMinute | None = None
    tokens_per_minute: PerMinute | None = None


class KeyPublic(Public):
    key_id: str
    team: str
    scopes: list[Scope]
    name: str
    requests_per_minute: int | None
    tokens_per_minute: int | None
    created_at: datetime
    revoked_at: datetime | None

    @classmethod
    def of(cls, row: ApiKey) -> KeyPublic:
        return cls.model_validate(row)


class KeyIssued(KeyPublic):
    key: str  # the secret, shown only in this response
