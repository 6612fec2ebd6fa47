"""Replicas: one model server each. The registry records facts; status is derived from them in one place.

Three kinds of writers meet here, each through one function:
- whoever decides placement (the API now, the DeployWorkflow later) calls `set_placement`, which creates
  replica rows or asks surplus ones to drain;
- a cluster's agent reads `desired_for_cluster` (a level-triggered snapshot with a generation) and
  reports what it sees through `record_heartbeat`, which sets each fact once, so a repeated, late or
  reordered heartbeat cannot move a replica backwards;
- the last terminated replica of a deployment being deleted removes that deployment.
"""

from __future__ import annotations

import enum
import hashlib
import re
from collections import defaultdict
from dataclasses import dataclass, field
from datetime import datetime

from sqlalchemy import Float, ForeignKey, Integer, String, select
from sqlalchemy.orm import Mapped, Session, mapped_column, relationship, selectinload

from registry import audit
from registry.base import Base, CreatedAtMixin, utcnow
from registry.clusters import Cluster, Pool, bump_desired_generation, get_cluster, record_agent_contact
from registry.deployments import Deployment, DeploymentPhase
from registry.enums import str_enum
from registry.errors import Conflict, Invalid
from registry.model_versions import ModelVersion, Variant

NAME_MAX = 128


class ReplicaStatus(enum.StrEnum):
    PENDING = "pending"
    PROVISIONING = "provisioning"
    STARTING = "starting"
    READY = "ready"
    DRAINING = "draining"
    TERMINATED = "terminated"
    FAILED = "failed"
    PREEMPTED = "preempted"

    @property
    def is_terminal(self) -> bool:
        return self in (ReplicaStatus.TERMINATED, ReplicaStatus.FAILED, ReplicaStatus.PREEMPTED)


class DesiredState(enum.StrEnum):
    RUNNING = "running"
    STOPPED = "stopped"  # drain, then stop


class Replica(CreatedAtMixin, Base):
    __tablename__ = "replicas"

    id: Mapped[int] = mapped_column(primary_key=True)
    name: Mapped[str] = mapped_column(String(NAME_MAX), unique=True)
    deployment_id: Mapped[int] = mapped_column(ForeignKey("deployments.id", ondelete="CASCADE"), index=True)
    version_id: Mapped[int] = mapped_column(ForeignKey("model_versions.id"))
    variant: Mapped[str] = mapped_column(String(64))
    cluster_id: Mapped[int] = mapped_column(ForeignKey("clusters.id"), index=True)
    pool_id: Mapped[int] = mapped_column(ForeignKey("pools.id"))
    tensor_parallel: Mapped[int] = mapped_column(Integer, default=1)
    desired_state: Mapped[DesiredState] = mapped_column(str_enum(DesiredState), default=DesiredState.RUNNING)
    # Recorded facts, each set once by whoever observed it (agent heartbeat, workflow activity).
    provisioning_at: Mapped[datetime | None] = mapped_column(default=None)
    started_at: Mapped[datetime | None] = mapped_column(default=None)
    ready_at: Mapped[datetime | None] = mapped_column(default=None)
    drain_requested_at: Mapped[datetime | None] = mapped_column(default=None)
    terminated_at: Mapped[datetime | None] = mapped_column(default=None)
    failed_at: Mapped[datetime | None] = mapped_column(default=None)
    preempted_at: Mapped[datetime | None] = mapped_column(default=None)
    failure_reason: Mapped[str | None] = mapped_column(String(1000), default=None)
    endpoint: Mapped[str | None] = mapped_column(String(256), default=None)
    restarts: Mapped[int] = mapped_column(Integer, default=0)

    cluster: Mapped[Cluster] = relationship()
    pool: Mapped[Pool] = relationship()
    deployment: Mapped[Deployment] = relationship()
    model_version: Mapped[ModelVersion] = relationship()
    telemetry: Mapped[ReplicaTelemetry | None] = relationship(
        back_populates="replica", cascade="all, delete-orphan", passive_deletes=True
    )

    @property
    def status(self) -> ReplicaStatus:
        return derive_status(self)


