"""Worker metrics: the Temporal SDK's own Prometheus exporter, plus workflows started, failed and their
durations by workflow type.

The SDK (Rust core) serves `/metrics` itself at the bind address and already counts tasks, activity
latencies and failures (`temporal_*`). Our series are recorded through `workflow.metric_meter()`, which is
replay-safe: a workflow replayed after a worker restart is not counted twice. Each series carries the SDK's
`namespace`, `task_queue` and `workflow_type` labels.
"""

from __future__ import annotations

import asyncio
from datetime import timedelta
from typing import Any

from temporalio import workflow
from temporalio.exceptions import CancelledError, FailureError
from temporalio.runtime import PrometheusConfig, Runtime, TelemetryConfig
from temporalio.worker import (
    ExecuteWorkflowInput,
    Interceptor,
    WorkflowInboundInterceptor,
    WorkflowInterceptorClassInput,
)

# Workflows run from seconds (deploy) to hours (autoscale runs before continue-as-new).
DURATION_BUCKETS = (1.0, 5.0, 15.0, 30.0, 60.0, 120.0, 300.0, 900.0, 1800.0, 3600.0, 4 * 3600.0, 24 * 3600.0)


def prometheus_runtime(bind_address: str) -> Runtime:
    """A Temporal runtime whose metrics Prometheus scrapes at http://{bind_address}/metrics. Pass it to
    `Client.connect(..., runtime=...)`; one per process."""
    config = PrometheusConfig(
        bind_address=bind_address, counters_total_suffix=True, durations_as_seconds=True,
        histogram_bucket_overrides={"llmfleet_workflow_duration": list(DURATION_BUCKETS)},
    )
    return Runtime(telemetry=TelemetryConfig(metrics=config))


class WorkflowMetricsInterceptor(Interceptor):
    """`Worker(..., interceptors=[WorkflowMetricsInterceptor()])`."""

    def workflow_interceptor_class(
        self, input: WorkflowInterceptorClassInput
    ) -> type[WorkflowInboundInterceptor] | None:
        return _CountingInbound


class _CountingInbound(WorkflowInboundInterceptor):
    async def execute_workflow(self, input: ExecuteWorkflowInput) -> Any:
        meter = workflow.metric_meter()
        meter.create_counter("llmfleet_workflows_started", "Workflow runs started").add(1)
        started = workflow.now()

        def ended(outcome: str) -> None:
            elapsed: timedelta = workflow.now() - started
            meter.create_histogram_timedelta(
                "llmfleet_workflow_duration", "Workflow run duration (workflow time)", "duration"
            ).record(elapsed, {"outcome": outcome})

        try:
            result = await super().execute_workflow(input)
        except workflow.ContinueAsNewError:
            ended("continued_as_new")  # a long-running workflow starting its next run: not a failure
            raise
        except (CancelledError, asyncio.CancelledError):
            ended("cancelled")
            raise
        except FailureError:
            # Only these fail the workflow; any other exception fails the workflow task, which Temporal
            # retries (a bug to fix, visible in temporal_workflow_task_execution_failed).
            meter.create_counter("llmfleet_workflows_failed", "Workflow runs that failed").add(1)
            ended("failed")
            raise
        ended("completed")
        return result
