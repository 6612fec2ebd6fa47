"""The worker: connects to Temporal and runs every workflow and activity of llmfleet on one task queue."""

from __future__ import annotations

import asyncio

from sqlalchemy.orm import Session, sessionmaker
from temporalio.client import Client
from temporalio.worker import Worker

from workflows.activities import FleetActivities
from workflows.autoscale import AutoscaleWorkflow
from workflows.autoscale_activities import AutoscaleActivities
from workflows.deploy import DeployWorkflow
from workflows.failover import FailoverWorkflow, FleetWatchWorkflow
from workflows.failover_activities import FailoverActivities
from workflows.rollout import RolloutWorkflow
from workflows.rollout_activities import RolloutActivities

DEFAULT_TASK_QUEUE = "llmfleet"
WORKFLOWS: list[type] = [DeployWorkflow, RolloutWorkflow, AutoscaleWorkflow, FailoverWorkflow, FleetWatchWorkflow]


def build_worker(client: Client, sessions: sessionmaker[Session], task_queue: str = DEFAULT_TASK_QUEUE,
                 activities: FleetActivities | None = None) -> Worker:
    acts = activities if activities is not None else FleetActivities(sessions)
    rollout_acts = RolloutActivities(sessions)
    autoscale_acts = AutoscaleActivities(sessions)
    failover_acts = FailoverActivities(sessions)
    # Activities are async (the MILP runs in a thread of its own), so no activity executor is needed.
    return Worker(client, task_queue=task_queue, workflows=WORKFLOWS, activities=[*acts.all(), *rollout_acts.all(), *autoscale_acts.all(),
                              *failover_acts.all()],
                  max_concurrent_activities=8)


async def run_worker(address: str, namespace: str, task_queue: str, sessions: sessionmaker[Session],
                     stop: asyncio.Event | None = None) -> None:
    client = await Client.connect(address, namespace=namespace)
    worker = build_worker(client, sessions, task_queue)
    if stop is None:
        await worker.run()
        return
    async with worker:
        await stop.wait()
