"""Imports every aggregate so `Base.metadata` knows all tables (used by Alembic and by table creation)."""

from registry import (
    api_keys, audit, batches, clusters, deployments, idempotency, model_versions, plans, replicas, rollouts, routing,
)
from registry.base import Base

AGGREGATES = (api_keys, audit, batches, clusters, deployments, idempotency, model_versions, plans, replicas, rollouts, routing)
metadata = Base.metadata
