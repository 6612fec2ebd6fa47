"""From what SkyPilot says about a replica's cluster to the replica's state: one pure decision.

SkyPilot knows clusters, not replicas. A cluster is ``INIT`` (provisioning, or abnormal after a refresh),
``UP``, ``STOPPED``, ``AUTOSTOPPING``, ``PENDING`` (queued, display only) or absent from its table
(terminated). A replica additionally has a launch request (still running, or finished with an error), an
HTTP health probe once the cluster is up, and a history (ready before? stop asked?). ``decide`` maps all
of that to a ``ReplicaStatus`` and says whether the cluster must be torn down.

Spot: SkyPilot does not relaunch an unmanaged spot cluster. After the cloud reclaims it, a status refresh
shows it gone, ``STOPPED`` (clouds that stop spot VMs) or abnormal ``INIT`` (some nodes lost). For a spot
replica each of these is a preemption, reported on the first observation as FAILED with
``preempted=True`` and a detail starting with "preempted", so failover starts at once. The same
observations on on-demand capacity are plain failures (someone or something outside llmfleet).
"""

from __future__ import annotations

from dataclasses import dataclass
from enum import StrEnum

from agents.backends.base import ReplicaState, ReplicaStatus

PREEMPTED_PREFIX = "preempted"
NO_CAPACITY_PREFIX = "no capacity"


class LaunchPhase(StrEnum):
    PENDING = "pending"  # the launch request is queued or running (provisioning, setup, job submit)
    SUCCEEDED = "succeeded"  # provisioned, set up, and the run command submitted
    FAILED = "failed"


@dataclass(frozen=True, slots=True)
class LaunchOutcome:
    phase: LaunchPhase
    error: str = ""
    no_capacity: bool = False  # SkyPilot's ResourcesUnavailableError: the cloud had nothing to give


@dataclass(frozen=True, slots=True)
class ClusterObservation:
    """One cluster as SkyPilot's status call reported it."""

    name: str
    status: str  # sky.ClusterStatus value: INIT, UP, STOPPED, AUTOSTOPPING, PENDING
    unhealthy: bool = False  # INIT because a refresh found it abnormal (SkyPilot's init_kind "unhealthy")
    reason: str = ""  # SkyPilot's explanation for an INIT cluster, when it has one


@dataclass(frozen=True, slots=True)
class ReplicaView:
    """Everything ``decide`` looks at, gathered by the backend for one poll."""

    use_spot: bool
    launch: LaunchOutcome
    cluster: ClusterObservation | None  # None: not in SkyPilot's cluster table
    seen_cluster: bool  # the cluster was observed before (absent now means gone, not "not yet")
    stop_requested: bool = False
    ever_ready: bool = False
    probe_ok: bool | None = None  # None: not probed (cluster not UP or endpoint not known yet)
    probe_failures: int = 0  # consecutive failed probes, this one included
    waited_s: float = 0.0  # since start
    startup_timeout_s: float = 3600.0
    unhealthy_after: int = 3


@dataclass(frozen=True, slots=True)
class Decision:
    status: ReplicaStatus
    teardown: bool = False  # the backend must `sky down` the cluster (it is broken, stopped or late)

    @property
    def final(self) -> bool:
        return self.status.state.terminal


def decide(view: ReplicaView) -> Decision:
    ever = view.ever_ready
    cluster = view.cluster
    if view.stop_requested:
        if cluster is None:
            return Decision(ReplicaStatus(ReplicaState.EXITED, ever_ready=ever))
        return Decision(ReplicaStatus(ReplicaState.DRAINING, ever_ready=ever))

    if view.launch.phase is LaunchPhase.FAILED:
        prefix = NO_CAPACITY_PREFIX if view.launch.no_capacity else "launch failed"
        # A failed launch can leave a half-made cluster behind (SkyPilot keeps it as INIT).
        return _failed(view, f"{prefix}: {view.launch.error}", teardown=cluster is not None)

    if cluster is None:
        if view.launch.phase is LaunchPhase.PENDING and not view.seen_cluster:
            return _starting_or_late(view)
        if view.use_spot:
            return _preempted(view, "spot cluster is gone (terminated by the cloud)", teardown=False)
        return _failed(view, "cluster is gone (terminated outside llmfleet)", teardown=False)

    status = cluster.status
    if status == "STOPPED":
        if view.use_spot:
            return _preempted(view, "spot cluster was stopped by the cloud", teardown=True)
        return _failed(view, "cluster was stopped outside llmfleet", teardown=True)
    if status == "AUTOSTOPPING":
        return _failed(view, "cluster is autostopping (llmfleet never sets autostop)", teardown=True)
    if status in ("INIT", "PENDING"):
        # After a successful start SkyPilot only moves a cluster back to INIT when a refresh finds it
        # abnormal (nodes lost, runtime down), whether or not it labels it so.
        if cluster.unhealthy or ever:
            why = cluster.reason or "SkyPilot reports it abnormal"
            if view.use_spot:
                return _preempted(view, f"spot cluster lost nodes ({why})", teardown=True)
            return _failed(view, f"cluster is unhealthy ({why})", teardown=True)
        return _starting_or_late(view)
    if status != "UP":
        return _failed(view, f"cluster has an unknown SkyPilot status {status!r}", teardown=True)

    if view.probe_ok:
        return Decision(ReplicaStatus(ReplicaState.READY, ever_ready=True))
    if not ever:
        return _starting_or_late(view)
    if view.probe_ok is False and view.probe_failures >= view.unhealthy_after:
        return _failed(view, f"health check failed {view.probe_failures} times in a row", teardown=True)
    # One slow probe on a busy replica is not a failure yet.
    return Decision(ReplicaStatus(ReplicaState.READY, ever_ready=True))


def _starting_or_late(view: ReplicaView) -> Decision:
    if view.waited_s > view.startup_timeout_s:
        return _failed(view, f"not ready after {view.waited_s:.0f} s (startup timeout)", teardown=True)
    return Decision(ReplicaStatus(ReplicaState.STARTING))


def _failed(view: ReplicaView, detail: str, *, teardown: bool) -> Decision:
    return Decision(ReplicaStatus(ReplicaState.FAILED, ever_ready=view.ever_ready, detail=detail), teardown)


def _preempted(view: ReplicaView, why: str, *, teardown: bool) -> Decision:
    status = ReplicaStatus(
        ReplicaState.FAILED, ever_ready=view.ever_ready, detail=f"{PREEMPTED_PREFIX}: {why}", preempted=True
    )
    return Decision(status, teardown)
