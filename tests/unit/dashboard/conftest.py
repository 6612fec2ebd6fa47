"""A real control-plane app (SQLite) served by uvicorn on a free port, seeded with a small fleet that costs
money and serves tokens, for the dashboard to read over HTTP exactly as in production."""

from __future__ import annotations

from collections.abc import Iterator
from dataclasses import dataclass
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

import pytest
from fastapi.testclient import TestClient
from sqlalchemy import select
from sqlalchemy.orm import Session, sessionmaker
from streamlit.testing.v1 import AppTest

from control_plane.app import create_app
from control_plane.observability.install import install_observability
from control_plane.settings import Settings
from registry.api_keys import Scope, issue_key
from registry.db import make_engine, session_factory, transaction
from registry.deployments import Deployment
from registry.rollouts import RolloutState, begin_rollout, record_progress
from tests.support.fleet import deployment_body, ok, populate, version_body
from tests.support.live_server import live_server

L4 = "g6.xlarge/on-demand"
H100 = "p5.4xlarge/on-demand"
SLO = {"ttft_p95_ms": 500, "tpot_p95_ms": 50}


@dataclass(frozen=True, slots=True)
class SeededApi:
    url: str
    read_key: str  # the team's read-only key: what the dashboard is given
    admin_key: str  # platform admin
    team_admin_key: str  # an admin key of team search
    client: TestClient  # the same app in-process, for the test's own expectations
    sessions: sessionmaker[Session]  # its database, for what the API cannot create (rollouts run in workflows)

    def get(self, path: str, key: str | None = None) -> Any:
        return ok(self.client.get(path, headers={"Authorization": f"Bearer {key or self.read_key}"}))


def _window(tokens: float, ttft_ms: float, tpot_ms: float, rps: float) -> dict[str, Any]:
    return {"observed_at": datetime.now(UTC).isoformat(), "window_s": 30, "request_rate": rps,
            "prompt_tokens_per_s": tokens / 2, "generation_tokens_per_s": tokens / 2,
            "ttft_p95_ms": ttft_ms, "tpot_p95_ms": tpot_ms}


@pytest.fixture
def seeded_api(tmp_path: Path) -> Iterator[SeededApi]:
    """Team `search` runs `chat` (SLO 500/50 ms, budget $5/h): in us-east-1 two L4 replicas ready (one within
    the SLO serving 1000 tokens/s, one too slow serving 3000) and one H100 starting; in eu-central-1 one L4
    ready within the SLO serving 1000 tokens/s."""
    database = f"sqlite:///{tmp_path}/registry.db"
    engine = make_engine(database)
    app = create_app(Settings(database_url=database, state_dir=tmp_path / "state",
                              mutation_rate_limit_per_minute=10_000), engine=engine)
    install_observability(app)  # a no-op once create_app does it itself
    sessions = session_factory(engine)
    with transaction(sessions) as session:
        admin_key = issue_key(session, team="platform", scopes=[Scope.ADMIN], name="admin", actor="t").plaintext
        deploy_key = issue_key(session, team="search", scopes=[Scope.DEPLOY], name="dev", actor="t").plaintext
        read_key = issue_key(session, team="search", scopes=[Scope.READ], name="dashboard", actor="t").plaintext
    client = TestClient(app, raise_server_exceptions=False)
    admin, team = {"Authorization": f"Bearer {admin_key}"}, {"Authorization": f"Bearer {deploy_key}"}
    populate(client, admin, team)
    with transaction(sessions) as session:  # agent keys name their cluster, which must exist first
        agents = {c: issue_key(session, team="platform", scopes=[Scope.AGENT], name=c, actor="t", cluster=c).plaintext
                  for c in ("aws-use1", "aws-euc1")}
    body = deployment_body(slo=SLO, constraints={"budget_per_hour": 5.0},
                           demand=[{"client_region": "us-east-1", "rps": 20}, {"client_region": "eu-central-1", "rps": 5}])
    ok(client.post("/v1/deployments", json=body, headers=team), 201)
    ok(client.put("/v1/deployments/chat/placement", headers=team, json={"replicas": [
        {"cluster": "aws-use1", "pool": L4, "variant": "fp8", "tensor_parallel": 1, "count": 2},
        {"cluster": "aws-use1", "pool": H100, "variant": "fp8", "tensor_parallel": 1, "count": 1},
        {"cluster": "aws-euc1", "pool": L4, "variant": "fp8", "tensor_parallel": 1, "count": 1},
    ]}))
    reports = {"aws-use1": [("ready", _window(1000, 200, 20, 4.0)), ("ready", _window(3000, 900, 20, 8.0)),
                            ("starting", None)],
               "aws-euc1": [("ready", _window(1000, 300, 30, 3.0))]}
    for cluster, states in reports.items():
        agent = {"Authorization": f"Bearer {agents[cluster]}"}
        desired = ok(client.get(f"/v1/agent/clusters/{cluster}/desired", headers=agent))["replicas"]
        replicas = [{"name": r["name"], "state": s, "endpoint": f"http://127.0.0.1:{9000 + i}", "telemetry": w}
                    for i, (r, (s, w)) in enumerate(zip(desired, states, strict=True))]
        ok(client.post(f"/v1/agent/clusters/{cluster}/heartbeat", headers=agent,
                       json={"agent_version": "t", "applied_generation": None, "replicas": replicas}))
    with transaction(sessions) as session:  # an admin of the deployment's own team may read the routing table
        team_admin_key = issue_key(session, team="search", scopes=[Scope.ADMIN], name="ops", actor="t").plaintext
    with live_server(app) as url:
        yield SeededApi(url=url, read_key=read_key, admin_key=admin_key, team_admin_key=team_admin_key,
                        client=client, sessions=sessions)
    engine.dispose()