class ReplicaTelemetry(Base):
    """The latest windowed telemetry an agent reported for one replica (one row per replica, overwritten).

    History belongs in Prometheus; the registry keeps only what placement and autoscaling read next.
    """

    __tablename__ = "replica_telemetry"

    replica_id: Mapped[int] = mapped_column(ForeignKey("replicas.id", ondelete="CASCADE"), primary_key=True)
    observed_at: Mapped[datetime]  # the agent's clock at the end of the window
    received_at: Mapped[datetime]  # the control plane's clock
    agent_state: Mapped[str] = mapped_column(String(32))  # what the agent saw, e.g. "ready", "starting"
    window_s: Mapped[float] = mapped_column(Float)
    request_rate: Mapped[float] = mapped_column(Float, default=0.0)  # finished requests/s
    prompt_tokens_per_s: Mapped[float] = mapped_column(Float, default=0.0)
    generation_tokens_per_s: Mapped[float] = mapped_column(Float, default=0.0)
    ttft_p95_ms: Mapped[float | None] = mapped_column(Float, default=None)
    tpot_p95_ms: Mapped[float | None] = mapped_column(Float, default=None)
    e2e_p95_ms: Mapped[float | None] = mapped_column(Float, default=None)
    running: Mapped[float | None] = mapped_column(Float, default=None)
    queue_length: Mapped[float | None] = mapped_column(Float, default=None)
    kv_cache_usage: Mapped[float | None] = mapped_column(Float, default=None)  # 0..1
    errors: Mapped[int] = mapped_column(Integer, default=0)  # failed requests and failed scrapes in the window

    replica: Mapped[Replica] = relationship(back_populates="telemetry")


def derive_status(replica: Replica) -> ReplicaStatus:
    """The single place that turns recorded facts into a lifecycle status; later facts win."""
    if replica.terminated_at is not None:
        return ReplicaStatus.TERMINATED
    if replica.preempted_at is not None:
        return ReplicaStatus.PREEMPTED
    if replica.failed_at is not None:
        return ReplicaStatus.FAILED
    if replica.drain_requested_at is not None:
        return ReplicaStatus.DRAINING
    if replica.ready_at is not None:
        return ReplicaStatus.READY
    if replica.started_at is not None:
        return ReplicaStatus.STARTING
    if replica.provisioning_at is not None:
        return ReplicaStatus.PROVISIONING
    return ReplicaStatus.PENDING


def replicas_of(session: Session, deployment_id: int) -> list[Replica]:
    query = (
        select(Replica)
        .where(Replica.deployment_id == deployment_id)
        .options(selectinload(Replica.telemetry))
        .order_by(Replica.id)
    )
    return list(session.scalars(query))


def live_replicas_of(session: Session, deployment_id: int) -> list[Replica]:
    return [r for r in replicas_of(session, deployment_id) if not r.status.is_terminal]


def effective_desired_state(replica: Replica) -> DesiredState:
    # A deployment being deleted wants all its replicas gone, whatever each row still says.
    if replica.deployment.phase is DeploymentPhase.DELETING:
        return DesiredState.STOPPED
    return replica.desired_state


def request_drain(replica: Replica, now: datetime) -> bool:
    """Ask a live replica to drain; returns False when it was already asked (or is gone)."""
    if replica.status.is_terminal or replica.desired_state is DesiredState.STOPPED:
        return False
    replica.desired_state = DesiredState.STOPPED
    if replica.drain_requested_at is None:
        replica.drain_requested_at = now
    return True


def drain_deployment(session: Session, deployment: Deployment, *, actor: str) -> list[str]:
    """Ask every live replica of a deployment to drain (on delete); returns the names asked."""
    now = utcnow()
    drained = [r for r in live_replicas_of(session, deployment.id) if request_drain(r, now)]
    if drained:
        bump_desired_generation(session, {r.cluster_id for r in drained})
        audit.record(
            session, team=deployment.team, actor=actor, action="drain", object_type="deployment",
            object_id=deployment.name, details={"replicas": [r.name for r in drained]},
        )
    return [r.name for r in drained]


# ---- placement: what should run where ------------------------------------------------------------


