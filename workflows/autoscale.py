"""AutoscaleWorkflow (id `autoscale-{deployment}`): one per deployment, long-running, continue-as-new.

Each interval: observe the load (activity), decide with the pure `scheduler.autoscale` policy (inside the
workflow: it is deterministic, and the simulator runs the same function). When the policy wants a different
count, re-plan through the placement MILP on the forecast with the churn penalty
(`scheduler.autoscale_replan`, in an activity: the forecast becomes a demand at the policy's target
utilisation, corrected by the capacity the policy observes) and apply the difference make-before-break, as a deploy
does: new replicas start beside the old ones, routing moves once they are ready, then the surplus drains
(the agent stops a draining replica only once its in-flight requests are done). New replicas that are not
ready in time are undone (the previous placement is written back) and the next interval tries again. If
the MILP finds no plan, the current placement is resized in place (`scheduler.autoscale.resize`), so load
is still served. Pause and resume by signal. After `iterations_per_run` intervals it continues as new,
carrying the forecast, the scale-down counter and the pause flag, so the history never grows without bound.
"""

from __future__ import annotations

from dataclasses import replace
from typing import Any
from datetime import timedelta

from temporalio import workflow
from temporalio.common import RetryPolicy
from temporalio.exceptions import ActivityError

with workflow.unsafe.imports_passed_through():
    from scheduler.autoscale import AutoscalePolicy, AutoscaleState, Decision, Observation, decide
    from workflows.activities import FleetActivities
    from workflows.autoscale_activities import AutoscaleActivities
    from workflows.deploy import union_items
    from workflows.types import (
        ApplyPlacement, AutoscaleInput, Item, ObserveLoad, PublishShares, ReplanRequest, ScaleTo, WaitReady,
    )

RETRY = RetryPolicy(initial_interval=timedelta(seconds=1), maximum_interval=timedelta(seconds=30), maximum_attempts=3)
SHORT = timedelta(seconds=60)


def same_items(a: list[Item], b: list[Item]) -> bool:
    """The same replicas wanted per (cluster, pool, variant, tp), whatever the order or zero entries."""

    def counts(items: list[Item]) -> dict[tuple[str, str, str, int], int]:
        out: dict[tuple[str, str, str, int], int] = {}
        for i in items:
            key = (i.cluster, i.pool, i.variant, i.tensor_parallel)
            out[key] = out.get(key, 0) + i.count
        return {k: n for k, n in out.items() if n}

    return counts(a) == counts(b)


def autoscale_workflow_id(deployment: str) -> str:
    return f"autoscale-{deployment}"


