"""The dataclasses that cross the workflow/activity boundary (one in, one out per call).

Plain, JSON-friendly fields only: they are stored in workflow histories, so a field may be added with a
default but never renamed or removed without a replay test failing.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Any


@dataclass
class Item:
    """`count` replicas as `variant` on `tensor_parallel` GPUs of one pool (registry.replicas.PlacementItem)."""

    cluster: str
    pool: str
    variant: str
    tensor_parallel: int
    count: int


@dataclass
class Share:
    client_region: str
    cluster: str
    share: float


@dataclass
class DeployInput:
    deployment: str
    generation: int = 0  # the desired_generation this run applies; 0: whatever is current when planning
    exclude_clusters: list[str] = field(default_factory=list)
    ready_timeout_s: float = 600.0
    poll_interval_s: float = 2.0
    plan_time_limit_s: float = 10.0
    actor: str = "workflow:deploy"


@dataclass
class DeployResult:
    deployment: str
    generation: int
    state: str  # deployed, infeasible, restored
    plan_id: int | None = None
    replicas: list[Item] = field(default_factory=list)
    routing_generation: int | None = None
    reason: str = ""


@dataclass
class DeploymentRef:
    deployment: str


@dataclass
class PlacementState:
    deployment: str
    generation: int
    items: list[Item]


@dataclass
class PlanRequest:
    deployment: str
    key: str  # workflow id + run-independent step, so a retried activity finds its own plan
    exclude_clusters: list[str] = field(default_factory=list)
    time_limit_s: float = 10.0


@dataclass
class PlanOutcome:
    ok: bool
    plan_id: int | None
    status: str
    generation: int
    items: list[Item] = field(default_factory=list)
    shares: list[Share] = field(default_factory=list)
    reason: str = ""


@dataclass
class ApplyPlacement:
    deployment: str
    items: list[Item]
    actor: str


@dataclass
class ApplyResult:
    created: list[str]
    drained: list[str]


@dataclass
class WaitReady:
    deployment: str
    items: list[Item]
    timeout_s: float
    poll_interval_s: float
    version: str = ""  # empty: the deployment's own version


@dataclass
class ReadyResult:
    ready: int
    wanted: int


@dataclass
class PublishShares:
    deployment: str
    shares: list[Share]
    actor: str


@dataclass
class RoutingResult:
    generation: int


@dataclass
class MarkObserved:
    deployment: str
    generation: int


@dataclass
class Done:
    ok: bool = True


# ---- rollouts ---------------------------------------------------------------------------------------

DEFAULT_STEPS = [5.0, 25.0, 50.0, 100.0]


@dataclass
class RolloutInput:
    deployment: str
    to_version: str
    steps: list[float] = field(default_factory=lambda: list(DEFAULT_STEPS))
    mode: str = "canary"  # canary | blue_green
    bake_s: float = 300.0
    ready_timeout_s: float = 600.0
    poll_interval_s: float = 2.0
    min_requests: float = 20.0  # per arm and window; less is inconclusive
    max_latency_ratio: float = 1.2
    max_error_rate_delta: float = 0.01
    actor: str = "workflow:rollout"


@dataclass
class RolloutResult:
    deployment: str
    from_version: str
    to_version: str
    state: str  # promoted, rolled_back, aborted
    steps: list[float]
    verdicts: list[dict[str, Any]]


@dataclass
class BeginRollout:
    deployment: str
    to_version: str
    steps: list[float]
    workflow_id: str


@dataclass
class RolloutStart:
    from_version: str
    to_version: str
    baseline: list[Item]  # the old version's placement: the shape canary and green copies follow
    slo_ttft_p95_ms: float
    slo_tpot_p95_ms: float


@dataclass
class PlaceVersion:
    deployment: str
    version: str
    items: list[Item]
    actor: str


@dataclass
class SetWeights:
    deployment: str
    weights: dict[str, float]  # version -> percent; empty: 100 % on the deployment's own version
    actor: str


@dataclass
class AnalyseStep:
    deployment: str
    baseline_version: str
    canary_version: str
    since: str  # ISO time: only telemetry received after the step started counts
    min_requests: float
    max_latency_ratio: float
    max_error_rate_delta: float
    slo_ttft_p95_ms: float
    slo_tpot_p95_ms: float
    slo_only: bool = False  # blue-green: judge the new colour against the SLO alone


@dataclass
class ArmMetrics:
    requests: float
    errors: float
    ttft_p95_ms: float | None
    tpot_p95_ms: float | None


@dataclass
class StepVerdict:
    verdict: str  # pass, fail, inconclusive
    reasons: list[str]
    canary: ArmMetrics
    baseline: ArmMetrics
    source: str = "telemetry"  # telemetry (agents' windows) or prometheus (gateway histograms)


@dataclass
class RecordRollout:
    workflow_id: str
    state: str
    current_step: int
    steps: list[float]
    verdict: dict[str, Any] | None = None


@dataclass
class FinishRollout:
    deployment: str
    workflow_id: str
    from_version: str
    to_version: str
    outcome: str  # promoted, rolled_back, aborted
    items: list[Item]  # promoted: the new version's full placement
    actor: str


# ---- autoscaling ------------------------------------------------------------------------------------


@dataclass
class AutoscaleInput:
    deployment: str
    interval_s: float = 30.0
    replica_capacity_rps: float | None = None  # None: the performance model's, at the declared request mix
    target_utilisation: float = 0.7
    up_alpha: float = 0.8
    down_alpha: float = 0.2
    down_delay_intervals: int = 3
    iterations_per_run: int = 100  # then continue-as-new, so the history stays short
    actor: str = "workflow:autoscale"
    plan_time_limit_s: float = 5.0  # per MILP solve of a re-plan
    ready_timeout_s: float = 900.0  # new replicas of a re-plan must be ready within this, else it is undone
    poll_interval_s: float = 2.0
    # Carried across continue-as-new:
    paused: bool = False
    forecast_rps: float | None = None
    lower_for: int = 0
    speeds: dict[str, float] = field(default_factory=dict)  # accelerator -> speed learned from latency


@dataclass
class ObserveLoad:
    deployment: str
    replica_capacity_rps: float | None
    speeds: dict[str, float] = field(default_factory=dict)  # the estimate so far (scheduler.speed_calibration)


@dataclass
class LoadObservation:
    rps: float | None
    replicas: int
    capacity_rps: float
    min_replicas: int
    max_replicas: int | None
    budget_per_hour: float | None
    price_per_replica_hour: float
    speeds: dict[str, float] = field(default_factory=dict)  # the estimate with this window blended in


@dataclass
class ScaleTo:
    deployment: str
    replicas: int
    actor: str


@dataclass
class ReplanRequest:
    deployment: str
    forecast_rps: float
    observed_capacity_rps: float  # what one replica sustains, as the policy saw it
    target_utilisation: float
    key: str  # workflow id / run id / interval: a retried activity finds its plan instead of solving again
    time_limit_s: float = 5.0


@dataclass
class ReplanOutcome:
    ok: bool
    reason: str
    previous: list[Item] = field(default_factory=list)  # the placement when it was planned
    items: list[Item] = field(default_factory=list)
    shares: list[Share] = field(default_factory=list)
    plan_id: int | None = None


# ---- failover ---------------------------------------------------------------------------------------


@dataclass
class FailoverInput:
    cluster: str
    reason: str = "missed heartbeats"
    heartbeat_threshold_s: float = 30.0  # healthy again: a heartbeat newer than this
    poll_interval_s: float = 5.0
    ready_timeout_s: float = 600.0
    recovery_timeout_s: float = 7 * 24 * 3600.0
    actor: str = "workflow:failover"


@dataclass
class FailoverResult:
    cluster: str
    deployments: list[str]
    state: str  # recovered, evacuated (the cluster did not come back in time)
    replanned: dict[str, str] = field(default_factory=dict)  # deployment -> deploy outcome


@dataclass
class MarkCluster:
    cluster: str
    health: str
    reason: str
    actor: str


@dataclass
class Evacuation:
    cluster: str
    deployments: list[str]
    drained: list[str]


@dataclass
class WaitHealthy:
    cluster: str
    heartbeat_threshold_s: float
    poll_interval_s: float
    timeout_s: float


@dataclass
class WatchInput:
    heartbeat_threshold_s: float = 30.0
    interval_s: float = 5.0
    failover_poll_interval_s: float = 5.0
    failover_ready_timeout_s: float = 600.0
    iterations_per_run: int = 200
    watch_preemptions: bool = True
    preemption_lookback_s: float = 900.0  # a preemption older than this is history, not news
    # Carried across continue-as-new: preempted replicas already acted on (pruned to the lookback).
    handled_preemptions: list[str] = field(default_factory=list)


@dataclass
class FindLost:
    heartbeat_threshold_s: float


@dataclass
class LostClusters:
    clusters: list[str]
    reasons: list[str]


# ---- preemption (spot capacity reclaimed) -------------------------------------------------------------


@dataclass
class FindPreempted:
    lookback_s: float
    handled: list[str] = field(default_factory=list)


@dataclass
class PreemptedGroup:
    deployment: str
    replicas: list[str]


@dataclass
class Preemptions:
    new: list[PreemptedGroup]  # by deployment, replicas not in `handled`
    recent: list[str]  # every preempted replica within the lookback (what `handled` is pruned to)


@dataclass
class ShiftFromPreempted:
    deployment: str
    replicas: list[str]
    actor: str


@dataclass
class Shifted:
    deployment: str
    generation: int | None  # None: nothing published (default routing already follows ready replicas)
    reduced: list[str] = field(default_factory=list)  # clusters whose shares went down
