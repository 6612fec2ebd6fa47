"""DeployWorkflow (id `deploy-{deployment}`): plan → desired replicas → wait until ready → routing shares.

Deterministic orchestration only; every side effect is an activity. The placement is changed make-before-
break: new replicas start beside the old ones, routing moves once they are ready, then the surplus
drains. If anything after the placement was written fails, the previous placement is written back, so a failed deploy never leaves the fleet
half-changed. A spec change while a run is in flight arrives as the `redeploy` signal: the run finishes
its current pass and continues as new, which plans again from the latest spec.
"""

from __future__ import annotations

from datetime import timedelta

from temporalio import workflow
from temporalio.common import RetryPolicy
from temporalio.exceptions import ActivityError, ApplicationError

with workflow.unsafe.imports_passed_through():
    from workflows.activities import FleetActivities
    from workflows.types import (
        ApplyPlacement,
        DeployInput,
        DeploymentRef,
        DeployResult,
        Item,
        MarkObserved,
        PlanRequest,
        PublishShares,
        WaitReady,
    )

RETRY = RetryPolicy(initial_interval=timedelta(seconds=1), maximum_interval=timedelta(seconds=10), maximum_attempts=5)
SHORT = timedelta(seconds=60)


def deploy_workflow_id(deployment: str) -> str:
    return f"deploy-{deployment}"


def union_items(current: list[Item], planned: list[Item]) -> list[Item]:
    """Per (cluster, pool, variant, tp) the larger of what runs and what the plan wants."""
    counts: dict[tuple[str, str, str, int], int] = {}
    for item in [*current, *planned]:
        key = (item.cluster, item.pool, item.variant, item.tensor_parallel)
        counts[key] = max(counts.get(key, 0), item.count)
    return [Item(c, p, v, tp, n) for (c, p, v, tp), n in sorted(counts.items())]


@workflow.defn
class DeployWorkflow:
    def __init__(self) -> None:
        self._phase = "starting"
        self._again = False

    @workflow.signal
    def redeploy(self) -> None:
        """The spec changed: plan again once this pass is over."""
        self._again = True

    @workflow.query
    def phase(self) -> str:
        return self._phase

    @workflow.run
    async def run(self, inp: DeployInput) -> DeployResult:
        info = workflow.info()
        previous = await workflow.execute_activity_method(
            FleetActivities.current_placement, DeploymentRef(inp.deployment),
            start_to_close_timeout=SHORT, retry_policy=RETRY)
        self._phase = "planning"
        plan = await workflow.execute_activity_method(
            FleetActivities.plan_deployment,
            PlanRequest(inp.deployment, key=f"{info.workflow_id}/{info.run_id}/plan",
                        exclude_clusters=list(inp.exclude_clusters), time_limit_s=inp.plan_time_limit_s),
            start_to_close_timeout=timedelta(seconds=inp.plan_time_limit_s * 3 + 60), retry_policy=RETRY)
        if not plan.ok:
            # Nothing was changed yet: the fleet keeps what it runs, the reason is on the Plan row.
            self._phase = "infeasible"
            return DeployResult(inp.deployment, plan.generation, "infeasible", plan.plan_id, reason=plan.reason)
        try:
            # Make before break: the new replicas start beside the old ones, which keep serving until the
            # new ones are ready and routed; only then does the surplus drain.
            self._phase = "placing"
            await workflow.execute_activity_method(
                FleetActivities.apply_placement,
                ApplyPlacement(inp.deployment, union_items(previous.items, plan.items), inp.actor),
                start_to_close_timeout=SHORT, retry_policy=RETRY)
            self._phase = "waiting-ready"
            await workflow.execute_activity_method(
                FleetActivities.wait_ready,
                WaitReady(inp.deployment, plan.items, inp.ready_timeout_s, inp.poll_interval_s),
                start_to_close_timeout=timedelta(seconds=inp.ready_timeout_s + 60),
                heartbeat_timeout=timedelta(seconds=max(5.0, inp.poll_interval_s * 3)),
                retry_policy=RETRY)
            self._phase = "routing"
            routed = await workflow.execute_activity_method(
                FleetActivities.publish_shares, PublishShares(inp.deployment, plan.shares, inp.actor),
                start_to_close_timeout=SHORT, retry_policy=RETRY)
            self._phase = "draining-surplus"
            await workflow.execute_activity_method(
                FleetActivities.apply_placement, ApplyPlacement(inp.deployment, plan.items, inp.actor),
                start_to_close_timeout=SHORT, retry_policy=RETRY)
        except ActivityError as error:
            self._phase = "restoring"
            await workflow.execute_activity_method(
                FleetActivities.apply_placement,
                ApplyPlacement(inp.deployment, previous.items, f"{inp.actor}:restore"),
                start_to_close_timeout=SHORT, retry_policy=RETRY)
            cause = error.cause.message if isinstance(error.cause, ApplicationError) else str(error)
            raise ApplicationError(f"deploy failed, previous placement restored: {cause}",
                                   type="DeployFailed", non_retryable=True) from error
        await workflow.execute_activity_method(
            FleetActivities.mark_observed, MarkObserved(inp.deployment, plan.generation),
            start_to_close_timeout=SHORT, retry_policy=RETRY)
        self._phase = "deployed"
        if self._again:
            workflow.continue_as_new(DeployInput(**{**inp.__dict__, "generation": 0}))
        return DeployResult(inp.deployment, plan.generation, "deployed", plan.plan_id, list(plan.items),
                            routed.generation)