@workflow.defn
class AutoscaleWorkflow:
    def __init__(self) -> None:
        self._paused = False
        self._last: dict[str, Any] = {}
        self._replans = 0
        self._speeds: dict[str, float] = {}

    @workflow.signal
    def pause(self) -> None:
        self._paused = True

    @workflow.signal
    def resume(self) -> None:
        self._paused = False

    @workflow.query
    def status(self) -> dict[str, Any]:
        return {"paused": self._paused, **self._last}

    @workflow.run
    async def run(self, inp: AutoscaleInput) -> None:
        self._paused = self._paused or inp.paused  # a pause signalled with the start wins
        state = AutoscaleState(inp.forecast_rps, inp.lower_for)
        self._speeds = dict(inp.speeds)
        for _ in range(inp.iterations_per_run):
            if not self._paused:
                state = await self._once(inp, state)
            try:
                await workflow.wait_condition(lambda: False, timeout=timedelta(seconds=inp.interval_s))
            except TimeoutError:
                pass
        workflow.continue_as_new(replace(inp, paused=self._paused, forecast_rps=state.forecast_rps,
                                         lower_for=state.lower_for, speeds=self._speeds))

    async def _once(self, inp: AutoscaleInput, state: AutoscaleState) -> AutoscaleState:
        obs = await workflow.execute_activity_method(
            AutoscaleActivities.observe, ObserveLoad(inp.deployment, inp.replica_capacity_rps, self._speeds),
            start_to_close_timeout=SHORT, retry_policy=RETRY)
        self._speeds = obs.speeds
        policy = AutoscalePolicy(
            min_replicas=obs.min_replicas, max_replicas=obs.max_replicas, target_utilisation=inp.target_utilisation,
            up_alpha=inp.up_alpha, down_alpha=inp.down_alpha, down_delay_intervals=inp.down_delay_intervals,
            budget_per_hour=obs.budget_per_hour, price_per_replica_hour=obs.price_per_replica_hour)
        decision, state = decide(policy, state, Observation(obs.rps, obs.replicas, obs.capacity_rps))
        self._last = {"replicas": decision.replicas, "observed_rps": obs.rps, "reason": decision.reason,
                      "accelerator_speeds": obs.speeds}
        if decision.replicas != obs.replicas and obs.replicas > 0:
            if workflow.patched("autoscale-replan"):
                await self._replan(inp, decision, state.forecast_rps or 0.0, obs.capacity_rps)
            else:
                await self._scale_in_place(inp, decision.replicas)
        return state

    async def _scale_in_place(self, inp: AutoscaleInput, replicas: int) -> None:
        await workflow.execute_activity_method(
            AutoscaleActivities.scale_to, ScaleTo(inp.deployment, replicas, inp.actor),
            start_to_close_timeout=SHORT, retry_policy=RETRY)

    async def _replan(self, inp: AutoscaleInput, decision: Decision, forecast_rps: float,
                      capacity_rps: float) -> None:
        info = workflow.info()
        self._replans += 1
        outcome = await workflow.execute_activity_method(
            AutoscaleActivities.replan,
            ReplanRequest(inp.deployment, forecast_rps, capacity_rps, inp.target_utilisation,
                          key=f"{info.workflow_id}/{info.run_id}/replan-{self._replans}",
                          time_limit_s=inp.plan_time_limit_s),
            start_to_close_timeout=timedelta(seconds=inp.plan_time_limit_s * 20 + 60), retry_policy=RETRY)
        if not outcome.ok:
            # No plan (a quota, every cluster of a region lost...): resize what runs so the load is served.
            self._last["reason"] = f"{decision.reason}; {outcome.reason}; resized in place"
            await self._scale_in_place(inp, decision.replicas)
            return
        self._last.update(replicas=sum(i.count for i in outcome.items), reason=f"{decision.reason}; {outcome.reason}",
                          plan_id=outcome.plan_id)
        if same_items(outcome.items, outcome.previous):
            # The MILP keeps what runs (its model needs these replicas, or churn does not pay): nothing to
            # apply, and no new routing generation for the gateways to fetch.
            return
        actor = f"{inp.actor}:replan-{self._replans}"
        try:
            await workflow.execute_activity_method(
                FleetActivities.apply_placement,
                ApplyPlacement(inp.deployment, union_items(outcome.previous, outcome.items), actor),
                start_to_close_timeout=SHORT, retry_policy=RETRY)
            await workflow.execute_activity_method(
                FleetActivities.wait_ready,
                WaitReady(inp.deployment, outcome.items, inp.ready_timeout_s, inp.poll_interval_s),
                start_to_close_timeout=timedelta(seconds=inp.ready_timeout_s + 60),
                heartbeat_timeout=timedelta(seconds=max(5.0, inp.poll_interval_s * 3)), retry_policy=RETRY)
            await workflow.execute_activity_method(
                FleetActivities.publish_shares, PublishShares(inp.deployment, outcome.shares, actor),
                start_to_close_timeout=SHORT, retry_policy=RETRY)
            await workflow.execute_activity_method(
                FleetActivities.apply_placement, ApplyPlacement(inp.deployment, outcome.items, actor),
                start_to_close_timeout=SHORT, retry_policy=RETRY)
        except ActivityError as error:
            # Never leave the fleet half-changed: put back what ran and try again next interval.
            await workflow.execute_activity_method(
                FleetActivities.apply_placement, ApplyPlacement(inp.deployment, outcome.previous, f"{actor}:restore"),
                start_to_close_timeout=SHORT, retry_policy=RETRY)
            self._last["reason"] = f"re-plan undone, previous placement restored: {error.cause or error}"
