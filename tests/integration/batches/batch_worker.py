"""The worker the batch tests run as a child process (so a test can SIGKILL it): every workflow and activity
`workflows/worker.py` registers, with a short batch polling wait and sticky timeout so the tests run fast.
`python -m tests.integration.batches.batch_worker ADDRESS TASK_QUEUE DATABASE_URL`."""

from __future__ import annotations

import asyncio
import signal
import sys
from datetime import timedelta

from temporalio.client import Client
from temporalio.worker import Worker

from registry.db import make_engine, session_factory
from workflows.activities import FleetActivities
from workflows.autoscale_activities import AutoscaleActivities
from workflows.batch_activities import BatchActivities
from workflows.failover_activities import FailoverActivities
from workflows.rollout_activities import RolloutActivities
from workflows.worker import WORKFLOWS


async def main(address: str, task_queue: str, database_url: str) -> None:
    sessions = session_factory(make_engine(database_url))
    client = await Client.connect(address)
    activities = [*FleetActivities(sessions).all(), *RolloutActivities(sessions).all(),
                  *AutoscaleActivities(sessions).all(), *FailoverActivities(sessions).all(),
                  *BatchActivities(sessions, wait_s=0.5).all()]
    # A short sticky timeout: after a SIGKILL the next workflow task moves to a live worker quickly.
    worker = Worker(client, task_queue=task_queue, workflows=WORKFLOWS, activities=activities,
                    max_concurrent_activities=8, sticky_queue_schedule_to_start_timeout=timedelta(seconds=1))
    stop = asyncio.Event()
    loop = asyncio.get_running_loop()
    for sig in (signal.SIGINT, signal.SIGTERM):
        loop.add_signal_handler(sig, stop.set)
    async with worker:
        print("ready", flush=True)
        await stop.wait()


if __name__ == "__main__":
    asyncio.run(main(*sys.argv[1:4]))
