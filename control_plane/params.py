"""Constrained path and query parameters (an unchecked NUL byte would reach PostgreSQL and fail there)."""

from __future__ import annotations

from typing import Annotated

from fastapi import Path, Query


SLUG = r"^[a-z0-9]([a-z0-9-]{0,61}[a-z0-9])?$"
LABEL = r"^[A-Za-z0-9][A-Za-z0-9._-]{0,63}$"
KEY_ID = r"^[a-f0-9]{8}$"

ModelName = Annotated[str, Path(pattern=LABEL, max_length=64)]
VersionName = Annotated[str, Path(pattern=LABEL, max_length=64)]
AliasName = Annotated[str, Path(pattern=LABEL, max_length=64)]
ClusterName = Annotated[str, Path(pattern=SLUG, max_length=63)]
DeploymentName = Annotated[str, Path(pattern=SLUG, max_length=63)]
KeyId = Annotated[str, Path(pattern=KEY_ID)]
ObjectType = Annotated[str | None, Query(pattern=r"^[a-z_]{1,64}$")]
ObjectId = Annotated[str | None, Query(pattern=r"^[A-Za-z0-9._/@-]{1,256}$")]

