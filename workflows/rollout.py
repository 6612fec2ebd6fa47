"""RolloutWorkflow (id `rollout-{deployment}-{version}`): version A → B in SLO-gated steps.

Canary mode: for each step p, run enough B replicas for p % of A's capacity, send p % of traffic to B,
bake, then compare B with A (pure `scheduler.canary`). pass → next step; fail → all traffic back to A and
B's replicas drained; inconclusive (thin or missing data is never a pass) → paused until an `approve` or
`abort` signal. At 100 % B becomes the deployment's version and A drains.

Blue-green mode: a full copy of A's placement as B, wait ready, switch 100 % at once, bake, judge B by
the SLO alone; a failure switches back to A (still running) at once.

The remaining steps can be changed by the `set_steps` update while it runs.
"""

from __future__ import annotations

import math
from typing import Any
from datetime import timedelta

from temporalio import workflow
from temporalio.common import RetryPolicy
from temporalio.exceptions import ActivityError

with workflow.unsafe.imports_passed_through():
    from workflows.activities import FleetActivities
    from workflows.rollout_activities import RolloutActivities
    from workflows.types import (
        AnalyseStep,
        BeginRollout,
        FinishRollout,
        Item,
        PlaceVersion,
        RecordRollout,
        RolloutInput,
        RolloutResult,
        RolloutStart,
        SetWeights,
        StepVerdict,
        WaitReady,
    )

RETRY = RetryPolicy(initial_interval=timedelta(seconds=1), maximum_interval=timedelta(seconds=10), maximum_attempts=5)
SHORT = timedelta(seconds=60)


def rollout_workflow_id(deployment: str, version: str) -> str:
    return f"rollout-{deployment}-{version}"


def validate_steps(steps: list[float]) -> list[float]:
    """Strictly increasing percentages in (0, 100] ending at 100."""
    if not steps or steps[-1] != 100 or any(not 0 < s <= 100 for s in steps) \
            or any(b <= a for a, b in zip(steps, steps[1:], strict=False)):
        raise ValueError("steps must increase strictly within (0, 100] and end at 100")
    return [float(s) for s in steps]


def canary_items(baseline: list[Item], percent: float) -> list[Item]:
    """B replicas for `percent` of A's capacity, in A's shape: at least one, at most A's count, taken from
    A's placement items in order so the result is stable."""
    total = sum(i.count for i in baseline)
    want = min(total, max(1, math.ceil(total * percent / 100.0)))
    out: list[Item] = []
    for item in baseline:
        take = min(item.count, want - sum(i.count for i in out))
        if take > 0:
            out.append(Item(item.cluster, item.pool, item.variant, item.tensor_parallel, take))
    return out


