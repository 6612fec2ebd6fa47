"""RolloutWorkflow with a real Temporal dev server, real worker processes, a real agent (sim backend) and
traffic split by the published version weights:
- a healthy canary is promoted step by step, even though the worker is SIGKILLed mid-rollout;
- a canary made slow in the simulator breaks its SLO and is rolled back (traffic and replicas);
- a canary that gets no traffic is inconclusive: the rollout pauses until aborted.
"""

from __future__ import annotations

import uuid
from collections.abc import Iterator
from pathlib import Path

import httpx
import pytest
from fastapi import FastAPI
from sqlalchemy import select

from registry.db import transaction
from registry.deployments import Deployment
from registry.rollouts import Rollout
from tests.integration.agents.agent_harness import AgentThread, ControlPlaneServer, wait_for
from tests.integration.workflows.fleet_helpers import (
    POOL,
    Load,
    Workers,
    ready_endpoints,
    small_deployment,
    start_agent,
    version_weights,
)
from tests.integration.workflows.temporal_harness import TemporalHarness, save_history
from tests.support.fleet import ok, version_body
from workflows.client import Labels, start_rollout
from workflows.rollout import RolloutWorkflow
from workflows.types import RolloutInput

CLUSTER = "aws-use1"
LABELS = Labels(team="search", deployment="chat", version="v2")


@pytest.fixture
def workers(temporal: TemporalHarness, database_url: str, tmp_path: Path) -> Iterator[Workers]:
    ws = Workers(temporal, f"test-{uuid.uuid4().hex[:8]}", database_url, tmp_path)
    yield ws
    ws.stop_all()


@pytest.fixture
def fleet(app: FastAPI, team: httpx.Client, control_plane: ControlPlaneServer, tmp_path: Path) -> Iterator[AgentThread]:
    """chat@v1 on two ready replicas, v2 registered, and an agent reporting 1.5 s telemetry windows."""
    small_deployment(team)
    ok(team.post("/v1/models/llama-3.1-8b/versions", json=version_body("v2")), 201)
    agent = start_agent(app, control_plane, tmp_path, CLUSTER, window_s=1.5)
    ok(team.put("/v1/deployments/chat/placement",
                json={"replicas": [{"cluster": CLUSTER, "pool": POOL, "variant": "fp8", "count": 2}]}))
    wait_for(lambda: len(ready_endpoints(app, "chat").get("v1", [])) == 2, "two ready v1 replicas")
    yield agent
    agent.stop()


def rollout_input(**overrides: object) -> RolloutInput:
    base: dict[str, object] = dict(deployment="chat", to_version="v2", steps=[50.0, 100.0], bake_s=3.0,
                                   ready_timeout_s=60, poll_interval_s=0.3, min_requests=5)
    base.update(overrides)
    return RolloutInput(**base)  # type: ignore[arg-type]


def rollout_row(app: FastAPI) -> Rollout:
    with transaction(app.state.llmfleet.sessions) as session:
        row = session.scalar(select(Rollout).order_by(Rollout.id.desc()).limit(1))
        assert row is not None
        return row


def deployment_version(app: FastAPI) -> str:
    with transaction(app.state.llmfleet.sessions) as session:
        row = session.scalar(select(Deployment).where(Deployment.name == "chat"))
        assert row is not None
        return row.model_version.version


def test_healthy_canary_is_promoted_across_a_worker_crash(
    app: FastAPI, temporal: TemporalHarness, fleet: AgentThread, workers: Workers,
) -> None:
    first = workers.new()
    with Load(app, "chat") as load:
        handle = temporal.run(start_rollout(temporal.client, workers.task_queue, rollout_input(), LABELS))
        # Mid-rollout: the 50 % step is baking when the worker dies.
        wait_for(lambda: version_weights(app, "chat").get("v2") == 50.0, "the 50 % step", timeout=90)
        first.kill()
        workers.new()
        result = temporal.run(handle.result(), timeout=180)
    assert result.state == "promoted", result.verdicts
    assert [v["verdict"] for v in result.verdicts] == ["pass", "pass"]
    assert deployment_version(app) == "v2"
    # No duplicates: exactly the baseline's two replicas of v2, and v1 drained away.
    wait_for(lambda: set(ready_endpoints(app, "chat")) == {"v2"}, "only v2 serving")
    assert len(ready_endpoints(app, "chat")["v2"]) == 2
    assert rollout_row(app).state.value == "promoted"
    assert load.sent > 0 and load.failed == 0
    temporal.run(save_history(handle, "rollout_promoted"))


