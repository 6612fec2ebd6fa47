"""Activities of the RolloutWorkflow: thin, idempotent adapters over registry placement, routing weights,
rollout records and the step's measurements (the gateways' histograms in Prometheus when
`LLMFLEET_PROMETHEUS_URL` is set, else the agents' telemetry); the verdict itself comes from the pure
`scheduler.canary`."""

from __future__ import annotations

from collections.abc import Callable
from datetime import datetime

import httpx
from sqlalchemy.orm import Session, sessionmaker
from temporalio import activity
from temporalio.exceptions import ApplicationError

from registry import routing
from registry.base import utcnow
from registry.db import transaction
from registry.deployments import Deployment, switch_version
from registry.errors import Conflict, Invalid
from registry.model_versions import ModelVersion, resolve_version
from registry.replicas import PlacementItem, ReplicaStatus, current_placement, live_replicas_of, set_placement
from registry.rollouts import RolloutState, begin_rollout, record_progress, rollout_by_workflow
from scheduler.canary import ArmSample, CanaryPolicy, analyse, analyse_against_slo
from workflows.activities import _deployment
from workflows.prometheus_canary import PrometheusArms, PrometheusError
from workflows.settings import WorkflowSettings
from workflows.types import (
    AnalyseStep,
    ApplyResult,
    ArmMetrics,
    BeginRollout,
    Done,
    FinishRollout,
    Item,
    PlaceVersion,
    RecordRollout,
    RolloutStart,
    RoutingResult,
    SetWeights,
    StepVerdict,
)


def _version(deployment: Deployment, ref: str) -> ModelVersion:
    try:
        return resolve_version(deployment.model, ref)
    except Exception as error:  # NotFound and friends: a wrong version never becomes right by retrying
        raise ApplicationError(f"version {ref!r}: {error}", type="Invalid", non_retryable=True) from None


def _non_retryable(error: Invalid | Conflict) -> ApplicationError:
    return ApplicationError(str(error.detail), type=type(error).__name__, non_retryable=True)


