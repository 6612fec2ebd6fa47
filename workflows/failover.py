"""FailoverWorkflow (id `failover-{cluster}`) and the detector that starts it (FleetWatchWorkflow, id
`fleet-watch`).

Failover: mark the cluster unhealthy → move its routing shares away at once and drain its replicas →
re-plan every affected deployment without it (a child DeployWorkflow, `deploy-{name}`, which brings
replacement capacity up elsewhere and publishes new shares) → wait until the cluster reports again →
mark it healthy → re-plan again with it, which gives traffic back where the plan wants it.

Spot preemption takes a lighter path, run by the detector itself: the cluster still reports, so it stays
healthy; the deployment that lost replicas gets its shares scaled down on the clusters that lost capacity
at once (`shift_from_preempted`), then `deploy-{name}` re-plans it (started, or signalled `redeploy` if
one is in flight), which brings replacement replicas up and publishes the plan's shares.
"""

from __future__ import annotations

from datetime import timedelta

from temporalio import workflow
from temporalio.common import RetryPolicy, WorkflowIDReusePolicy
from temporalio.exceptions import ActivityError, ChildWorkflowError, FailureError, WorkflowAlreadyStartedError
from temporalio.workflow import ParentClosePolicy

with workflow.unsafe.imports_passed_through():
    from workflows.deploy import DeployWorkflow, deploy_workflow_id
    from workflows.failover_activities import FailoverActivities
    from workflows.types import (
        DeployInput,
        FailoverInput,
        FailoverResult,
        FindLost,
        FindPreempted,
        MarkCluster,
        PreemptedGroup,
        ShiftFromPreempted,
        WaitHealthy,
        WatchInput,
    )

RETRY = RetryPolicy(initial_interval=timedelta(seconds=1), maximum_interval=timedelta(seconds=10), maximum_attempts=5)
SHORT = timedelta(seconds=60)
WATCH_ID = "fleet-watch"
PREEMPTION_PATCH = "watch-preemptions"  # running fleet-watch histories predate the preemption path


def failover_workflow_id(cluster: str) -> str:
    return f"failover-{cluster}"


@workflow.defn
class FailoverWorkflow:
    def __init__(self) -> None:
        self._phase = "starting"

    @workflow.query
    def phase(self) -> str:
        return self._phase

    @workflow.run
    async def run(self, inp: FailoverInput) -> FailoverResult:
        self._phase = "marking"
        await self._mark(inp, "unhealthy", inp.reason)
        self._phase = "evacuating"
        evacuation = await workflow.execute_activity_method(
            FailoverActivities.evacuate, MarkCluster(inp.cluster, "unhealthy", inp.reason, inp.actor),
            start_to_close_timeout=SHORT, retry_policy=RETRY)
        self._phase = "replanning"
        outcomes = await self._replan(inp, evacuation.deployments, exclude=[inp.cluster])
        self._phase = "waiting-recovery"
        try:
            await workflow.execute_activity_method(
                FailoverActivities.wait_healthy,
                WaitHealthy(inp.cluster, inp.heartbeat_threshold_s, inp.poll_interval_s, inp.recovery_timeout_s),
                start_to_close_timeout=timedelta(seconds=inp.recovery_timeout_s + 60),
                heartbeat_timeout=timedelta(seconds=max(10.0, inp.poll_interval_s * 3)), retry_policy=RETRY)
        except ActivityError:
            self._phase = "evacuated"
            return FailoverResult(inp.cluster, evacuation.deployments, "evacuated", outcomes)
        self._phase = "restoring"
        await self._mark(inp, "healthy", "heartbeats again")
        outcomes = await self._replan(inp, evacuation.deployments, exclude=[])
        self._phase = "recovered"
        return FailoverResult(inp.cluster, evacuation.deployments, "recovered", outcomes)

    async def _mark(self, inp: FailoverInput, health: str, reason: str) -> None:
        await workflow.execute_activity_method(
            FailoverActivities.mark, MarkCluster(inp.cluster, health, reason, inp.actor),
            start_to_close_timeout=SHORT, retry_policy=RETRY)

    async def _replan(self, inp: FailoverInput, deployments: list[str], exclude: list[str]) -> dict[str, str]:
        outcomes: dict[str, str] = {}
        for name in deployments:
            try:
                result = await workflow.execute_child_workflow(
                    DeployWorkflow.run,
                    DeployInput(name, exclude_clusters=exclude, ready_timeout_s=inp.ready_timeout_s,
                                poll_interval_s=min(inp.poll_interval_s, 2.0), actor=inp.actor),
                    id=deploy_workflow_id(name), id_reuse_policy=WorkflowIDReusePolicy.ALLOW_DUPLICATE,
                    parent_close_policy=ParentClosePolicy.ABANDON)
                outcomes[name] = result.state
            except WorkflowAlreadyStartedError:
                # A deploy of it is in flight; it plans from the registry, which already says unhealthy.
                outcomes[name] = "deploy already running"
            except ChildWorkflowError as error:
                outcomes[name] = f"failed: {error.cause}"
        return outcomes