def test_slow_canary_is_rolled_back(app: FastAPI, temporal: TemporalHarness, fleet: AgentThread,
                                    workers: Workers) -> None:
    workers.new()

    def slow_down(version: str, name: str, endpoint: str) -> None:
        if version == "v2":  # latency injected in the simulator: every engine step 8x slower
            httpx.post(f"{endpoint}/admin/fault", json={"mode": "slow", "slowdown": 8}, timeout=10).raise_for_status()

    with Load(app, "chat", on_new_replica=slow_down):
        handle = temporal.run(start_rollout(temporal.client, workers.task_queue, rollout_input(), LABELS))
        result = temporal.run(handle.result(), timeout=180)
    assert result.state == "rolled_back"
    # 8x slower engine steps: TTFT, TPOT or both break (which one shows first depends on the machine's load).
    reasons = " ".join(result.verdicts[-1]["reasons"])
    assert result.verdicts[-1]["verdict"] == "fail" and ("TTFT" in reasons or "TPOT" in reasons), reasons
    assert deployment_version(app) == "v1" and version_weights(app, "chat") == {"v1": 100.0}
    wait_for(lambda: set(ready_endpoints(app, "chat")) == {"v1"}, "the canary replicas drained")
    assert len(ready_endpoints(app, "chat")["v1"]) == 2
    assert rollout_row(app).state.value == "rolled_back"
    temporal.run(save_history(handle, "rollout_rolled_back"))


def test_canary_without_traffic_pauses_until_aborted(app: FastAPI, temporal: TemporalHarness, fleet: AgentThread,
                                                     workers: Workers) -> None:
    workers.new()
    with Load(app, "chat", only="v1"):
        handle = temporal.run(start_rollout(temporal.client, workers.task_queue, rollout_input(), LABELS))
        wait_for(lambda: temporal.run(handle.query(RolloutWorkflow.status))["state"] == "paused", "the pause",
                 timeout=90)
        assert rollout_row(app).state.value == "paused"
        # Steps can still be changed while paused (an update, validated).
        steps = temporal.run(handle.execute_update(RolloutWorkflow.set_steps, [50.0, 75.0, 100.0]))
        assert steps == [50.0, 75.0, 100.0]
        temporal.run(handle.signal(RolloutWorkflow.abort))
        result = temporal.run(handle.result(), timeout=120)
    assert result.state == "aborted"
    assert result.verdicts[0]["verdict"] == "inconclusive"
    assert version_weights(app, "chat") == {"v1": 100.0}
    wait_for(lambda: set(ready_endpoints(app, "chat")) == {"v1"}, "the canary replicas drained")
    assert rollout_row(app).state.value == "aborted"
    temporal.run(save_history(handle, "rollout_aborted"))


def test_blue_green_switches_at_once_and_promotes(app: FastAPI, temporal: TemporalHarness, fleet: AgentThread,
                                                  workers: Workers) -> None:
    workers.new()
    with Load(app, "chat") as load:
        handle = temporal.run(start_rollout(temporal.client, workers.task_queue,
                                            rollout_input(mode="blue_green"), LABELS))
        # Green is a full copy, ready before any traffic moves; then 100 % at once.
        wait_for(lambda: version_weights(app, "chat") == {"v2": 100.0}, "the switch to green", timeout=90)
        assert len(ready_endpoints(app, "chat").get("v2", [])) == 2
        result = temporal.run(handle.result(), timeout=120)
    assert result.state == "promoted", result.verdicts
    assert result.steps == [100.0] and result.verdicts[0]["verdict"] == "pass"
    assert deployment_version(app) == "v2"
    wait_for(lambda: set(ready_endpoints(app, "chat")) == {"v2"}, "blue drained")
    assert load.failed == 0
    temporal.run(save_history(handle, "rollout_blue_green"))
