"""A real Prometheus (Debian's 2.42) configured by llmfleet scrapes a running fleet — the control plane under
uvicorn, two simulated replicas found through the registry (http_sd), a gateway found through the file_sd
file — while traffic flows; then every PromQL query of `control_plane.observability.queries` returns data,
the replica targets carry their registry labels, the rules are loaded, and the cost Prometheus reports is
the cost the API reports."""

from __future__ import annotations

import math
import threading
from collections.abc import Iterator
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

import httpx
import pytest

from agents.gateway.config import GatewayConfig
from control_plane.app import create_app
from control_plane.observability import queries
from control_plane.observability.install import install_observability
from control_plane.settings import Settings
from control_plane.stack.prometheus import (
    StaticTarget,
    prometheus_binary,
    start_prometheus,
    wait_for_prometheus,
    write_static_targets,
)
from control_plane.stack.processes import stop_pid
from registry.api_keys import Scope, issue_key
from registry.db import make_engine, session_factory, transaction
from tests.integration.gateway.gateway_harness import L4, GatewayThread, SimProcess, start_sim, wait_until
from tests.support.fleet import deployment_body, ok, populate
from tests.support.live_server import live_server
from tests.support.ports import free_port
from tests.support.real_parts import require_or_skip

DEPLOYMENT = "chat"


class Traffic:
    """Chat completions through the gateway from a background thread until stopped."""

    def __init__(self, url: str, key: str) -> None:
        self.url, self.key = url, key
        self.sent = 0
        self.stop = threading.Event()
        self.thread = threading.Thread(target=self._run, daemon=True)

    def _run(self) -> None:
        body = {"model": DEPLOYMENT, "messages": [{"role": "user", "content": "hello"}], "max_tokens": 8}
        with httpx.Client(timeout=30, headers={"Authorization": f"Bearer {self.key}"}) as client:
            while not self.stop.is_set():
                try:
                    client.post(f"{self.url}/v1/chat/completions", json=body)
                    self.sent += 1
                except httpx.HTTPError:
                    pass
                self.stop.wait(0.02)

    def __enter__(self) -> Traffic:
        self.thread.start()
        return self

    def __exit__(self, *exc: object) -> None:
        self.stop.set()
        self.thread.join(30)


def key(engine: Any, team: str, *scopes: Scope, cluster: str | None = None) -> str:
    with transaction(session_factory(engine)) as session:
        return issue_key(session, team=team, scopes=list(scopes), name="t", actor="test", cluster=cluster).plaintext


def telemetry() -> dict[str, Any]:
    return {"observed_at": datetime.now(UTC).isoformat(), "window_s": 10, "prompt_tokens_per_s": 100.0,
            "generation_tokens_per_s": 50.0, "ttft_p95_ms": 100.0, "tpot_p95_ms": 10.0}


class World:
    def __init__(self, api_url: str, prometheus_url: str, admin: dict[str, str]) -> None:
        self.api_url, self.prometheus_url, self.admin = api_url, prometheus_url, admin

    def query(self, promql: str) -> list[dict[str, Any]]:
        response = httpx.get(f"{self.prometheus_url}/api/v1/query", params={"query": promql}, timeout=10)
        body = response.json()
        assert body["status"] == "success", f"{promql}: {body}"
        result: list[dict[str, Any]] = body["data"]["result"]
        return [r for r in result if not math.isnan(float(r["value"][1]))]


