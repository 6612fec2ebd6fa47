"""Canary analysis from a real Prometheus (Debian's binary): the gateway's own metrics registry, fed with
per-version observations and served over HTTP, is scraped every second; the rollout's analysis activity
then reads canary vs baseline from Prometheus. A slower canary fails, an equal one passes, a deployment
without series is inconclusive (no data is never a pass), and so is an unreachable Prometheus."""

from __future__ import annotations

import asyncio
import shutil
import subprocess
import threading
from collections.abc import Iterator
from dataclasses import dataclass
from datetime import timedelta

import httpx
import pytest
from fastapi import FastAPI
from fastapi.testclient import TestClient
from prometheus_client import start_http_server

from agents.gateway.metrics import GatewayMetrics
from registry.api_keys import Scope
from registry.base import utcnow
from tests.conftest import KeyMaker, bearer
from tests.integration.agents.agent_harness import wait_for
from tests.support.fleet import deployment_body, ok, populate, version_body
from tests.support.ports import free_port
from tests.support.real_parts import require_or_skip
from workflows import promql
from workflows.prometheus_canary import PrometheusArms
from workflows.rollout_activities import RolloutActivities
from workflows.settings import WorkflowSettings
from workflows.types import AnalyseStep, StepVerdict

# deployment -> version -> (TTFT s, TPOT s, every n-th answer a 503 or 0 for none)
TRAFFIC = {
    "worse": {"v1": (0.08, 0.015, 0), "v2": (0.4, 0.015, 5)},
    "equal": {"v1": (0.08, 0.015, 0), "v2": (0.08, 0.015, 0)},
}
WINDOW_S = 60.0


@dataclass
class FedPrometheus:
    url: str


def _feed(metrics: GatewayMetrics, stop: threading.Event) -> None:
    n = 0
    while not stop.is_set():
        n += 1
        for deployment, versions in TRAFFIC.items():
            for version, (ttft, tpot, every) in versions.items():
                arm = "baseline" if version == "v1" else "canary"
                status = "503" if every and n % every == 0 else "200"
                series = metrics.series(deployment, version, arm, "us-east-1", status)
                series.requests.inc()
                if status == "200":
                    series.ttft.observe(ttft)
                    series.tpot.observe(tpot)
        stop.wait(0.02)


@pytest.fixture(scope="module")
def prometheus(tmp_path_factory: pytest.TempPathFactory) -> Iterator[FedPrometheus]:
    binary = shutil.which("prometheus")
    require_or_skip(binary is not None, "prometheus (Debian package prometheus)")
    assert binary is not None
    tmp = tmp_path_factory.mktemp("canary-prom")
    metrics = GatewayMetrics()
    exporter_port = free_port()
    server, _ = start_http_server(exporter_port, addr="127.0.0.1", registry=metrics.registry)
    stop = threading.Event()
    feeder = threading.Thread(target=_feed, args=(metrics, stop), daemon=True)
    config = tmp / "prometheus.yml"
    config.write_text(f"""global:
  scrape_interval: 1s
  evaluation_interval: 1s
scrape_configs:
  - job_name: gateway
    static_configs:
      - targets: ["127.0.0.1:{exporter_port}"]
""")
    port = free_port()
    log = (tmp / "prometheus.log").open("wb")
    proc = subprocess.Popen([binary, f"--config.file={config}", f"--storage.tsdb.path={tmp / 'data'}",
                             f"--web.listen-address=127.0.0.1:{port}"], stdout=log, stderr=subprocess.STDOUT)
    url = f"http://127.0.0.1:{port}"
    try:
        wait_for(lambda: httpx.get(f"{url}/-/ready", timeout=2).status_code == 200, "Prometheus ready", timeout=60)
        feeder.start()
        fed = FedPrometheus(url)

        def enough() -> bool:
            answer = httpx.get(f"{url}/api/v1/query", timeout=5,
                               params={"query": promql.requests_by_version("worse", WINDOW_S)}).json()
            values = {r["metric"]["version"]: float(r["value"][1]) for r in answer["data"]["result"]}
            return len(values) == 2 and min(values.values()) >= 40

        wait_for(enough, "both arms' traffic in Prometheus", timeout=60, interval=0.5)
        yield fed
    finally:
        stop.set()
        proc.terminate()
        proc.wait(20)
        log.close()
        server.shutdown()


