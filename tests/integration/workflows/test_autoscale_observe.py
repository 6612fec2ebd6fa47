"""The AutoscaleWorkflow's observe activity against a real registry (a plain coroutine, no Temporal): the
capacity per replica it hands the policy comes from the performance model at the accelerator speed the
replicas' reported TPOT shows, so replicas slower than their datasheet count for less."""

from __future__ import annotations

import asyncio
from datetime import UTC, datetime
from typing import Any

import pytest
from fastapi import FastAPI
from fastapi.testclient import TestClient
from sqlalchemy import select

from registry.api_keys import Scope, issue_key
from registry.clusters import Cluster
from registry.db import transaction
from registry.replicas import Replica
from tests.conftest import KeyMaker, bearer
from tests.support.fleet import deployment_body, ok, populate
from workflows.autoscale_activities import AutoscaleActivities
from workflows.types import LoadObservation, ObserveLoad

EAST = "aws-use1"
H100_POOL = "p5.4xlarge/on-demand"


@pytest.fixture
def replicas(app: FastAPI, client: TestClient, make_key: KeyMaker) -> list[str]:
    team = bearer(make_key("search", Scope.DEPLOY))
    populate(client, bearer(make_key("platform", Scope.ADMIN)), team)
    ok(client.post("/v1/deployments", json=deployment_body(), headers=team), 201)
    ok(client.put("/v1/deployments/chat/placement", headers=team, json={"replicas": [
        {"cluster": EAST, "pool": H100_POOL, "variant": "bf16", "count": 2}]}))
    with transaction(app.state.llmfleet.sessions) as session:
        return sorted(r.name for r in session.scalars(
            select(Replica).join(Cluster, Replica.cluster_id == Cluster.id).where(Cluster.name == EAST)))


def report(app: FastAPI, client: TestClient, names: list[str], tpot_p95_ms: float | None) -> None:
    with transaction(app.state.llmfleet.sessions) as session:
        key = issue_key(session, team="platform", scopes=[Scope.AGENT], name="agent", actor="test",
                        cluster=EAST).plaintext
    telemetry: dict[str, Any] = {"observed_at": datetime.now(UTC).isoformat(), "window_s": 30,
                                 "request_rate": 2.0, "ttft_p95_ms": 100.0, "tpot_p95_ms": tpot_p95_ms}
    reports = [{"name": n, "state": "ready", "endpoint": f"http://127.0.0.1:9/{n}", "telemetry": telemetry}
               for n in names]
    ok(client.post(f"/v1/agent/clusters/{EAST}/heartbeat", headers=bearer(key),
                   json={"agent_version": "test", "replicas": reports}))


def observe(app: FastAPI, client: TestClient, names: list[str], tpot_p95_ms: float | None,
            speeds: dict[str, float] | None = None) -> LoadObservation:
    report(app, client, names, tpot_p95_ms)
    request = ObserveLoad("chat", None, speeds or {})
    observed = asyncio.run(AutoscaleActivities(app.state.llmfleet.sessions).observe(request))
    assert observed.replicas == 2 and observed.rps == pytest.approx(4.0)
    return observed


def capacity(app: FastAPI, client: TestClient, names: list[str], tpot_p95_ms: float | None) -> float:
    return observe(app, client, names, tpot_p95_ms).capacity_rps


def test_replicas_slower_than_their_datasheet_count_for_less_capacity(
        app: FastAPI, client: TestClient, replicas: list[str]) -> None:
    believed = capacity(app, client, replicas, None)  # no TPOT reported: the datasheet's capacity
    assert believed > 0
    # As fast as the model expects (a TPOT no replica could beat): the same capacity, never more.
    assert capacity(app, client, replicas, 0.5) == pytest.approx(believed)
    # The model expects 9.5 ms at 2 requests/s per replica (bf16 on an H100 at its datasheet speed); 11.9 ms
    # is what it predicts at 0.8 of that speed, 16.1 ms at 0.6.
    slow = capacity(app, client, replicas, 11.9)
    slower = capacity(app, client, replicas, 16.1)
    assert slower < slow < 0.9 * believed


def test_the_speed_estimate_carries_over_windows(app: FastAPI, client: TestClient, replicas: list[str]) -> None:
    """The workflow hands the last estimate back: a window showing 0.8 moves an estimate of 0.6 only part of
    the way (smoothing), and a window without TPOT keeps it."""
    first = observe(app, client, replicas, 11.9)
    assert first.speeds == {"H100": pytest.approx(0.8, abs=0.011)}
    blended = observe(app, client, replicas, 11.9, {"H100": 0.6})
    assert 0.6 < blended.speeds["H100"] < 0.7
    assert observe(app, client, replicas, None, blended.speeds).speeds == blended.speeds
