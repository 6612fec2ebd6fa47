"""A real agent (sim backend) against a real control plane: desired 3 -> 3 ready and serving; a crashed
replica is replaced; desired 0 drains without failing in-flight requests; a repeated placement changes
nothing; the control plane going away leaves replicas serving and the agent catches up when it returns.

Only bounded waits for conditions: no timing threshold decides a pass.
"""

from __future__ import annotations

import re
from collections.abc import Iterator
from concurrent.futures import Future, ThreadPoolExecutor
from pathlib import Path
from typing import Any

import httpx
import pytest
from fastapi import FastAPI

from agents.agent.config import AgentConfig
from agents.agent.scrape import parse_metrics
from registry.api_keys import Scope, issue_key
from registry.db import transaction
from tests.conftest import KeyMaker, bearer
from tests.integration.agents.agent_harness import AgentThread, ControlPlaneServer, wait_for
from tests.support.fleet import deployment_body, ok, populate

CLUSTER = "aws-use1"


@pytest.fixture
def database_url(tmp_path: Path) -> str:
    # The API's behaviour on PostgreSQL is covered by tests/integration/api; here the subject is the agent.
    return f"sqlite:///{tmp_path}/registry.db"


@pytest.fixture
def control_plane(app: FastAPI) -> Iterator[ControlPlaneServer]:
    server = ControlPlaneServer(app)
    server.start()
    yield server
    server.stop()


@pytest.fixture
def team(control_plane: ControlPlaneServer, make_key: KeyMaker) -> httpx.Client:
    client = httpx.Client(base_url=control_plane.url, headers=bearer(make_key("search", Scope.DEPLOY)), timeout=30)
    populate(client, bearer(make_key("platform", Scope.ADMIN)), dict(client.headers))  # type: ignore[arg-type]
    ok(client.post("/v1/deployments", json=deployment_body()), 201)
    return client


def start_agent(app: FastAPI, control_plane: ControlPlaneServer, tmp_path: Path, speedup: float) -> AgentThread:
    with transaction(app.state.llmfleet.sessions) as session:
        key = issue_key(session, team="platform", scopes=[Scope.AGENT], name="agent", actor="test", cluster=CLUSTER)
    config = AgentConfig(
        cluster=CLUSTER, api_url=control_plane.url, api_key=key.plaintext, interval_s=0.2, ready_timeout_s=30,
        drain_timeout_s=60, restart_base_s=0.2, restart_max_s=1.0, request_timeout_s=2.0,
        sim_speedup=speedup, log_dir=tmp_path / "agent",
    )
    return AgentThread(config).start()


@pytest.fixture
def agent(app: FastAPI, control_plane: ControlPlaneServer, team: httpx.Client, tmp_path: Path) -> Iterator[AgentThread]:
    thread = start_agent(app, control_plane, tmp_path, speedup=20.0)
    yield thread
    thread.stop()


def place(team: httpx.Client, count: int) -> Any:
    body = {"replicas": [{"cluster": CLUSTER, "pool": "g6.xlarge/on-demand", "variant": "fp8", "count": count}]}
    return ok(team.put("/v1/deployments/chat/placement", json=body))


def replicas(team: httpx.Client) -> dict[str, dict[str, Any]]:
    return {r["name"]: r for r in ok(team.get("/v1/deployments/chat"))["observed"]["replicas"]}


def ready_replicas(team: httpx.Client, count: int) -> dict[str, dict[str, Any]]:
    def check() -> dict[str, dict[str, Any]] | None:
        ready = {n: r for n, r in replicas(team).items() if r["status"] == "ready"}
        return ready if len(ready) == count else None

    return wait_for(check, f"{count} replicas ready in the registry")


def complete(endpoint: str, max_tokens: int = 16) -> dict[str, Any]:
    response = httpx.post(f"{endpoint}/v1/completions", timeout=120,
                          json={"model": "chat", "prompt": "hello fleet", "max_tokens": max_tokens, "ignore_eos": True})
    response.raise_for_status()
    body: dict[str, Any] = response.json()
    return body


def metric(text: str, name: str) -> float:
    match = re.search(rf"^{re.escape(name)} ([0-9.e+-]+)$", text, re.MULTILINE)
    return float(match.group(1)) if match else 0.0


def test_desired_three_become_three_ready_replicas_that_serve(team: httpx.Client, agent: AgentThread) -> None:
    place(team, 3)
    ready = ready_replicas(team, 3)
    for replica in ready.values():
        models = httpx.get(f"{replica['endpoint']}/v1/models", timeout=10).json()
        assert models["data"][0]["id"] == "chat"
        assert complete(replica["endpoint"])["usage"]["completion_tokens"] == 16
    assert 'agent_replicas{state="ready"} 3.0' in agent.metrics()
    # The next heartbeats carry windowed telemetry of those requests.
    wait_for(lambda: all((r["telemetry"] or {}).get("request_rate", 0) > 0 for r in replicas(team).values()),
             "telemetry with a request rate for every replica")
    sample = next(iter(replicas(team).values()))["telemetry"]
    assert sample["ttft_p95_ms"] > 0 and sample["tpot_p95_ms"] > 0 and sample["kv_cache_usage"] is not None


