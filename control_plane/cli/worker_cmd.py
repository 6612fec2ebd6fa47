"""`llmfleet worker`: run the Temporal worker (every llmfleet workflow and activity) in the foreground."""

from __future__ import annotations

import asyncio
import logging
import signal
from typing import Annotated

import typer

from control_plane.settings import Settings


def worker(
    address: Annotated[str | None, typer.Option("--address", envvar="LLMFLEET_TEMPORAL_ADDRESS",
                                                help="Temporal frontend host:port")] = None,
    namespace: Annotated[str | None, typer.Option("--namespace", envvar="LLMFLEET_TEMPORAL_NAMESPACE")] = None,
    task_queue: Annotated[str | None, typer.Option("--task-queue", envvar="LLMFLEET_TEMPORAL_TASK_QUEUE")] = None,
    database_url: Annotated[str | None, typer.Option("--database-url", envvar="LLMFLEET_DATABASE_URL")] = None,
    log_level: Annotated[str, typer.Option("--log-level")] = "INFO",
) -> None:
    """Run the workflow worker against Temporal and the registry database. Ctrl-C stops it cleanly."""
    # Imported here: the rest of the CLI must not pay for importing temporalio and the scheduler.
    from registry.db import make_engine, session_factory
    from workflows.worker import run_worker

    settings = Settings()
    address = address or settings.temporal_address
    if not address:
        raise typer.BadParameter("no Temporal address: pass --address or set LLMFLEET_TEMPORAL_ADDRESS")
    logging.basicConfig(level=log_level.upper(), format="%(asctime)s %(levelname)s %(name)s %(message)s")
    sessions = session_factory(make_engine(database_url or settings.database_url))

    async def main() -> None:
        stop = asyncio.Event()
        loop = asyncio.get_running_loop()
        for sig in (signal.SIGINT, signal.SIGTERM):
            loop.add_signal_handler(sig, stop.set)
        await run_worker(address, namespace or settings.temporal_namespace,
                         task_queue or settings.temporal_task_queue, sessions, stop,
                         metrics_port=settings.worker_metrics_port)

    asyncio.run(main())


if __name__ == "__main__":
    typer.run(worker)
