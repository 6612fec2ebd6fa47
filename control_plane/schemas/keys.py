"""Schemas for API keys."""

from __future__ import annotations

from datetime import datetime
from typing import Annotated

from pydantic import Field

from control_plane.schemas.common import Public, Slug, Strict, Text
from registry.api_keys import ApiKey, Scope


class KeyCreate(Strict):
    team: Slug
    scopes: Annotated[list[Scope], Field(min_length=1, max_length=3)]
    name: Text = ""


class KeyPublic(Public):
    key_id: str
    team: str
    scopes: list[Scope]
    name: str
    created_at: datetime
    revoked_at: datetime | None

    @classmethod
    def of(cls, row: ApiKey) -> KeyPublic:
        return cls.model_validate(row)


class KeyIssued(KeyPublic):
    key: str  # the secret, shown only in this response