@dataclass(frozen=True, slots=True)
class PlacementItem:
    """`count` replicas of the deployment's current version, as `variant` on `tensor_parallel` GPUs of a pool."""

    cluster: str
    pool: str
    variant: str
    tensor_parallel: int
    count: int


@dataclass(slots=True)
class PlacementChange:
    created: list[str] = field(default_factory=list)
    drained: list[str] = field(default_factory=list)

    @property
    def changed(self) -> bool:
        return bool(self.created or self.drained)


_Key = tuple[int, int, str, int]  # (cluster id, pool id, variant, tensor parallel)


def _resolve_placement(
    session: Session, deployment: Deployment, items: list[PlacementItem], version: ModelVersion
) -> dict[_Key, tuple[int, Cluster, Pool]]:
    """Check every reference of a placement; returns wanted counts by key."""
    allowed = {v.name for v in version.variants}
    if deployment.variants:
        allowed &= set(deployment.variants)
    wanted: dict[_Key, tuple[int, Cluster, Pool]] = {}
    for i, item in enumerate(items):
        where = f"replicas[{i}]"
        cluster = session.scalar(select(Cluster).where(Cluster.name == item.cluster))
        if cluster is None:
            raise Invalid(f"cluster {item.cluster!r} not found", field=f"{where}.cluster")
        pool = next((p for p in cluster.pools if p.name == item.pool), None)
        if pool is None:
            raise Invalid(f"pool {item.pool!r} not found in cluster {item.cluster!r}", field=f"{where}.pool")
        if item.variant not in allowed:
            raise Invalid(
                f"variant {item.variant!r} is not allowed for deployment {deployment.name!r} "
                f"(allowed: {', '.join(sorted(allowed))})", field=f"{where}.variant",
            )
        if not 1 <= item.tensor_parallel <= pool.gpus_per_instance:
            raise Invalid(
                f"tensor_parallel {item.tensor_parallel} does not fit {pool.instance_type} "
                f"({pool.gpus_per_instance} GPU per instance)", field=f"{where}.tensor_parallel",
            )
        if item.count < 0:
            raise Invalid("count must be >= 0", field=f"{where}.count")
        key = (cluster.id, pool.id, item.variant, item.tensor_parallel)
        if key in wanted:
            raise Invalid("the same cluster, pool, variant and tensor_parallel appear twice", field=where)
        wanted[key] = (item.count, cluster, pool)
    return wanted


def replica_name(deployment: str, cluster: str, n: int) -> str:
    """Readable and unique: `{deployment}-{cluster}-{n}`; the cluster part is hashed only if too long."""
    name = f"{deployment}-{cluster}-{n}"
    if len(name) <= NAME_MAX:
        return name
    return f"{deployment}-{hashlib.sha256(cluster.encode()).hexdigest()[:10]}-{n}"


def _next_numbers(existing: list[Replica], deployment: str) -> dict[str, int]:
    """Per cluster name, the next unused replica number (numbers are never reused, so metrics and logs of
    an old replica are never mistaken for a new one's)."""
    pattern = re.compile(rf"^{re.escape(deployment)}-(.+)-(\d+)$")
    highest: dict[str, int] = defaultdict(int)
    for replica in existing:
        match = pattern.match(replica.name)
        if match:
            highest[replica.cluster.name] = max(highest[replica.cluster.name], int(match.group(2)))
    return highest


def _drain_order(replica: Replica) -> tuple[int, int]:
    # Surplus replicas that serve nothing yet go first; among equals, the newest.
    serving = 1 if replica.status is ReplicaStatus.READY else 0
    return (serving, -replica.id)


def _rollout_versions(session: Session, deployment: Deployment) -> set[int]:
    """Versions an unfinished rollout of the deployment is moving between: their replicas belong to the
    rollout, and a placement of another version must leave them alone."""
    from registry.rollouts import active_rollout  # rollouts import nothing of replicas; avoid a cycle anyway

    rollout = active_rollout(session, deployment.id)
    return set() if rollout is None else {rollout.from_version_id, rollout.to_version_id}


