"""A real Prometheus (Debian package) for the dashboard tests, and synthetic gateway traffic for it to scrape.

The traffic is a collector whose counts grow with time in fixed proportions and are read atomically at each
scrape, so every ratio the dashboard computes (attainment, error ratio) is exact whatever the scrape timing."""

from __future__ import annotations

import shutil
import subprocess
import time
from collections.abc import Iterable, Iterator
from contextlib import contextmanager
from dataclasses import dataclass
from pathlib import Path

import httpx
import yaml
from prometheus_client import CollectorRegistry, start_http_server
from prometheus_client.core import CounterMetricFamily, HistogramMetricFamily, Metric
from prometheus_client.utils import floatToGoString

from agents.gateway.metrics import LABELS, LATENCY_BUCKETS, TPOT_BUCKETS
from tests.support.ports import free_port
from tests.support.real_parts import require_or_skip


@dataclass(frozen=True, slots=True)
class Requests:
    """Per tick, `count` requests of one label set, all with these latencies."""

    version: str
    arm: str
    status: str
    count: int
    ttft_s: float
    tpot_s: float
    region: str = "us-east-1"


class GatewayTraffic:
    def __init__(self, deployment: str, per_tick: list[Requests], ticks_per_s: float = 10.0) -> None:
        self.deployment, self.per_tick, self.ticks_per_s = deployment, per_tick, ticks_per_s
        self.start = time.monotonic()

    def collect(self) -> Iterable[Metric]:
        n = int((time.monotonic() - self.start) * self.ticks_per_s)
        requests = CounterMetricFamily("llmfleet_gateway_requests", "Requests answered", labels=LABELS)
        tokens = CounterMetricFamily("llmfleet_gateway_tokens", "Tokens", labels=[*LABELS[:4], "kind"])
        ttft = HistogramMetricFamily("llmfleet_gateway_ttft_seconds", "TTFT", labels=LABELS)
        tpot = HistogramMetricFamily("llmfleet_gateway_tpot_seconds", "TPOT", labels=LABELS)
        # Requests of the same label set share one series: sum their bucket counts.
        series: dict[tuple[str, ...], list[Requests]] = {}
        for r in self.per_tick:
            series.setdefault((self.deployment, r.version, r.arm, r.region, r.status), []).append(r)
        for labels, group in series.items():
            total = n * sum(r.count for r in group)
            requests.add_metric(list(labels), total)
            tokens.add_metric([*labels[:4], "completion"], total * 100)
            for family, bounds, latency in ((ttft, LATENCY_BUCKETS, "ttft_s"), (tpot, TPOT_BUCKETS, "tpot_s")):
                buckets = [(floatToGoString(b), n * sum(r.count for r in group if getattr(r, latency) <= b))
                           for b in bounds] + [("+Inf", total)]
                family.add_metric(list(labels), buckets, sum_value=n * sum(r.count * getattr(r, latency) for r in group))
        yield from (requests, tokens, ttft, tpot)


@contextmanager
def serve_metrics(collector: GatewayTraffic) -> Iterator[str]:
    registry = CollectorRegistry()
    registry.register(collector)  # type: ignore[arg-type]
    port = free_port()
    server, thread = start_http_server(port, addr="127.0.0.1", registry=registry)
    try:
        yield f"127.0.0.1:{port}"
    finally:
        server.shutdown()
        thread.join(5)


FIRING_RULE = {"groups": [{"name": "dashboard-test", "rules": [{
    "alert": "DashboardTestPage", "expr": "vector(1)", "labels": {"severity": "page", "deployment": "chat"},
    "annotations": {"summary": "chat is burning its TTFT error budget"}}]}]}


@contextmanager
def running_prometheus(workdir: Path, targets: list[str], rules: dict[str, object] | None = None) -> Iterator[str]:
    binary = shutil.which("prometheus")
    require_or_skip(binary is not None, "Prometheus (Debian package `prometheus`)")
    assert binary is not None
    workdir.mkdir(parents=True, exist_ok=True)
    config: dict[str, object] = {
        "global": {"scrape_interval": "1s", "evaluation_interval": "1s"},
        "scrape_configs": [{"job_name": "dashboard-test", "static_configs": [{"targets": targets}]}],
    }
    if rules is not None:
        (workdir / "rules.yml").write_text(yaml.safe_dump(rules))
        config["rule_files"] = [str(workdir / "rules.yml")]
    (workdir / "prometheus.yml").write_text(yaml.safe_dump(config))
    port = free_port()
    url = f"http://127.0.0.1:{port}"
    log = open(workdir / "prometheus.log", "wb")  # noqa: SIM115 - closed below
    process = subprocess.Popen(
        [binary, f"--config.file={workdir / 'prometheus.yml'}", f"--storage.tsdb.path={workdir / 'data'}",
         f"--web.listen-address=127.0.0.1:{port}", "--log.level=warn"],
        stdout=log, stderr=subprocess.STDOUT, stdin=subprocess.DEVNULL)
    try:
        deadline = time.monotonic() + 30
        while True:
            assert process.poll() is None, (workdir / "prometheus.log").read_text()
            try:
                if httpx.get(f"{url}/-/ready", timeout=1).status_code == 200:
                    break
            except httpx.HTTPError:
                pass
            assert time.monotonic() < deadline, "Prometheus did not become ready"
            time.sleep(0.1)
        yield url
    finally:
        process.terminate()
        try:
            process.wait(10)
        except subprocess.TimeoutExpired:
            process.kill()
            process.wait(5)
        log.close()


def wait_for(url: str, query: str, predicate: object = None, timeout: float = 30.0) -> list[dict[str, object]]:
    """Poll an instant query until it returns a non-empty (and, if given, `predicate`-passing) result."""
    deadline = time.monotonic() + timeout
    while True:
        result = httpx.get(f"{url}/api/v1/query", params={"query": query}, timeout=5).json()["data"]["result"]
        if result and (predicate is None or predicate(result)):  # type: ignore[operator]
            return list(result)
        assert time.monotonic() < deadline, f"no data for {query} within {timeout:.0f} s"
        time.sleep(0.25)
