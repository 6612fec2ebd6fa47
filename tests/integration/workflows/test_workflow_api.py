"""The API with Temporal configured: creating a deployment starts `deploy-{name}` (a real worker deploys it),
the deployment's running workflows are listed with Temporal UI links, rollouts start and abort through the
API; without Temporal the rollout routes answer 409 and deployments behave as before."""

from __future__ import annotations

import uuid
from collections.abc import Iterator
from pathlib import Path

import httpx
import pytest
from fastapi import FastAPI
from fastapi.testclient import TestClient
from sqlalchemy import Engine

from control_plane.app import create_app

from control_plane.settings import Settings
from registry.api_keys import Scope
from tests.conftest import KeyMaker, bearer
from tests.integration.agents.agent_harness import AgentThread, ControlPlaneServer, wait_for
from tests.integration.workflows.fleet_helpers import Workers, ready_endpoints, small_deployment, start_agent
from tests.integration.workflows.temporal_harness import TemporalHarness
from tests.support.fleet import ok, populate, version_body

TASK_QUEUE = f"api-{uuid.uuid4().hex[:8]}"


@pytest.fixture
def settings(database_url: str, tmp_path: Path, temporal: TemporalHarness) -> Settings:
    return Settings(database_url=database_url, state_dir=tmp_path / "state", mutation_rate_limit_per_minute=10_000,
                    temporal_address=temporal.address, temporal_task_queue=TASK_QUEUE,
                    temporal_ui_url="http://127.0.0.1:8233")


@pytest.fixture
def workers(temporal: TemporalHarness, database_url: str, tmp_path: Path) -> Iterator[Workers]:
    ws = Workers(temporal, TASK_QUEUE, database_url, tmp_path)
    ws.new()
    yield ws
    ws.stop_all()


@pytest.fixture
def agent(app: FastAPI, control_plane: ControlPlaneServer, team: httpx.Client, tmp_path: Path) -> Iterator[AgentThread]:
    thread = start_agent(app, control_plane, tmp_path, "aws-use1")
    yield thread
    thread.stop()


def test_create_deploys_through_the_workflow_and_rollouts_run_through_the_api(
    app: FastAPI, team: httpx.Client, agent: AgentThread, workers: Workers,
) -> None:
    small_deployment(team)  # POST /v1/deployments: starts deploy-chat after the commit
    wait_for(lambda: ready_endpoints(app, "chat").get("v1"), "the deploy workflow's replicas ready", timeout=90)
    ok(team.post("/v1/models/llama-3.1-8b/versions", json=version_body("v2")), 201)
    started = ok(team.post("/v1/deployments/chat/rollouts",
                           json={"version": "v2", "steps": [50, 100], "bake_seconds": 600}), 202)
    assert started["workflow_id"] == "rollout-chat-v2"
    assert started["url"].startswith("http://127.0.0.1:8233/namespaces/default/workflows/rollout-chat-v2/")
    listed = wait_for(lambda: [w for w in ok(team.get("/v1/deployments/chat/workflows"))["workflows"]
                               if w["workflow_id"] == "rollout-chat-v2"], "the rollout listed as running")
    assert listed[0]["type"] == "RolloutWorkflow" and listed[0]["url"]
    rollouts = wait_for(lambda: ok(team.get("/v1/deployments/chat/rollouts")), "the rollout record")
    assert rollouts[0]["to_version"] == "v2" and rollouts[0]["from_version"] == "v1"
    ok(team.post("/v1/deployments/chat/rollouts/v2/abort"), 202)
    wait_for(lambda: ok(team.get("/v1/deployments/chat/rollouts"))[0]["state"] == "aborted", "the abort")
    assert team.post("/v1/deployments/chat/rollouts/v9/approve").status_code == 404
    invalid = team.post("/v1/deployments/chat/rollouts", json={"version": "v2", "steps": [50, 25]})
    assert invalid.status_code == 422


def test_rollouts_need_temporal(client_without_temporal: TestClient, make_key: KeyMaker) -> None:
    team = bearer(make_key("search"))
    populate(client_without_temporal, bearer(make_key("platform", Scope.ADMIN)), team)
    body = {"name": "chat", "model": "llama-3.1-8b", "version": "v1", "slo": {"ttft_p95_ms": 500, "tpot_p95_ms": 50},
            "demand": [{"client_region": "us-east-1", "rps": 1, "prompt_tokens": 100, "output_tokens": 10}]}
    ok(client_without_temporal.post("/v1/deployments", json=body, headers=team), 201)
    response = client_without_temporal.post("/v1/deployments/chat/rollouts", json={"version": "v1"}, headers=team)
    assert response.status_code == 409 and "Temporal" in response.json()["detail"]
    assert ok(client_without_temporal.get("/v1/deployments/chat/workflows", headers=team)) == {
        "deployment": "chat", "temporal": False, "workflows": []}


@pytest.fixture
def client_without_temporal(database_url: str, tmp_path: Path, engine: Engine) -> TestClient:
    app = create_app(Settings(database_url=database_url, state_dir=tmp_path / "s", mutation_rate_limit_per_minute=10_000),
                     engine=engine)
    return TestClient(app, raise_server_exceptions=False)