def set_placement(
    session: Session, *, deployment: Deployment, items: list[PlacementItem], actor: str,
    version: ModelVersion | None = None,
) -> PlacementChange:
    """Make the deployment's live replicas of `version` (default: the deployment's own) match `items`
    (level-triggered: the same placement twice changes nothing). Missing replicas are created `pending`;
    surplus ones, and any not covered by an item (another variant or pool), are asked to drain. Replicas of
    other versions are drained too, unless an unfinished rollout is moving between those versions (canary
    and blue-green run two versions side by side)."""
    if deployment.phase is DeploymentPhase.DELETING:
        raise Conflict(f"deployment {deployment.name!r} is being deleted")
    target = version if version is not None else deployment.model_version
    if target.model_id != deployment.model_id:
        raise Invalid(f"version {target.version!r} is not a version of the deployment's model", field="version")
    wanted = _resolve_placement(session, deployment, items, target)
    now = utcnow()
    existing = replicas_of(session, deployment.id)
    protected = _rollout_versions(session, deployment) - {target.id}
    live: dict[_Key, list[Replica]] = defaultdict(list)
    uncovered: list[Replica] = []  # wanted running, but of another version: no item can cover them
    for replica in existing:
        if not replica.status.is_terminal and replica.desired_state is DesiredState.RUNNING:
            if replica.version_id == target.id:
                live[(replica.cluster_id, replica.pool_id, replica.variant, replica.tensor_parallel)].append(replica)
            elif replica.version_id not in protected:
                uncovered.append(replica)
    change = PlacementChange()
    touched: set[int] = set()
    numbers = _next_numbers(existing, deployment.name)
    for key, (count, cluster, pool) in wanted.items():
        have = live.pop(key, [])
        for replica in sorted(have, key=_drain_order)[: max(0, len(have) - count)]:
            request_drain(replica, now)
            change.drained.append(replica.name)
            touched.add(replica.cluster_id)
        for _ in range(count - len(have)):
            numbers[cluster.name] += 1
            replica = Replica(
                name=replica_name(deployment.name, cluster.name, numbers[cluster.name]),
                deployment_id=deployment.id, version_id=target.id, variant=key[2],
                cluster_id=cluster.id, pool_id=pool.id, tensor_parallel=key[3],
                desired_state=DesiredState.RUNNING, restarts=0, created_at=now,
            )
            session.add(replica)
            change.created.append(replica.name)
            touched.add(cluster.id)
    for replica in uncovered + [r for leftovers in live.values() for r in leftovers]:
        request_drain(replica, now)
        change.drained.append(replica.name)
        touched.add(replica.cluster_id)
    if change.changed:
        session.flush()
        bump_desired_generation(session, touched)
        audit.record(
            session, team=deployment.team, actor=actor, action="set_placement", object_type="deployment",
            object_id=deployment.name,
            details={
                "version": target.version,
                "placement": [
                    {"cluster": i.cluster, "pool": i.pool, "variant": i.variant,
                     "tensor_parallel": i.tensor_parallel, "count": i.count} for i in items
                ],
                "created": change.created,
                "drained": change.drained,
            },
        )
    return change


def current_placement(
    session: Session, deployment: Deployment, version_id: int | None = None
) -> list[PlacementItem]:
    """The live, wanted replicas of a deployment's version (default: its own) grouped the way
    `set_placement` takes them."""
    wanted_version = version_id if version_id is not None else deployment.version_id
    counts: dict[tuple[str, str, str, int], int] = defaultdict(int)
    for replica in live_replicas_of(session, deployment.id):
        if replica.desired_state is DesiredState.RUNNING and replica.version_id == wanted_version:
            counts[(replica.cluster.name, replica.pool.name, replica.variant, replica.tensor_parallel)] += 1
    return [PlacementItem(c, p, v, tp, n) for (c, p, v, tp), n in sorted(counts.items())]


# ---- the agent's view: desired replicas of one cluster ------------------------------------------


@dataclass(frozen=True, slots=True)
class DesiredReplica:
    replica: Replica
    desired_state: DesiredState
    variant: Variant


@dataclass(frozen=True, slots=True)
class DesiredSnapshot:
    cluster: Cluster
    generation: int
    replicas: list[DesiredReplica]