class RolloutActivities:
    def __init__(self, sessions: sessionmaker[Session], *, clock: Callable[[], datetime] = utcnow,
                 settings: WorkflowSettings | None = None,
                 prometheus_transport: httpx.AsyncBaseTransport | None = None) -> None:
        self._sessions = sessions
        self._clock = clock
        self._settings = settings if settings is not None else WorkflowSettings()
        base = self._settings.prometheus_base
        self._prometheus = None if base is None else PrometheusArms(
            base, timeout_s=self._settings.prometheus_timeout_s, transport=prometheus_transport)

    def all(self) -> list[Callable[..., object]]:
        return [self.begin, self.place_version, self.set_weights, self.analyse_step, self.record, self.finish]

    @activity.defn(name="rollout_begin")
    async def begin(self, request: BeginRollout) -> RolloutStart:
        with transaction(self._sessions) as session:
            row = _deployment(session, request.deployment)
            existing = rollout_by_workflow(session, request.workflow_id)
            if existing is not None and not existing.state.is_final:
                # A retry after the row was written: the rollout's "from" is what it recorded, not what
                # the deployment says now.
                from_version = session.get(ModelVersion, existing.from_version_id)
                assert from_version is not None
            else:
                from_version = row.model_version
            target = _version(row, request.to_version)
            if target.id == from_version.id:
                raise ApplicationError(f"{request.deployment} already serves {target.version}",
                                       type="Invalid", non_retryable=True)
            try:
                begin_rollout(session, deployment_id=row.id, from_version_id=from_version.id,
                              to_version_id=target.id, steps=request.steps, workflow_id=request.workflow_id,
                              now=self._clock())
            except Conflict as error:
                raise _non_retryable(error) from None
            baseline = [Item(p.cluster, p.pool, p.variant, p.tensor_parallel, p.count)
                        for p in current_placement(session, row, from_version.id)]
            return RolloutStart(from_version.version, target.version, baseline, row.ttft_p95_ms, row.tpot_p95_ms)

    @activity.defn(name="rollout_place_version")
    async def place_version(self, request: PlaceVersion) -> ApplyResult:
        with transaction(self._sessions) as session:
            row = _deployment(session, request.deployment)
            items = [PlacementItem(i.cluster, i.pool, i.variant, i.tensor_parallel, i.count) for i in request.items]
            try:
                change = set_placement(session, deployment=row, items=items, actor=request.actor,
                                       version=_version(row, request.version))
            except (Invalid, Conflict) as error:
                raise _non_retryable(error) from None
            return ApplyResult(change.created, change.drained)

    @activity.defn(name="rollout_set_weights")
    async def set_weights(self, request: SetWeights) -> RoutingResult:
        with transaction(self._sessions) as session:
            row = _deployment(session, request.deployment)
            try:
                generation = routing.set_version_weights(session, deployment=row, weights=request.weights,
                                                         actor=request.actor)
            except (Invalid, Conflict) as error:
                raise _non_retryable(error) from None
            return RoutingResult(generation)

    @activity.defn(name="rollout_analyse_step")
    async def analyse_step(self, request: AnalyseStep) -> StepVerdict:
        since = datetime.fromisoformat(request.since)
        policy = CanaryPolicy(min_requests=request.min_requests, max_latency_ratio=request.max_latency_ratio,
                              max_error_rate_delta=request.max_error_rate_delta,
                              slo_ttft_p95_ms=request.slo_ttft_p95_ms, slo_tpot_p95_ms=request.slo_tpot_p95_ms)
        with transaction(self._sessions) as session:
            row = _deployment(session, request.deployment)
            canary_version = _version(row, request.canary_version)
            baseline_version = _version(row, request.baseline_version)
            if self._prometheus is None:
                canary = self._arm(session, row, canary_version.id, since)
                baseline = self._arm(session, row, baseline_version.id, since)
                source = "telemetry"
            else:
                names = (canary_version.version, baseline_version.version)
        if self._prometheus is not None:
            # The step's own traffic: since it began, but never less than a few scrapes' worth.
            seconds = max((self._clock() - since).total_seconds(), self._settings.canary_min_window_s)
            try:
                arms = await self._prometheus.arms(request.deployment, list(names), seconds)
            except PrometheusError as error:
                empty = ArmMetrics(0.0, 0.0, None, None)
                return StepVerdict("inconclusive", [f"Prometheus did not answer: {error}"], empty, empty,
                                   source="prometheus")
            canary, baseline = arms[names[0]], arms[names[1]]
            source = "prometheus"
        result = analyse_against_slo(canary, policy) if request.slo_only else analyse(canary, baseline, policy)
        return StepVerdict(result.verdict.value, list(result.reasons), _metrics(canary), _metrics(baseline),
                           source=source)

    @staticmethod
    def _arm(session: Session, deployment: Deployment, version_id: int, since: datetime) -> ArmSample:
        """One arm from each replica's latest window received since the step began. The arm's p95 is its
        worst replica's: one slow replica is a slow canary."""
        requests = errors = 0.0
        ttft: list[float] = []
        tpot: list[float] = []
        for replica in live_replicas_of(session, deployment.id):
            t = replica.telemetry
            if (replica.version_id != version_id or replica.status is not ReplicaStatus.READY or t is None
                    or t.received_at < since.replace(tzinfo=t.received_at.tzinfo)):
                continue
            requests += t.request_rate * t.window_s
            errors += t.errors
            if t.ttft_p95_ms is not None:
                ttft.append(t.ttft_p95_ms)
            if t.tpot_p95_ms is not None:
                tpot.append(t.tpot_p95_ms)
        return ArmSample(requests, errors, max(ttft) if ttft else None, max(tpot) if tpot else None)

    @activity.defn(name="rollout_record")
    async def record(self, request: RecordRollout) -> Done:
        with transaction(self._sessions) as session:
            row = rollout_by_workflow(session, request.workflow_id)
            if row is not None:
                record_progress(row, state=RolloutState(request.state), current_step=request.current_step,
                                steps=request.steps, verdict=request.verdict, now=self._clock())
            return Done()

    @activity.defn(name="rollout_finish")
    async def finish(self, request: FinishRollout) -> Done:
        """Promote (new version becomes the deployment's, old replicas drain) or roll back (traffic to the old
        version, canary replicas drain). Each step is level-triggered, so a retry repeats it harmlessly."""
        with transaction(self._sessions) as session:
            row = _deployment(session, request.deployment)
            rollout = rollout_by_workflow(session, request.workflow_id)
            outcome = RolloutState(request.outcome)
            if rollout is not None:
                # Final first: the other version's replicas are no longer protected by an active rollout.
                record_progress(rollout, state=outcome, current_step=rollout.current_step, steps=rollout.steps,
                                verdict=None, now=self._clock())
            try:
                if outcome is RolloutState.PROMOTED:
                    target = _version(row, request.to_version)
                    switch_version(session, deployment=row, version=target, actor=request.actor)
                    routing.set_version_weights(session, deployment=row, weights={}, actor=request.actor)
                    items = [PlacementItem(i.cluster, i.pool, i.variant, i.tensor_parallel, i.count)
                             for i in request.items]
                    set_placement(session, deployment=row, items=items, actor=request.actor, version=target)
                else:
                    # Traffic leaves the canary before its replicas are asked to drain. Re-applying the old
                    # version's own placement drains every replica of any other version (the rollout is
                    # final now, so nothing protects them) and leaves the old version untouched.
                    routing.set_version_weights(session, deployment=row, weights={}, actor=request.actor)
                    set_placement(session, deployment=row, items=current_placement(session, row),
                                  actor=request.actor)
            except (Invalid, Conflict) as error:
                raise _non_retryable(error) from None
            return Done()


def _metrics(sample: ArmSample) -> ArmMetrics:
    return ArmMetrics(sample.requests, sample.errors, sample.ttft_p95_ms, sample.tpot_p95_ms)
