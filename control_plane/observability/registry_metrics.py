"""Registry-backed series, computed at scrape time: cost, replicas and GPUs, deployment SLO and budget,
cluster heartbeat age, replica restarts and each deployment's latest plan.

Computed on collect (not kept in gauges the API would have to update) so they are exactly what the registry
and `GET /v1/costs` say at that moment, whichever process changed the registry.
"""

from __future__ import annotations

import logging
from collections.abc import Callable, Iterator
from datetime import datetime

from prometheus_client.core import GaugeMetricFamily
from prometheus_client.metrics_core import Metric
from prometheus_client.registry import Collector
from sqlalchemy.orm import Session, sessionmaker

from control_plane.observability.costs import to_billed, to_terms
from control_plane.observability.slo_buckets import GATEWAY_TPOT_BUCKETS, GATEWAY_TTFT_BUCKETS, slo_le
from registry import costs as registry
from registry.base import utcnow
from scheduler.cost_accounting import BilledReplica, SeriesKey, cost_series, deployment_costs

log = logging.getLogger(__name__)

COST_LABELS = ["deployment", "team", "region", "accelerator", "market"]
DEPLOYMENT_LABELS = ["deployment", "team"]
# A p95 latency SLO: 95 % of requests within the threshold. Errors get a 99 % objective.
LATENCY_OBJECTIVE = 0.95
ERROR_OBJECTIVE = 0.99


def _gauge(name: str, doc: str, labels: list[str]) -> GaugeMetricFamily:
    return GaugeMetricFamily(name, doc, labels=labels)