def desired_for_cluster(session: Session, cluster_name: str) -> DesiredSnapshot:
    """Every live replica the cluster's agent should know about (running or draining), in name order.

    Terminal replicas are left out: there is nothing left to do for them. The snapshot is complete, so an
    agent can act on it alone (level-triggered); `generation` orders snapshots.
    """
    cluster = get_cluster(session, cluster_name)
    rows = session.scalars(
        select(Replica)
        .where(Replica.cluster_id == cluster.id, Replica.terminated_at.is_(None), Replica.failed_at.is_(None),
               Replica.preempted_at.is_(None))
        .options(selectinload(Replica.deployment), selectinload(Replica.pool),
                 selectinload(Replica.model_version).selectinload(ModelVersion.variants))
        .order_by(Replica.name)
    )
    replicas: list[DesiredReplica] = []
    for replica in rows:
        # Versions are immutable and a placement only names existing variants, so the lookup always hits.
        variant = next(v for v in replica.model_version.variants if v.name == replica.variant)
        replicas.append(DesiredReplica(replica, effective_desired_state(replica), variant))
    return DesiredSnapshot(cluster=cluster, generation=cluster.desired_generation, replicas=replicas)


# ---- the agent's report: heartbeat ---------------------------------------------------------------


class ReportedState(enum.StrEnum):
    """What an agent saw a replica doing. Each state maps to at most one recorded fact."""

    PROVISIONING = "provisioning"
    STARTING = "starting"
    READY = "ready"
    DRAINING = "draining"
    TERMINATED = "terminated"
    FAILED = "failed"
    PREEMPTED = "preempted"


@dataclass(frozen=True, slots=True)
class TelemetryReport:
    observed_at: datetime
    window_s: float
    request_rate: float = 0.0
    prompt_tokens_per_s: float = 0.0
    generation_tokens_per_s: float = 0.0
    ttft_p95_ms: float | None = None
    tpot_p95_ms: float | None = None
    e2e_p95_ms: float | None = None
    running: float | None = None
    queue_length: float | None = None
    kv_cache_usage: float | None = None
    errors: int = 0


@dataclass(frozen=True, slots=True)
class ReplicaReport:
    name: str
    state: ReportedState
    endpoint: str | None = None
    restarts: int = 0
    failure_reason: str | None = None
    telemetry: TelemetryReport | None = None


@dataclass(frozen=True, slots=True)
class Heartbeat:
    agent_version: str
    applied_generation: int | None
    replicas: list[ReplicaReport]


@dataclass(slots=True)
class HeartbeatOutcome:
    accepted: list[str] = field(default_factory=list)
    unknown: list[str] = field(default_factory=list)  # not replicas of this cluster: ignored
    transitions: dict[str, str] = field(default_factory=dict)  # replica -> new status, for this heartbeat
    deleted_deployments: list[str] = field(default_factory=list)
    desired_generation: int = 0


def _apply_report(replica: Replica, report: ReplicaReport, now: datetime) -> None:
    """Record the fact a report implies, once. Later facts never erase earlier ones, so a stale heartbeat
    (say `starting` arriving after `ready`) changes nothing."""
    state = report.state
    if state is ReportedState.PROVISIONING and replica.provisioning_at is None:
        replica.provisioning_at = now
    elif state in (ReportedState.STARTING, ReportedState.READY, ReportedState.DRAINING):
        if replica.started_at is None:
            replica.started_at = now
        if state is ReportedState.READY and replica.ready_at is None:
            replica.ready_at = now
    elif state is ReportedState.TERMINATED:
        if replica.drain_requested_at is not None or effective_desired_state(replica) is DesiredState.STOPPED:
            if replica.terminated_at is None:
                replica.terminated_at = now
        elif replica.failed_at is None:
            # Gone although nobody asked it to stop: that is a failure, not a clean end.
            replica.failed_at = now
            replica.failure_reason = (report.failure_reason or "terminated without a drain request")[:1000]
    elif state is ReportedState.FAILED and replica.failed_at is None:
        replica.failed_at = now
        replica.failure_reason = (report.failure_reason or "failed (no reason reported)")[:1000]
    elif state is ReportedState.PREEMPTED and replica.preempted_at is None:
        replica.preempted_at = now
    if report.endpoint is not None and state not in (ReportedState.TERMINATED, ReportedState.FAILED):
        replica.endpoint = report.endpoint[:256]
    replica.restarts = max(replica.restarts, report.restarts)  # a late report never lowers the count