def seed_rollout(api: SeededApi) -> None:
    """chat v1 → v2 in steps 10/50/100: step 0 passed, step 1 paused as inconclusive."""
    team = {"Authorization": f"Bearer {api.team_admin_key}"}
    ok(api.client.post("/v1/models/llama-3.1-8b/versions", json=version_body("v2"), headers=team), 201)
    with transaction(api.sessions) as session:
        chat = session.scalar(select(Deployment).where(Deployment.name == "chat"))
        assert chat is not None
        versions = {v.version: v.id for v in chat.model.versions}
        row = begin_rollout(session, deployment_id=chat.id, from_version_id=versions["v1"],
                            to_version_id=versions["v2"], steps=[10.0, 50.0, 100.0], workflow_id="rollout-chat-v2")
        arm = {"requests": 120.0, "errors": 0.0, "ttft_p95_ms": 210.0, "tpot_p95_ms": 21.0}
        record_progress(row, state=RolloutState.RUNNING, current_step=1, steps=[10.0, 50.0, 100.0], verdict={
            "step": 0, "percent": 10.0, "verdict": "pass", "reasons": ["p95 TTFT within 1.2x of baseline"],
            "canary": arm, "baseline": {**arm, "ttft_p95_ms": 200.0}})
        record_progress(row, state=RolloutState.PAUSED, current_step=1, steps=[10.0, 50.0, 100.0], verdict={
            "step": 1, "percent": 50.0, "verdict": "inconclusive", "reasons": ["only 3 canary requests (< 20)"],
            "canary": {**arm, "requests": 3.0}, "baseline": arm})


def configure(monkeypatch: pytest.MonkeyPatch, api: SeededApi, key: str | None = None,
              prometheus: str | None = None, temporal_ui: str | None = None) -> None:
    """The dashboard's environment, as `llmfleet up` gives it to the Streamlit child."""
    monkeypatch.setenv("LLMFLEET_API_URL", api.url)
    monkeypatch.setenv("LLMFLEET_API_KEY", key or api.read_key)
    for name, value in (("LLMFLEET_PROMETHEUS_URL", prometheus), ("LLMFLEET_TEMPORAL_UI_URL", temporal_ui)):
        if value is None:
            monkeypatch.delenv(name, raising=False)
        else:
            monkeypatch.setenv(name, value)


def metrics(at: AppTest) -> dict[str, str]:
    return {m.label: m.value for m in at.metric}