@workflow.defn
class FleetWatchWorkflow:
    """The detector: every interval, find clusters silent past the threshold and start their failover,
    and find replicas lost to spot preemption and move their deployment's traffic and capacity away."""

    @workflow.run
    async def run(self, inp: WatchInput) -> None:
        handled = list(inp.handled_preemptions)
        for _ in range(inp.iterations_per_run):
            lost = await workflow.execute_activity_method(
                FailoverActivities.find_lost, FindLost(inp.heartbeat_threshold_s),
                start_to_close_timeout=SHORT, retry_policy=RETRY)
            for cluster, reason in zip(lost.clusters, lost.reasons, strict=True):
                try:
                    await workflow.start_child_workflow(
                        FailoverWorkflow.run,
                        FailoverInput(cluster, reason=reason, heartbeat_threshold_s=inp.heartbeat_threshold_s,
                                      poll_interval_s=inp.failover_poll_interval_s,
                                      ready_timeout_s=inp.failover_ready_timeout_s),
                        id=failover_workflow_id(cluster), id_reuse_policy=WorkflowIDReusePolicy.ALLOW_DUPLICATE,
                        parent_close_policy=ParentClosePolicy.ABANDON)
                except WorkflowAlreadyStartedError:
                    pass  # its failover is already running
            if inp.watch_preemptions and workflow.patched(PREEMPTION_PATCH):
                handled = await self._preemptions(inp, handled)
            await workflow.sleep(timedelta(seconds=inp.interval_s))
        workflow.continue_as_new(WatchInput(**{**inp.__dict__, "handled_preemptions": handled}))

    async def _preemptions(self, inp: WatchInput, handled: list[str]) -> list[str]:
        found = await workflow.execute_activity_method(
            FailoverActivities.find_preempted, FindPreempted(inp.preemption_lookback_s, handled),
            start_to_close_timeout=SHORT, retry_policy=RETRY)
        recent = set(found.recent)
        handled = [name for name in handled if name in recent]  # older than the lookback: forget
        for group in found.new:
            try:
                # Idempotent: only preemptions after the last publish move shares, so a retry shifts once.
                await workflow.execute_activity_method(
                    FailoverActivities.shift_from_preempted,
                    ShiftFromPreempted(group.deployment, group.replicas, "workflow:preemption"),
                    start_to_close_timeout=SHORT, retry_policy=RETRY)
            except ActivityError:
                workflow.logger.warning("could not shift routing off preempted replicas of %s", group.deployment)
            if await self._replace(inp, group):
                handled += group.replicas
        return handled

    async def _replace(self, inp: WatchInput, group: PreemptedGroup) -> bool:
        """Start a re-plan of the deployment for replacement capacity; False: a deploy is in flight, so try
        again next interval (that one may be waiting for a replica that is gone; it is asked to plan again
        after its pass meanwhile, and a fresh deploy follows once it ends)."""
        try:
            await workflow.start_child_workflow(
                DeployWorkflow.run,
                DeployInput(group.deployment, ready_timeout_s=inp.failover_ready_timeout_s,
                            poll_interval_s=min(inp.failover_poll_interval_s, 2.0),
                            actor="workflow:preemption:replan"),
                id=deploy_workflow_id(group.deployment), id_reuse_policy=WorkflowIDReusePolicy.ALLOW_DUPLICATE,
                parent_close_policy=ParentClosePolicy.ABANDON)
            return True
        except WorkflowAlreadyStartedError:
            pass
        running = workflow.get_external_workflow_handle_for(DeployWorkflow.run, deploy_workflow_id(group.deployment))
        try:
            await running.signal(DeployWorkflow.redeploy)
        except FailureError:
            pass  # it ended meanwhile
        return False
