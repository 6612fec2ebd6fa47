"""Schemas of the routing-table API: what every regional gateway pulls (deployments, splits, replicas, keys)."""

from __future__ import annotations

from typing import Any

from control_plane.schemas.common import Public
from registry.routing import DeploymentRoute, GatewayKey, ReadyReplica, RoutingTable


class ReplicaRoute(Public):
    name: str
    endpoint: str
    cluster: str
    region: str
    version: str
    variant: str
    capacity_weight: float


class ExperimentArmPublic(Public):
    name: str
    version: str
    percent: float


class ExperimentPublic(Public):
    name: str
    arms: list[ExperimentArmPublic]


class DeploymentRoutePublic(Public):
    name: str
    team: str
    model: str
    version: str
    aliases: dict[str, str]
    generation: int
    version_weights: dict[str, float]
    experiment: ExperimentPublic | None
    shares: dict[str, dict[str, float]]
    shares_published: bool
    replicas: list[ReplicaRoute]

    @classmethod
    def of(cls, route: DeploymentRoute) -> DeploymentRoutePublic:
        experiment: dict[str, Any] | None = route.experiment or None
        return cls(
            name=route.name, team=route.team, model=route.model, version=route.version, aliases=route.aliases,
            generation=route.generation, version_weights=route.version_weights,
            experiment=ExperimentPublic.model_validate(experiment) if experiment else None,
            shares=route.shares, shares_published=route.shares_published,
            replicas=[ReplicaRoute.model_validate(r, from_attributes=True) for r in route.replicas],
        )


class GatewayKeyPublic(Public):
    key_id: str
    key_hash: str  # SHA-256 of the full key; the secret itself is never stored or sent
    team: str
    scopes: list[str]
    requests_per_minute: int | None  # the key's own limits; None: the gateway's default
    tokens_per_minute: int | None


class RoutingTablePublic(Public):
    generation: int
    deployments: list[DeploymentRoutePublic]
    keys: list[GatewayKeyPublic]

    @classmethod
    def of(cls, table: RoutingTable) -> RoutingTablePublic:
        return cls(
            generation=table.generation,
            deployments=[DeploymentRoutePublic.of(d) for d in table.deployments],
            keys=[GatewayKeyPublic.model_validate(k, from_attributes=True) for k in table.keys],
        )


__all__ = ["DeploymentRoutePublic", "GatewayKey", "ReadyReplica", "RoutingTablePublic"]