@workflow.defn
class RolloutWorkflow:
    def __init__(self) -> None:
        self._steps: list[float] = []
        self._step = 0
        self._state = "starting"
        self._decision: str | None = None  # approve | abort, from a signal
        self._verdicts: list[dict[str, Any]] = []

    @workflow.signal
    def approve(self) -> None:
        self._decision = "approve"

    @workflow.signal
    def abort(self) -> None:
        self._decision = "abort"

    @workflow.update
    def set_steps(self, steps: list[float]) -> list[float]:
        # Steps already taken stay as they were; only what is still ahead changes.
        done = self._steps[: self._step]
        self._steps = done + [float(s) for s in steps if s > (done[-1] if done else 0.0)]
        return self._steps

    @set_steps.validator
    def _check_steps(self, steps: list[float]) -> None:
        validate_steps(steps)
        if self._step and not any(s > self._steps[self._step - 1] for s in steps):
            raise ValueError(f"steps must go beyond the current {self._steps[self._step - 1]} %")

    @workflow.query
    def status(self) -> dict[str, Any]:
        return {"state": self._state, "step": self._step, "steps": list(self._steps), "verdicts": self._verdicts}

    @workflow.run
    async def run(self, inp: RolloutInput) -> RolloutResult:
        self._steps = validate_steps(list(inp.steps)) if inp.mode == "canary" else [100.0]
        wid = workflow.info().workflow_id
        start = await workflow.execute_activity_method(
            RolloutActivities.begin, BeginRollout(inp.deployment, inp.to_version, self._steps, wid),
            start_to_close_timeout=SHORT, retry_policy=RETRY)
        self._state = "running"
        try:
            outcome = await (self._canary(inp, start) if inp.mode == "canary" else self._blue_green(inp, start))
        except ActivityError:
            outcome = "rolled_back"  # a step that cannot be carried out is a failed step: back to A
        await self._finish(inp, start, outcome)
        return RolloutResult(inp.deployment, start.from_version, start.to_version, outcome, list(self._steps),
                             self._verdicts)

    async def _canary(self, inp: RolloutInput, start: RolloutStart) -> str:
        while self._step < len(self._steps):
            percent = self._steps[self._step]
            items = start.baseline if percent >= 100 else canary_items(start.baseline, percent)
            await self._place_and_wait(inp, start.to_version, items)
            await self._weights(inp, {start.from_version: 100.0 - percent, start.to_version: percent}
                                if percent < 100 else {start.to_version: 100.0})
            # At 100 % the old version serves nothing to compare with: the SLO is the yardstick.
            verdict = await self._bake_and_analyse(inp, start, slo_only=percent >= 100)
            outcome = await self._judge(inp, verdict, percent)
            if outcome is not None:
                return outcome
            self._step += 1
        return "promoted"

    async def _blue_green(self, inp: RolloutInput, start: RolloutStart) -> str:
        await self._place_and_wait(inp, start.to_version, start.baseline)
        await self._weights(inp, {start.to_version: 100.0})
        verdict = await self._bake_and_analyse(inp, start, slo_only=True)
        outcome = await self._judge(inp, verdict, 100.0)
        return outcome if outcome is not None else "promoted"

    async def _place_and_wait(self, inp: RolloutInput, version: str, items: list[Item]) -> None:
        await workflow.execute_activity_method(
            RolloutActivities.place_version, PlaceVersion(inp.deployment, version, items, inp.actor),
            start_to_close_timeout=SHORT, retry_policy=RETRY)
        await workflow.execute_activity_method(
            FleetActivities.wait_ready,
            WaitReady(inp.deployment, items, inp.ready_timeout_s, inp.poll_interval_s, version=version),
            start_to_close_timeout=timedelta(seconds=inp.ready_timeout_s + 60),
            heartbeat_timeout=timedelta(seconds=max(5.0, inp.poll_interval_s * 3)), retry_policy=RETRY)

    async def _weights(self, inp: RolloutInput, weights: dict[str, float]) -> None:
        await workflow.execute_activity_method(
            RolloutActivities.set_weights, SetWeights(inp.deployment, weights, inp.actor),
            start_to_close_timeout=SHORT, retry_policy=RETRY)

    async def _bake_and_analyse(self, inp: RolloutInput, start: RolloutStart, slo_only: bool) -> StepVerdict:
        since = workflow.now()
        # An abort during the bake stops waiting at once; otherwise the bake runs out (TimeoutError).
        try:
            await workflow.wait_condition(lambda: self._decision == "abort", timeout=timedelta(seconds=inp.bake_s))
        except TimeoutError:
            pass
        return await workflow.execute_activity_method(
            RolloutActivities.analyse_step,
            AnalyseStep(inp.deployment, start.from_version, start.to_version, since.isoformat(), inp.min_requests,
                        inp.max_latency_ratio, inp.max_error_rate_delta, start.slo_ttft_p95_ms,
                        start.slo_tpot_p95_ms, slo_only=slo_only),
            start_to_close_timeout=SHORT, retry_policy=RETRY)

    async def _judge(self, inp: RolloutInput, verdict: StepVerdict, percent: float) -> str | None:
        """None: go on. Otherwise the rollout's outcome."""
        if self._decision == "abort":
            return "aborted"
        record: dict[str, Any] = {"step": self._step, "percent": percent, "verdict": verdict.verdict,
                                     "reasons": verdict.reasons, "canary": verdict.canary.__dict__,
                                     "baseline": verdict.baseline.__dict__, "source": verdict.source}
        self._verdicts.append(record)
        if verdict.verdict == "fail":
            return "rolled_back"
        if verdict.verdict == "inconclusive":
            self._state = "paused"
            await self._record(inp, "paused", record)
            self._decision = None
            await workflow.wait_condition(lambda: self._decision is not None)
            self._state = "running"
            if self._decision == "abort":
                return "aborted"
            self._decision = None
            record["approved"] = True
        await self._record(inp, "running", record)
        return None

    async def _record(self, inp: RolloutInput, state: str, verdict: dict[str, Any] | None) -> None:
        await workflow.execute_activity_method(
            RolloutActivities.record,
            RecordRollout(workflow.info().workflow_id, state, self._step, list(self._steps), verdict),
            start_to_close_timeout=SHORT, retry_policy=RETRY)

    async def _finish(self, inp: RolloutInput, start: RolloutStart, outcome: str) -> None:
        self._state = outcome
        await workflow.execute_activity_method(
            RolloutActivities.finish,
            FinishRollout(inp.deployment, workflow.info().workflow_id, start.from_version, start.to_version,
                          outcome, start.baseline, inp.actor),
            start_to_close_timeout=SHORT, retry_policy=RETRY)
