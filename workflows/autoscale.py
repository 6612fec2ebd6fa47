"""AutoscaleWorkflow (id `autoscale-{deployment}`): one per deployment, long-running, continue-as-new.

Each interval: observe the load (activity), decide with the pure `scheduler.autoscale` policy (inside the
workflow: it is deterministic, and the simulator runs the same function), apply the difference (activity).
Pause and resume by signal. After `iterations_per_run` intervals it continues as new, carrying the
forecast, the scale-down counter and the pause flag, so the history never grows without bound.
"""

from __future__ import annotations

from dataclasses import replace
from typing import Any
from datetime import timedelta

from temporalio import workflow
from temporalio.common import RetryPolicy

with workflow.unsafe.imports_passed_through():
    from scheduler.autoscale import AutoscalePolicy, AutoscaleState, Observation, decide
    from workflows.autoscale_activities import AutoscaleActivities
    from workflows.types import AutoscaleInput, ObserveLoad, ScaleTo

RETRY = RetryPolicy(initial_interval=timedelta(seconds=1), maximum_interval=timedelta(seconds=30), maximum_attempts=3)
SHORT = timedelta(seconds=60)


def autoscale_workflow_id(deployment: str) -> str:
    return f"autoscale-{deployment}"


@workflow.defn
class AutoscaleWorkflow:
    def __init__(self) -> None:
        self._paused = False
        self._last: dict[str, Any] = {}

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
        for _ in range(inp.iterations_per_run):
            if not self._paused:
                state = await self._once(inp, state)
            try:
                await workflow.wait_condition(lambda: False, timeout=timedelta(seconds=inp.interval_s))
            except TimeoutError:
                pass
        workflow.continue_as_new(replace(inp, paused=self._paused, forecast_rps=state.forecast_rps,
                                         lower_for=state.lower_for))

    async def _once(self, inp: AutoscaleInput, state: AutoscaleState) -> AutoscaleState:
        obs = await workflow.execute_activity_method(
            AutoscaleActivities.observe, ObserveLoad(inp.deployment, inp.replica_capacity_rps),
            start_to_close_timeout=SHORT, retry_policy=RETRY)
        policy = AutoscalePolicy(
            min_replicas=obs.min_replicas, max_replicas=obs.max_replicas, target_utilisation=inp.target_utilisation,
            up_alpha=inp.up_alpha, down_alpha=inp.down_alpha, down_delay_intervals=inp.down_delay_intervals,
            budget_per_hour=obs.budget_per_hour, price_per_replica_hour=obs.price_per_replica_hour)
        decision, state = decide(policy, state, Observation(obs.rps, obs.replicas, obs.capacity_rps))
        self._last = {"replicas": decision.replicas, "observed_rps": obs.rps, "reason": decision.reason}
        if decision.replicas != obs.replicas and obs.replicas > 0:
            await workflow.execute_activity_method(
                AutoscaleActivities.scale_to, ScaleTo(inp.deployment, decision.replicas, inp.actor),
                start_to_close_timeout=SHORT, retry_policy=RETRY)
        return state
