"""The desired state as the agent holds it: plain values parsed from the control plane's JSON.

The agent never imports the control plane's schemas (it talks to it over HTTP only), so this module is
the agent's own reading of `GET /v1/agent/clusters/{cluster}/desired`. Unknown fields are ignored so a
newer control plane does not break an older agent.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any


class DesiredStateError(ValueError):
    """The control plane sent something the agent cannot read; the agent keeps its last good state."""


@dataclass(frozen=True, slots=True)
class Architecture:
    params_b: float
    layers: int
    hidden: int
    kv_heads: int
    head_dim: int
    context: int


@dataclass(frozen=True, slots=True)
class VariantSpec:
    name: str
    bytes_per_param: float
    kv_bytes_per_elem: float = 2.0
    quality_delta: float = 0.0


@dataclass(frozen=True, slots=True)
class PoolSpec:
    name: str
    accelerator: str
    instance_type: str = ""
    gpus_per_instance: int = 1
    market: str = "on-demand"


@dataclass(frozen=True, slots=True)
class DesiredReplica:
    name: str
    deployment: str
    model: str
    version: str
    artifact_uri: str
    digest: str
    architecture: Architecture
    variant: VariantSpec
    pool: PoolSpec
    tensor_parallel: int
    desired_state: str  # "running" or "stopped"

    @property
    def running(self) -> bool:
        return self.desired_state == "running"


@dataclass(frozen=True, slots=True)
class DesiredState:
    cluster: str
    generation: int
    replicas: tuple[DesiredReplica, ...]
    etag: str | None = None

    def by_name(self) -> dict[str, DesiredReplica]:
        return {r.name: r for r in self.replicas}


def _pick(cls: type, data: Any) -> Any:
    if not isinstance(data, dict):
        raise DesiredStateError(f"expected an object for {cls.__name__}")
    fields = cls.__dataclass_fields__  # type: ignore[attr-defined]
    try:
        return cls(**{k: v for k, v in data.items() if k in fields})
    except TypeError as error:
        raise DesiredStateError(f"{cls.__name__}: {error}") from None


def parse_desired(data: Any, etag: str | None = None) -> DesiredState:
    if not isinstance(data, dict):
        raise DesiredStateError("the desired state is not a JSON object")
    try:
        replicas = tuple(
            DesiredReplica(
                name=str(r["name"]),
                deployment=str(r["deployment"]),
                model=str(r["model"]),
                version=str(r["version"]),
                artifact_uri=str(r["artifact_uri"]),
                digest=str(r["digest"]),
                architecture=_pick(Architecture, r["architecture"]),
                variant=_pick(VariantSpec, r["variant"]),
                pool=_pick(PoolSpec, r["pool"]),
                tensor_parallel=int(r["tensor_parallel"]),
                desired_state=str(r["desired_state"]),
            )
            for r in data["replicas"]
        )
        return DesiredState(cluster=str(data["cluster"]), generation=int(data["generation"]), replicas=replicas,
                            etag=etag)
    except (KeyError, TypeError, ValueError) as error:
        if isinstance(error, DesiredStateError):
            raise
        raise DesiredStateError(f"malformed desired state: {error!r}") from None