@pytest.fixture
def deployments(client: TestClient, make_key: KeyMaker) -> None:
    team = bearer(make_key("search", Scope.DEPLOY))
    populate(client, bearer(make_key("platform", Scope.ADMIN)), team)
    ok(client.post("/v1/models/llama-3.1-8b/versions", json=version_body("v2"), headers=team), 201)
    for name in ("worse", "equal", "idle"):
        ok(client.post("/v1/deployments", json=deployment_body(name=name), headers=team), 201)


def step(deployment: str, slo_only: bool = False) -> AnalyseStep:
    since = utcnow() - timedelta(seconds=WINDOW_S)
    return AnalyseStep(deployment, baseline_version="v1", canary_version="v2", since=since.isoformat(),
                       min_requests=20, max_latency_ratio=1.2, max_error_rate_delta=0.01,
                       slo_ttft_p95_ms=500, slo_tpot_p95_ms=50, slo_only=slo_only)


def activities(app: FastAPI, url: str) -> RolloutActivities:
    return RolloutActivities(app.state.llmfleet.sessions, settings=WorkflowSettings(prometheus_url=url))


@pytest.mark.usefixtures("deployments")
def test_canary_verdicts_come_from_prometheus(app: FastAPI, prometheus: FedPrometheus) -> None:
    acts = activities(app, prometheus.url)
    worse = acts_run(acts, step("worse"))
    assert worse.source == "prometheus" and worse.verdict == "fail", worse
    assert any("p95 TTFT" in r for r in worse.reasons) and any("error rate" in r for r in worse.reasons)
    assert worse.canary.ttft_p95_ms is not None and worse.baseline.ttft_p95_ms is not None
    assert worse.canary.ttft_p95_ms > 250 and worse.baseline.ttft_p95_ms < 100
    assert worse.canary.errors > 0 and worse.baseline.errors == 0 and worse.baseline.requests >= 20

    equal = acts_run(acts, step("equal"))
    assert (equal.source, equal.verdict) == ("prometheus", "pass"), equal
    assert equal.canary.tpot_p95_ms == pytest.approx(equal.baseline.tpot_p95_ms, rel=0.05)

    idle = acts_run(acts, step("idle"))
    assert (idle.source, idle.verdict) == ("prometheus", "inconclusive"), idle
    assert idle.canary.requests == 0 and idle.canary.ttft_p95_ms is None

    # Blue-green judges the new colour by the SLO alone: the slow canary still passes its 500 ms SLO,
    # and the one that errs every fifth answer does not.
    green = acts_run(acts, step("worse", slo_only=True))
    assert green.verdict == "fail" and all("error rate" in r for r in green.reasons), green


@pytest.mark.usefixtures("deployments")
def test_an_unreachable_prometheus_is_inconclusive_never_a_pass(app: FastAPI) -> None:
    verdict = acts_run(activities(app, f"http://127.0.0.1:{free_port()}"), step("equal"))
    assert (verdict.source, verdict.verdict) == ("prometheus", "inconclusive")
    assert verdict.reasons[0].startswith("Prometheus did not answer")


@pytest.mark.usefixtures("deployments")
def test_without_prometheus_the_agents_telemetry_is_used(app: FastAPI) -> None:
    acts = RolloutActivities(app.state.llmfleet.sessions, settings=WorkflowSettings(prometheus_url=None))
    verdict = acts_run(acts, step("equal"))
    # No agent reported anything for these deployments: inconclusive, from the registry.
    assert (verdict.source, verdict.verdict) == ("telemetry", "inconclusive")


def test_queries_answer_per_version(prometheus: FedPrometheus) -> None:
    arms = asyncio.run(PrometheusArms(prometheus.url).arms("equal", ["v1", "v2", "v9"], WINDOW_S))
    assert arms["v1"].requests >= 20 and arms["v2"].requests >= 20 and arms["v1"].errors == 0
    assert arms["v9"].requests == 0 and arms["v9"].ttft_p95_ms is None


def acts_run(acts: RolloutActivities, request: AnalyseStep) -> StepVerdict:
    return asyncio.run(acts.analyse_step(request))
