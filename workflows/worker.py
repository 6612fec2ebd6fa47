"""The worker: connects to Temporal and runs every workflow and activity of llmfleet on one task queue."""

from __future__ import annotations

import asyncio

from sqlalchemy.orm import Session, sessionmaker
from temporalio.client import Client
from temporalio.contrib.opentelemetry import TracingInterceptor
from temporalio.worker import Worker

from workflows.activities import FleetActivities
from workflows.autoscale import AutoscaleWorkflow
from workflows.autoscale_activities import AutoscaleActivities
from workflows.batch import BatchWorkflow
from workflows.batch_activities import BatchActivities
from workflows.deploy import DeployWorkflow
from workflows.failover import FailoverWorkflow, FleetWatchWorkflow
from workflows.failover_activities import FailoverActivities
from workflows.metrics import WorkflowMetricsInterceptor, prometheus_runtime
from workflows.rollout import RolloutWorkflow
from workflows.rollout_activities import RolloutActivities

DEFAULT_TASK_QUEUE = "llmfleet"
WORKFLOWS: list[type] = [
    DeployWorkflow, RolloutWorkflow, AutoscaleWorkflow, FailoverWorkflow, FleetWatchWorkflow, BatchWorkflow,
]


def build_worker(client: Client, sessions: sessionmaker[Session], task_queue: str = DEFAULT_TASK_QUEUE,
                 activities: FleetActivities | None = None) -> Worker:
    acts = activities if activities is not None else FleetActivities(sessions)
    rollout_acts = RolloutActivities(sessions)
    autoscale_acts = AutoscaleActivities(sessions)
    failover_acts = FailoverActivities(sessions)
    batch_acts = BatchActivities(sessions)
    # Activities are async (the MILP runs in a thread of its own), so no activity executor is needed.
    activities = [*acts.all(), *rollout_acts.all(), *autoscale_acts.all(), *failover_acts.all(), *batch_acts.all()]
    interceptors = [WorkflowMetricsInterceptor(), TracingInterceptor()]
    return Worker(client, task_queue=task_queue, workflows=WORKFLOWS, activities=activities,
                  interceptors=interceptors, max_concurrent_activities=8)


async def run_worker(address: str, namespace: str, task_queue: str, sessions: sessionmaker[Session],
                     stop: asyncio.Event | None = None, metrics_port: int | None = None) -> None:
    # The SDK serves the worker's /metrics (its own temporal_* series and ours) when a port is given.
    runtime = prometheus_runtime(f"127.0.0.1:{metrics_port}") if metrics_port else None
    client = await Client.connect(address, namespace=namespace, runtime=runtime)
    worker = build_worker(client, sessions, task_queue)
    if stop is None:
        await worker.run()
        return
    async with worker:
        await stop.wait()
