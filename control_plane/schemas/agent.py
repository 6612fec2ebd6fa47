"""Schemas of the agent API: the desired replicas of a cluster (out) and an agent's heartbeat (in)."""

from __future__ import annotations

from typing import Annotated

from pydantic import AwareDatetime, Field, field_validator

from control_plane.schemas.common import Label, Public, Strict, Text, Uri
from registry.replicas import (
    DesiredReplica,
    DesiredSnapshot,
    Heartbeat,
    HeartbeatOutcome,
    ReplicaReport,
    ReportedState,
    TelemetryReport,
)

# Replica names are `{deployment}-{cluster}-{n}`: DNS-label characters, longer than one label.
ReplicaName = Annotated[str, Field(pattern=r"^[a-z0-9][a-z0-9-]{0,127}$", max_length=128)]
Rate = Annotated[float, Field(ge=0, le=1e9, allow_inf_nan=False)]
Millis = Annotated[float, Field(ge=0, le=3.6e6, allow_inf_nan=False)]


class Architecture(Public):
    params_b: float
    layers: int
    hidden: int
    kv_heads: int
    head_dim: int
    context: int


class VariantSpec(Public):
    name: str
    bytes_per_param: float
    kv_bytes_per_elem: float
    quality_delta: float


class PoolSpec(Public):
    name: str
    accelerator: str
    instance_type: str
    gpus_per_instance: int
    market: str


class DesiredReplicaPublic(Public):
    name: str
    deployment: str  # also the name clients use as `model`: the replica serves under it
    model: str
    version: str
    artifact_uri: str
    digest: str
    architecture: Architecture
    variant: VariantSpec
    pool: PoolSpec
    tensor_parallel: int
    desired_state: str  # running, or stopped (drain, then stop)

    @classmethod
    def of(cls, desired: DesiredReplica) -> DesiredReplicaPublic:
        replica, version, pool, variant = desired.replica, desired.replica.model_version, desired.replica.pool, desired.variant
        return cls(
            name=replica.name,
            deployment=replica.deployment.name,
            model=version.model.name,
            version=version.version,
            artifact_uri=version.artifact_uri,
            digest=version.digest,
            architecture=Architecture(
                params_b=version.params_b, layers=version.layers, hidden=version.hidden,
                kv_heads=version.kv_heads, head_dim=version.head_dim, context=version.context,
            ),
            variant=VariantSpec(
                name=variant.name, bytes_per_param=variant.bytes_per_param,
                kv_bytes_per_elem=variant.kv_bytes_per_elem, quality_delta=variant.quality_delta,
            ),
            pool=PoolSpec(
                name=pool.name, accelerator=pool.accelerator, instance_type=pool.instance_type,
                gpus_per_instance=pool.gpus_per_instance, market=pool.market.value,
            ),
            tensor_parallel=replica.tensor_parallel,
            desired_state=desired.desired_state.value,
        )


class DesiredStatePublic(Public):
    """Everything the cluster's agent should run, complete in itself (level-triggered)."""

    cluster: str
    generation: int  # only grows; an agent ignores a snapshot older than one it applied
    replicas: list[DesiredReplicaPublic]

    @classmethod
    def of(cls, snapshot: DesiredSnapshot) -> DesiredStatePublic:
        return cls(
            cluster=snapshot.cluster.name,
            generation=snapshot.generation,
            replicas=[DesiredReplicaPublic.of(r) for r in snapshot.replicas],
        )


class TelemetryIn(Strict):
    """Windowed telemetry of one replica, as the agent computed it from the replica's /metrics."""

    observed_at: AwareDatetime
    window_s: Annotated[float, Field(gt=0, le=3600, allow_inf_nan=False)]
    request_rate: Rate = 0.0
    prompt_tokens_per_s: Rate = 0.0
    generation_tokens_per_s: Rate = 0.0
    ttft_p95_ms: Millis | None = None
    tpot_p95_ms: Millis | None = None
    e2e_p95_ms: Millis | None = None
    running: Rate | None = None
    queue_length: Rate | None = None
    kv_cache_usage: Annotated[float, Field(ge=0, le=1.5, allow_inf_nan=False)] | None = None
    errors: Annotated[int, Field(ge=0, le=2**31 - 1)] = 0

    def to_report(self) -> TelemetryReport:
        return TelemetryReport(**self.model_dump())


class ReplicaReportIn(Strict):
    name: ReplicaName
    state: ReportedState
    endpoint: Uri | None = None
    restarts: Annotated[int, Field(ge=0, le=1_000_000)] = 0
    failure_reason: Text | None = None
    telemetry: TelemetryIn | None = None

    def to_report(self) -> ReplicaReport:
        return ReplicaReport(
            name=self.name, state=self.state, endpoint=self.endpoint, restarts=self.restarts,
            failure_reason=self.failure_reason,
            telemetry=self.telemetry.to_report() if self.telemetry is not None else None,
        )


class HeartbeatIn(Strict):
    agent_version: Label
    applied_generation: Annotated[int, Field(ge=0, le=2**62)] | None = None
    replicas: Annotated[list[ReplicaReportIn], Field(max_length=2000)] = Field(default_factory=list)

    @field_validator("replicas")
    @classmethod
    def _unique_names(cls, replicas: list[ReplicaReportIn]) -> list[ReplicaReportIn]:
        names = [r.name for r in replicas]
        if len(names) != len(set(names)):
            raise ValueError("a replica is reported more than once")
        return replicas

    def to_heartbeat(self) -> Heartbeat:
        return Heartbeat(
            agent_version=self.agent_version,
            applied_generation=self.applied_generation,
            replicas=[r.to_report() for r in self.replicas],
        )


class HeartbeatResult(Public):
    cluster: str
    accepted: list[str]
    unknown: list[str]  # names that are not replicas of this cluster (ignored)
    transitions: dict[str, str]  # replica -> status it reached with this heartbeat
    deleted_deployments: list[str]
    desired_generation: int  # newer than what the agent applied: pull the desired state again

    @classmethod
    def of(cls, cluster: str, outcome: HeartbeatOutcome) -> HeartbeatResult:
        return cls(
            cluster=cluster, accepted=outcome.accepted, unknown=outcome.unknown,
            transitions=outcome.transitions, deleted_deployments=outcome.deleted_deployments,
            desired_generation=outcome.desired_generation,
        )