def test_a_crashed_replica_is_replaced_and_serves_again(team: httpx.Client, agent: AgentThread) -> None:
    place(team, 2)
    ready = ready_replicas(team, 2)
    name, victim = min(ready.items())
    httpx.post(f"{victim['endpoint']}/admin/fault", json={"mode": "crash"}, timeout=10).raise_for_status()
    wait_for(lambda: replicas(team)[name]["restarts"] == 1, "the crashed replica's restart in the registry")
    endpoint = wait_for(lambda: next((r["endpoint"] for r in agent.status()["replicas"]
                                      if r["name"] == name and r["state"] == "ready"), None), "the restart ready")
    assert complete(endpoint)["usage"]["completion_tokens"] == 16
    assert {r["status"] for r in replicas(team).values()} == {"ready"}
    assert metric(agent.metrics(), "agent_replica_restarts_total") == 1.0


def test_the_same_placement_again_changes_nothing(team: httpx.Client, agent: AgentThread) -> None:
    place(team, 2)
    ready_replicas(team, 2)
    before = agent.status()
    starts = metric(agent.metrics(), 'agent_actions_total{action="start"}')
    assert place(team, 2)["created"] == []
    generation = before["generation"]
    passes = metric(agent.metrics(), "agent_reconcile_total")
    wait_for(lambda: metric(agent.metrics(), "agent_reconcile_total") >= passes + 5, "five more reconcile passes")
    after = agent.status()
    assert after["generation"] == generation and after["replicas"] == before["replicas"]
    assert metric(agent.metrics(), 'agent_actions_total{action="start"}') == starts


def test_desired_zero_drains_and_no_in_flight_request_fails(
    app: FastAPI, control_plane: ControlPlaneServer, team: httpx.Client, tmp_path: Path
) -> None:
    slow = start_agent(app, control_plane, tmp_path, speedup=1.0)  # real-time steps: long requests
    try:
        place(team, 2)
        ready = ready_replicas(team, 2)
        endpoints = [r["endpoint"] for r in ready.values()]
        with ThreadPoolExecutor(max_workers=8) as pool:
            # 500 tokens at >= 10 ms per step: several seconds in flight each.
            futures: list[Future[dict[str, Any]]] = [
                pool.submit(complete, endpoints[i % 2], 500) for i in range(8)]
            wait_for(lambda: sum(_running(e) for e in endpoints) == 8, "all 8 requests running on the replicas")
            place(team, 0)
            wait_for(lambda: {r["state"] for r in slow.status()["replicas"]} == {"draining"}, "both replicas draining")
            in_flight_at_drain = sum(not f.done() for f in futures)
            results = [f.result(timeout=120) for f in futures]
        assert in_flight_at_drain > 0, "the drain started after the requests had finished: nothing was tested"
        assert all(r["usage"]["completion_tokens"] == 500 for r in results)
        wait_for(lambda: {r["status"] for r in replicas(team).values()} == {"terminated"}, "both terminated")
        wait_for(lambda: slow.status()["replicas"] == [], "the agent to forget them")
        for endpoint in endpoints:
            with pytest.raises(httpx.HTTPError):
                httpx.get(f"{endpoint}/v1/models", timeout=2)
    finally:
        slow.stop()


def _running(endpoint: str) -> float:
    return parse_metrics(httpx.get(f"{endpoint}/metrics", timeout=5).text).gauges["running"]


def test_control_plane_down_replicas_keep_serving_and_the_agent_catches_up(
    team: httpx.Client, agent: AgentThread, control_plane: ControlPlaneServer
) -> None:
    place(team, 2)
    ready = ready_replicas(team, 2)
    name, victim = min(ready.items())
    control_plane.stop()
    wait_for(lambda: agent.status()["control_plane_up"] is False, "the agent to notice the control plane is down")
    for replica in ready.values():  # still serving
        assert complete(replica["endpoint"])["usage"]["completion_tokens"] == 16
    # The agent keeps reconciling from its last desired state: a crash is still repaired.
    httpx.post(f"{victim['endpoint']}/admin/fault", json={"mode": "crash"}, timeout=10).raise_for_status()
    wait_for(lambda: next(r for r in agent.status()["replicas"] if r["name"] == name)["restarts"] == 1
             and {r["state"] for r in agent.status()["replicas"]} == {"ready"}, "the crash repaired offline")
    assert metric(agent.metrics(), 'agent_control_plane_errors_total{operation="desired"}') > 0
    control_plane.start()
    wait_for(lambda: replicas(team)[name]["restarts"] == 1, "the agent to report what happened meanwhile")
    assert agent.status()["control_plane_up"] is True
    assert {r["status"] for r in replicas(team).values()} == {"ready"}
