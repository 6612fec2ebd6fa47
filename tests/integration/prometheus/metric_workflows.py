"""Two trivial workflows for the worker-metrics test, in a module of their own that imports only temporalio,
so the workflow sandbox can re-import it (as it does every workflow module)."""

from __future__ import annotations

from temporalio import workflow
from temporalio.exceptions import ApplicationError


@workflow.defn
class SucceedsWorkflow:
    @workflow.run
    async def run(self) -> str:
        return "ok"


@workflow.defn
class FailsWorkflow:
    @workflow.run
    async def run(self) -> str:
        raise ApplicationError("refused", non_retryable=True)
