"""Gateway metrics in their own registry (no global default registry: several gateways may share a process
in tests)."""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Any

from prometheus_client import CollectorRegistry, Counter, Gauge, Histogram

LABELS = ("deployment", "version", "arm", "client_region", "status")
LATENCY_BUCKETS = (0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1.0, 2.5, 5.0, 10.0, 30.0, 60.0, 120.0)
TPOT_BUCKETS = (0.001, 0.0025, 0.005, 0.01, 0.02, 0.04, 0.08, 0.16, 0.32, 0.64, 1.28)


@dataclass(frozen=True, slots=True)
class RequestSeries:
    """The children of one label set, looked up once: `labels()` costs microseconds on every request."""

    requests: Any
    ttft: Any
    tpot: Any
    e2e: Any
    prompt_tokens: Any
    completion_tokens: Any


@dataclass(slots=True)
class GatewayMetrics:
    registry: CollectorRegistry = field(default_factory=CollectorRegistry)
    requests: Counter = field(init=False)
    tokens: Counter = field(init=False)
    ttft: Histogram = field(init=False)
    tpot: Histogram = field(init=False)
    e2e: Histogram = field(init=False)
    retries: Counter = field(init=False)
    spillovers: Counter = field(init=False)
    rejected: Counter = field(init=False)
    table_age: Gauge = field(init=False)
    _children: dict[tuple[str, ...], RequestSeries] = field(default_factory=dict)

    def __post_init__(self) -> None:
        r = self.registry
        self.requests = Counter("llmfleet_gateway_requests", "Requests answered", LABELS, registry=r)
        self.tokens = Counter("llmfleet_gateway_tokens", "Tokens served", (*LABELS[:4], "kind"), registry=r)
        self.ttft = Histogram("llmfleet_gateway_ttft_seconds", "Time to first byte of the answer", LABELS,
                              buckets=LATENCY_BUCKETS, registry=r)
        self.tpot = Histogram("llmfleet_gateway_tpot_seconds", "Time per output token after the first", LABELS,
                              buckets=TPOT_BUCKETS, registry=r)
        self.e2e = Histogram("llmfleet_gateway_e2e_seconds", "Whole request", LABELS, buckets=LATENCY_BUCKETS,
                             registry=r)
        self.retries = Counter("llmfleet_gateway_retries", "Attempts retried on another replica",
                               ("deployment", "reason"), registry=r)
        self.spillovers = Counter("llmfleet_gateway_spillovers", "Requests sent outside the published shares",
                                  ("deployment", "client_region", "to_region"), registry=r)
        self.rejected = Counter("llmfleet_gateway_rejected", "Requests refused before routing",
                                ("reason",), registry=r)
        self.table_age = Gauge("llmfleet_gateway_routing_table_age_seconds",
                               "Seconds since the routing table was last confirmed", registry=r)

    def series(self, deployment: str, version: str, arm: str, client_region: str, status: str) -> RequestSeries:
        key = (deployment, version, arm, client_region, status)
        found = self._children.get(key)
        if found is None:
            found = RequestSeries(
                self.requests.labels(*key), self.ttft.labels(*key), self.tpot.labels(*key), self.e2e.labels(*key),
                self.tokens.labels(*key[:4], "prompt"), self.tokens.labels(*key[:4], "completion"),
            )
            self._children[key] = found
        return found