def _apply_telemetry(replica: Replica, report: ReplicaReport, now: datetime) -> None:
    sample = report.telemetry
    if sample is None:
        return
    row = replica.telemetry
    if row is not None and row.observed_at > sample.observed_at:
        return  # an older window arriving late
    if row is None:
        row = ReplicaTelemetry(replica_id=replica.id)
        replica.telemetry = row
    row.observed_at = sample.observed_at
    row.received_at = now
    row.agent_state = report.state.value
    row.window_s = sample.window_s
    row.request_rate = sample.request_rate
    row.prompt_tokens_per_s = sample.prompt_tokens_per_s
    row.generation_tokens_per_s = sample.generation_tokens_per_s
    row.ttft_p95_ms = sample.ttft_p95_ms
    row.tpot_p95_ms = sample.tpot_p95_ms
    row.e2e_p95_ms = sample.e2e_p95_ms
    row.running = sample.running
    row.queue_length = sample.queue_length
    row.kv_cache_usage = sample.kv_cache_usage
    row.errors = sample.errors


def record_heartbeat(
    session: Session, *, cluster_name: str, heartbeat: Heartbeat, now: datetime | None = None
) -> HeartbeatOutcome:
    """Apply an agent's heartbeat: the cluster's contact, each replica's facts and latest telemetry, and the
    end of deployments whose deletion has drained. Idempotent: sending it twice changes nothing more."""
    now = now or utcnow()
    # One heartbeat of a cluster at a time: an agent's retry overlapping its original request must not
    # record a fact (and its audit event) twice.
    cluster = get_cluster(session, cluster_name, for_update=True)
    record_agent_contact(
        cluster, agent_version=heartbeat.agent_version, applied_generation=heartbeat.applied_generation, now=now
    )
    outcome = HeartbeatOutcome()
    names = [r.name for r in heartbeat.replicas]
    rows = {
        r.name: r
        for r in session.scalars(
            select(Replica)
            .where(Replica.cluster_id == cluster.id, Replica.name.in_(names))
            .options(selectinload(Replica.deployment), selectinload(Replica.telemetry))
        )
    } if names else {}
    ended: set[int] = set()
    for report in heartbeat.replicas:
        replica = rows.get(report.name)
        if replica is None:
            outcome.unknown.append(report.name)
            continue
        before = replica.status
        _apply_report(replica, report, now)
        _apply_telemetry(replica, report, now)
        outcome.accepted.append(report.name)
        after = replica.status
        if after is not before:
            outcome.transitions[replica.name] = after.value
            details: dict[str, object] = {"from": before.value, "to": after.value}
            if after is ReplicaStatus.FAILED:
                details["reason"] = replica.failure_reason
            audit.record(
                session, team=replica.deployment.team, actor=f"agent:{cluster.name}", action="observe",
                object_type="replica", object_id=replica.name, details=details,
            )
            if after.is_terminal:
                ended.add(replica.cluster_id)
                _finish_deletion(session, replica.deployment, cluster.name, outcome)
    session.flush()
    if ended:
        # Terminal replicas leave the snapshot: the agent should see a new generation and forget them.
        bump_desired_generation(session, ended)
        session.refresh(cluster)
    outcome.desired_generation = cluster.desired_generation
    return outcome


def _finish_deletion(session: Session, deployment: Deployment, cluster: str, outcome: HeartbeatOutcome) -> None:
    if deployment.phase is not DeploymentPhase.DELETING or deployment.name in outcome.deleted_deployments:
        return
    session.flush()
    if live_replicas_of(session, deployment.id):
        return
    audit.record(
        session, team=deployment.team, actor=f"agent:{cluster}", action="deleted", object_type="deployment",
        object_id=deployment.name, details={"reason": "every replica drained"},
    )
    outcome.deleted_deployments.append(deployment.name)
    session.delete(deployment)