class RegistryCollector(Collector):
    def __init__(self, sessions: sessionmaker[Session], clock: Callable[[], datetime] = utcnow) -> None:
        self.sessions = sessions
        self.clock = clock

    def collect(self) -> Iterator[Metric]:
        up = _gauge("llmfleet_registry_up", "1 if the registry could be read for this scrape", [])
        try:
            with self.sessions() as session:
                families = list(self._families(session))
        except Exception:  # noqa: BLE001 - a failed scrape must say so, not break /metrics
            log.exception("could not read the registry for /metrics")
            up.add_metric([], 0)
            yield up
            return
        up.add_metric([], 1)
        yield up
        yield from families

    def _families(self, session: Session) -> Iterator[Metric]:
        now = self.clock()
        rows = registry.billed_replicas(session)
        replicas = [to_billed(r, now) for r in rows]
        yield from self._cost(replicas)
        yield from self._deployments(registry.deployment_terms(session), replicas)
        yield from self._clusters(session, now)
        yield from self._restarts(rows)
        yield from self._plans(session)

    @staticmethod
    def _cost(replicas: list[BilledReplica]) -> Iterator[Metric]:
        cost = _gauge("llmfleet_cost_usd_per_hour", "USD per hour of the replicas holding GPUs", COST_LABELS)
        count = _gauge("llmfleet_replicas", "Replicas holding GPUs (provisioning to draining)", COST_LABELS)
        gpus = _gauge("llmfleet_gpus", "GPUs held by replicas", COST_LABELS)
        for key, value in sorted(cost_series(replicas).items(), key=lambda kv: tuple(vars_of(kv[0]))):
            labels = vars_of(key)
            cost.add_metric(labels, value.usd_per_hour)
            count.add_metric(labels, value.replicas)
            gpus.add_metric(labels, value.gpus)
        yield from (cost, count, gpus)

    @staticmethod
    def _deployments(deployments: list[registry.DeploymentTermsRow], replicas: list[BilledReplica]
                     ) -> Iterator[Metric]:
        ttft = _gauge("llmfleet_deployment_slo_ttft_seconds", "p95 time-to-first-token SLO", DEPLOYMENT_LABELS)
        tpot = _gauge("llmfleet_deployment_slo_tpot_seconds", "p95 time-per-output-token SLO", DEPLOYMENT_LABELS)
        objective = _gauge("llmfleet_deployment_slo_objective_ratio", "Fraction of requests that must be good",
                           [*DEPLOYMENT_LABELS, "slo"])
        le = _gauge("llmfleet_deployment_slo_le", "1 on the gateway bucket that counts a request as within the SLO",
                    [*DEPLOYMENT_LABELS, "slo", "le"])
        budget = _gauge("llmfleet_deployment_budget_usd_per_hour", "Budget of deployments that set one",
                        DEPLOYMENT_LABELS)
        tokens = _gauge("llmfleet_deployment_tokens_per_second", "Prompt + generated tokens/s (agent telemetry)",
                        DEPLOYMENT_LABELS)
        goodput = _gauge("llmfleet_deployment_goodput_tokens_per_second",
                         "Tokens/s served by replicas whose window met the SLO", DEPLOYMENT_LABELS)
        costs = deployment_costs(replicas, {d.name: to_terms(d) for d in deployments})
        for row in deployments:
            labels = [row.name, row.team]
            ttft.add_metric(labels, row.ttft_p95_ms / 1000)
            tpot.add_metric(labels, row.tpot_p95_ms / 1000)
            for slo, ratio in (("ttft", LATENCY_OBJECTIVE), ("tpot", LATENCY_OBJECTIVE), ("errors", ERROR_OBJECTIVE)):
                objective.add_metric([*labels, slo], ratio)
            for slo, threshold, bounds in (("ttft", row.ttft_p95_ms, GATEWAY_TTFT_BUCKETS),
                                           ("tpot", row.tpot_p95_ms, GATEWAY_TPOT_BUCKETS)):
                bucket = slo_le(threshold / 1000, bounds)
                if bucket is not None:
                    le.add_metric([*labels, slo, bucket], 1)
            if row.budget_usd_per_hour is not None:
                budget.add_metric(labels, row.budget_usd_per_hour)
            tokens.add_metric(labels, costs[row.name].tokens_per_second)
            goodput.add_metric(labels, costs[row.name].goodput_tokens_per_second)
        yield from (ttft, tpot, objective, le, budget, tokens, goodput)

    @staticmethod
    def _clusters(session: Session, now: datetime) -> Iterator[Metric]:
        age = _gauge("llmfleet_cluster_heartbeat_age_seconds",
                     "Seconds since the cluster's agent last reported (since registration if never)",
                     ["cluster", "region"])
        info = _gauge("llmfleet_cluster_info", "Constant 1 per cluster, labelled with cloud and health",
                      ["cluster", "region", "cloud", "health"])
        for row in registry.cluster_contacts(session):
            seen = row.last_heartbeat_at or row.created_at
            age.add_metric([row.name, row.region], max(0.0, (now - seen).total_seconds()))
            info.add_metric([row.name, row.region, row.cloud, row.health], 1)
        yield from (age, info)

    @staticmethod
    def _restarts(rows: list[registry.BilledReplicaRow]) -> Iterator[Metric]:
        restarts = _gauge("llmfleet_replica_restarts", "Restarts the agent reported for a live replica",
                          ["replica", "deployment", "cluster"])
        for row in rows:
            restarts.add_metric([row.name, row.deployment, row.cluster], row.restarts)
        yield restarts

    @staticmethod
    def _plans(session: Session) -> Iterator[Metric]:
        cost = _gauge("llmfleet_plan_cost_usd_per_hour", "Cost of the deployment's latest plan", ["deployment"])
        bound = _gauge("llmfleet_plan_lower_bound_usd_per_hour", "LP lower bound of the latest plan", ["deployment"])
        solve = _gauge("llmfleet_plan_solve_seconds", "Solve time of the latest plan", ["deployment"])
        for plan in registry.latest_plans(session):
            if plan.cost_per_hour is not None:
                cost.add_metric([plan.deployment], plan.cost_per_hour)
            if plan.lower_bound_per_hour is not None:
                bound.add_metric([plan.deployment], plan.lower_bound_per_hour)
            solve.add_metric([plan.deployment], plan.solve_seconds)
        yield from (cost, bound, solve)


def vars_of(key: SeriesKey) -> list[str]:
    return [str(getattr(key, label)) for label in COST_LABELS]