@pytest.fixture(scope="module")
def world(tmp_path_factory: pytest.TempPathFactory) -> Iterator[World]:
    require_or_skip(prometheus_binary() is not None, "prometheus (Debian package prometheus)")
    tmp = tmp_path_factory.mktemp("prom")
    url = f"sqlite:///{tmp}/registry.db"
    engine = make_engine(url)
    app = create_app(Settings(database_url=url, state_dir=tmp / "state", mutation_rate_limit_per_minute=0),
                     engine=engine)
    install_observability(app)
    sims: list[SimProcess] = []
    with live_server(app) as api_url:
        admin_key = key(engine, "platform", Scope.ADMIN)
        admin = {"Authorization": f"Bearer {admin_key}"}
        team = {"Authorization": f"Bearer {key(engine, 'search', Scope.DEPLOY)}"}
        gateway: GatewayThread | None = None
        prometheus = None
        try:
            with httpx.Client(base_url=api_url, timeout=30) as api:
                populate(api, admin, team)  # type: ignore[arg-type]
                agent = {"Authorization": f"Bearer {key(engine, 'platform', Scope.AGENT, cluster='aws-use1')}"}
                ok(api.post("/v1/deployments", headers=team,
                            json=deployment_body(constraints={"budget_per_hour": 1.0})), 201)
                placement = [{"cluster": "aws-use1", "pool": L4, "variant": "fp8", "tensor_parallel": 1, "count": 2}]
                ok(api.put(f"/v1/deployments/{DEPLOYMENT}/placement", json={"replicas": placement}, headers=team))
                names = [r["name"] for r in ok(api.get("/v1/agent/clusters/aws-use1/desired", headers=agent))["replicas"]]
                sims += [start_sim(DEPLOYMENT, speedup=20.0) for _ in names]
                reports = [{"name": n, "state": "ready", "endpoint": s.url, "telemetry": telemetry()}
                           for n, s in zip(names, sims, strict=True)]
                ok(api.post("/v1/agent/clusters/aws-use1/heartbeat", headers=agent,
                            json={"agent_version": "t", "applied_generation": None, "replicas": reports}))
            gateway_key = key(engine, "platform", Scope.AGENT, cluster="aws-use1")
            config = GatewayConfig(region="us-east-1", api_url=api_url, api_key=gateway_key,
                                   port=free_port(), poll_interval_s=0.2)
            gateway = GatewayThread(config).start()
            wait_until(lambda: gateway.parts.gateway.source.snapshot is not None, "the first routing table")
            child, prometheus_url, paths = start_prometheus(api_url, admin_key, tmp / "state", tmp / "logs",
                                                            scrape_interval="1s")
            prometheus = child
            # The gateway appears later, the way the supervisor adds processes: rewrite the file_sd file.
            write_static_targets(paths.static_targets, [StaticTarget(gateway.url, "gateway", {"region": "us-east-1"})])
            wait_for_prometheus(prometheus_url, child)
            client_key = key(engine, "search", Scope.READ)
            wait_until(lambda: bool(gateway.parts.gateway.source.snapshot.keys), "client keys in the gateway table")
            with Traffic(gateway.url, client_key):
                yield World(api_url, prometheus_url, admin)
        finally:
            if prometheus is not None:
                stop_pid(prometheus.popen.pid, prometheus.argv)
            if gateway is not None:
                gateway.stop()
            for sim in sims:
                sim.kill()
    engine.dispose()


def test_every_dashboard_and_canary_query_returns_data(world: World) -> None:
    pending = dict(queries.catalog(DEPLOYMENT, window="30s"))
    answers: dict[str, list[dict[str, Any]]] = {}

    def all_answered() -> bool:
        for name, promql in list(pending.items()):
            result = world.query(promql)
            if result:
                answers[name] = result
                del pending[name]
        return not pending

    try:
        wait_until(all_answered, "every query to return data", timeout=90)
    except AssertionError:
        pytest.fail(f"no data for: {', '.join(sorted(pending))}")
    assert float(answers["slo_ttft"][0]["value"][1]) == 0.5
    attainment = float(answers["ttft_attainment"][0]["value"][1])
    assert 0.0 <= attainment <= 1.0
    arms = {r["metric"].get("arm") for r in answers["ttft_p95_by_arm"]}
    assert arms == {"baseline"}


def test_replica_targets_come_from_the_registry_with_their_labels(world: World) -> None:
    def replica_targets() -> list[dict[str, Any]]:
        active = httpx.get(f"{world.prometheus_url}/api/v1/targets", timeout=10).json()["data"]["activeTargets"]
        return [t for t in active if t["labels"].get("component") == "replica" and t["health"] == "up"]

    targets = wait_until(lambda: len(replica_targets()) == 2 and replica_targets(), "two replica targets up")
    for target in targets:
        labels = target["labels"]
        assert labels["deployment"] == DEPLOYMENT and labels["cluster"] == "aws-use1"
        assert labels["region"] == "us-east-1" and labels["accelerator"] == "L4" and labels["market"] == "on-demand"
        assert labels["version"] == "v1" and labels["team"] == "search"
    components = {r["metric"]["component"] for r in world.query("up == 1")}
    assert components >= {"api", "replica", "gateway"}


def test_prometheus_cost_equals_the_api_cost_and_the_rules_are_loaded(world: World) -> None:
    api = ok(httpx.get(f"{world.api_url}/v1/costs", params={"group_by": "region"}, headers=world.admin))
    promql = queries.cost_by("region")
    by_region = wait_until(lambda: world.query(promql), "the cost series")
    assert {r["metric"]["region"]: float(r["value"][1]) for r in by_region} == pytest.approx(
        {i["key"]: i["usd_per_hour"] for i in api["items"]})
    groups = httpx.get(f"{world.prometheus_url}/api/v1/rules", timeout=10).json()["data"]["groups"]
    assert {g["name"] for g in groups} >= {"llmfleet-slo-recording", "llmfleet-slo-alerts", "llmfleet-fleet"}
    assert all(r["health"] == "ok" for g in groups for r in g["rules"] if "health" in r)
    # Budget 1 $/h against two L4 replicas: the over-budget condition holds (the alert waits 10 min to fire).
    over = world.query("sum by (deployment) (max without (instance, job) (llmfleet_cost_usd_per_hour)) > on "
                       "(deployment) max by (deployment) (llmfleet_deployment_budget_usd_per_hour)")
    assert [r["metric"]["deployment"] for r in over] == [DEPLOYMENT]
