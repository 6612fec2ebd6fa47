"""Resumable after a crash: SIGKILL the worker mid-batch, start another; every custom_id is answered exactly
once in the output, and the replicas served only the unfinished part again (at most the requests that were
in flight at the kill are sent twice). Also: without Temporal, creating a batch is a clear 503."""

from __future__ import annotations

import re
import time
from collections import Counter
from collections.abc import Iterator
from pathlib import Path

import httpx
import pytest
from fastapi.testclient import TestClient

from control_plane.app import create_app
from control_plane.settings import Settings
from sqlalchemy import select

from registry.api_keys import Scope
from registry.batches import Batch
from registry.db import session_factory, transaction
from tests.conftest import KeyMaker, bearer
from tests.integration.batches.conftest import BatchWorld, make_world, wait_until
from tests.integration.batches.jsonl import chat_line, jsonl, parse_output
from tests.integration.workflows.temporal_harness import TemporalHarness

TOTAL = 40
CONCURRENCY = 4  # Settings.batch_concurrency in make_world


@pytest.fixture
def slow_world(tmp_path: Path, temporal: TemporalHarness) -> Iterator[BatchWorld]:
    # Slow replicas and a short heartbeat timeout: the kill lands mid-batch and is noticed within seconds.
    yield from make_world(tmp_path, temporal, heartbeat_timeout_s=2.0, replicas=1, speedup=1.0)


def served(world: BatchWorld) -> int:
    total = 0.0
    for sim in world.fleet.sims:
        text = httpx.get(f"{sim.url}/metrics", timeout=10).text
        total += sum(float(m) for m in re.findall(r'^vllm:request_success_total\{[^}]*\} ([0-9.e+]+)$', text, re.M))
    return int(total)


def test_a_killed_worker_resumes_without_answering_twice(slow_world: BatchWorld) -> None:
    client = slow_world.client()
    uploaded = client.files.create(file=("r.jsonl", jsonl([chat_line(f"r{i}", max_tokens=48)
                                                              for i in range(TOTAL)])), purpose="batch")
    batch = client.batches.create(input_file_id=uploaded.id, endpoint="/v1/chat/completions",
                                  completion_window="24h")
    before = wait_until(lambda: (n := client.batches.retrieve(batch.id).request_counts.completed) >= 10 and n,
                        "a quarter of the answers", 90)
    assert before < TOTAL, "the batch finished before the kill: make the replicas slower"
    slow_world.workers[0].kill()
    time.sleep(0.5)
    assert client.batches.retrieve(batch.id).status == "in_progress"
    slow_world.start_worker()
    deadline = time.monotonic() + 120
    while (done := client.batches.retrieve(batch.id)).status not in ("completed", "failed"):
        assert time.monotonic() < deadline, f"the batch did not finish after the restart ({done.status})"
        time.sleep(0.3)
    assert done.status == "completed" and done.request_counts.completed == TOTAL and done.request_counts.failed == 0
    output = parse_output(client.files.content(done.output_file_id).content)
    ids = Counter(o["custom_id"] for o in output)
    assert set(ids) == {f"r{i}" for i in range(TOTAL)} and max(ids.values()) == 1
    assert all(o["response"]["status_code"] == 200 for o in output)
    # Resumed, not restarted: besides the 40, only requests in flight at the kill were sent again.
    assert TOTAL <= served(slow_world) <= TOTAL + CONCURRENCY
    # Every input line is answered: the batch's watermark reached the last one (chunks read only past it).
    with transaction(session_factory(slow_world.fleet.engine)) as session:
        row = session.scalars(select(Batch).where(Batch.batch_id == batch.id)).one()
        assert row.answered_through_line == TOTAL


def test_creating_a_batch_without_temporal_is_a_clear_503(database_url: str, tmp_path: Path, engine,  # type: ignore[no-untyped-def]
                                                          make_key: KeyMaker) -> None:
    app = create_app(Settings(database_url=database_url, state_dir=tmp_path / "s"), engine=engine)
    client = TestClient(app, raise_server_exceptions=False)
    team = bearer(make_key("search", Scope.READ))
    uploaded = client.post("/v1/files", headers=team, data={"purpose": "batch"},
                           files={"file": ("a.jsonl", jsonl([chat_line("a")]))})
    assert uploaded.status_code == 200, uploaded.text
    response = client.post("/v1/batches", headers=team, json={
        "input_file_id": uploaded.json()["id"], "endpoint": "/v1/chat/completions", "completion_window": "24h"})
    assert response.status_code == 503 and response.headers["content-type"] == "application/problem+json"
    assert "Temporal" in response.json()["detail"]
    # Files keep working, paged newest first as OpenAI's cursor lists.
    second = client.post("/v1/files", headers=team, data={"purpose": "batch"},
                         files={"file": ("b.jsonl", jsonl([chat_line("b")]))}).json()
    page = client.get("/v1/files?limit=1", headers=team).json()
    assert [f["id"] for f in page["data"]] == [second["id"]] and page["has_more"]
    rest = client.get(f"/v1/files?limit=5&after={second['id']}", headers=team).json()
    assert [f["id"] for f in rest["data"]] == [uploaded.json()["id"]] and not rest["has_more"]
    assert client.post("/v1/files", headers=team, data={"purpose": "fine-tune"},
                       files={"file": ("a.jsonl", b"{}")}).status_code == 422
