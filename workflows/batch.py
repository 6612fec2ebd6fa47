"""BatchWorkflow (id `batch-{batch_id}`): begin → run chunks until every request has a result → finalize.

Deterministic orchestration only. All progress lives in the registry (one result row per custom_id), so
the workflow carries no request state: after a worker crash the chunk activity is retried and skips what
is already recorded, and after `chunks_per_run` chunks the run continues as new with nothing to carry.
A `cancel` signal (or `cancelling` in the registry) stops the chunk in flight and finalizes as cancelled;
the completion window (24h) finalizes as expired; an activity that keeps failing finalizes as failed.
"""

from __future__ import annotations

from dataclasses import dataclass, replace
from datetime import timedelta

from temporalio import workflow
from temporalio.client import Client, WorkflowHandle
from temporalio.common import RetryPolicy, WorkflowIDReusePolicy
from temporalio.exceptions import ActivityError, ApplicationError
from temporalio.workflow import ActivityCancellationType

with workflow.unsafe.imports_passed_through():
    from workflows.batch_activities import (
        BatchActivities,
        BatchProgress,
        BatchRef,
        ChunkRequest,
        ChunkResult,
        Finalize,
    )

SHORT = timedelta(seconds=60)
RETRY = RetryPolicy(initial_interval=timedelta(seconds=1), maximum_interval=timedelta(seconds=30),
                    maximum_attempts=10)


@dataclass(slots=True)
class BatchInput:
    batch_id: str
    chunk_size: int = 64
    concurrency: int = 8
    per_replica: int = 4
    heartbeat_timeout_s: float = 30.0
    chunks_per_run: int = 200  # then continue-as-new, so the history stays small for any batch size


def batch_workflow_id(batch_id: str) -> str:
    return f"batch-{batch_id}"


@workflow.defn
class BatchWorkflow:
    def __init__(self) -> None:
        self._cancel = False
        self._phase = "starting"

    @workflow.signal
    def cancel(self) -> None:
        self._cancel = True

    @workflow.query
    def phase(self) -> str:
        return self._phase

    @workflow.run
    async def run(self, inp: BatchInput) -> BatchProgress:
        progress = await workflow.execute_activity_method(
            BatchActivities.begin, BatchRef(inp.batch_id), start_to_close_timeout=SHORT, retry_policy=RETRY)
        if progress.status in ("completed", "failed", "expired", "cancelled"):
            return progress
        self._cancel = self._cancel or progress.status == "cancelling"
        expires = progress.expires_at
        outcome, reason = "completed", ""
        for _ in range(inp.chunks_per_run):
            if self._cancel:
                outcome = "cancelled"
                break
            if workflow.now().timestamp() >= expires:
                outcome = "expired"
                break
            self._phase = "running"
            try:
                result = await self._chunk(inp)
            except ActivityError as error:
                if self._cancel:
                    outcome = "cancelled"
                    break
                cause = error.cause.message if isinstance(error.cause, ApplicationError) else str(error.cause)
                outcome, reason = "failed", f"requests could not be run: {cause}"
                break
            if result.cancelled:
                self._cancel = True
                continue
            if result.remaining == 0:
                break
            if result.wait_s > 0:
                # Below real-time traffic in priority: no calm capacity now, so wait (durably) and look again.
                self._phase = f"waiting: {result.reason}"
                await workflow.wait_condition(lambda: self._cancel,
                                              timeout=timedelta(seconds=min(result.wait_s, max(1.0, expires
                                                                 - workflow.now().timestamp()))))
        else:
            workflow.continue_as_new(replace(inp))
        self._phase = "finalizing"
        return await workflow.execute_activity_method(
            BatchActivities.finalize, Finalize(inp.batch_id, outcome, reason),
            start_to_close_timeout=timedelta(minutes=10), retry_policy=RETRY)

    async def _chunk(self, inp: BatchInput) -> ChunkResult:
        handle = workflow.start_activity_method(
            BatchActivities.run_chunk,
            ChunkRequest(inp.batch_id, inp.chunk_size, inp.concurrency, inp.per_replica),
            start_to_close_timeout=timedelta(hours=1), heartbeat_timeout=timedelta(seconds=inp.heartbeat_timeout_s),
            retry_policy=RETRY, cancellation_type=ActivityCancellationType.WAIT_CANCELLATION_COMPLETED)
        await workflow.wait_condition(lambda: handle.done() or self._cancel)
        if not handle.done():
            handle.cancel()  # the activity sees it at its next heartbeat; what it recorded stays
        return await handle


# ---- client side (the API) ------------------------------------------------------------------------


async def start_batch(client: Client, task_queue: str, inp: BatchInput) -> WorkflowHandle:
    return await client.start_workflow(
        BatchWorkflow.run, inp, id=batch_workflow_id(inp.batch_id), task_queue=task_queue,
        id_reuse_policy=WorkflowIDReusePolicy.REJECT_DUPLICATE, memo={"batch": inp.batch_id})


async def signal_cancel(client: Client, batch_id: str) -> None:
    await client.get_workflow_handle(batch_workflow_id(batch_id)).signal(BatchWorkflow.cancel)
