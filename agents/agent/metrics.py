"""The agent's own Prometheus metrics, in a registry of its own (several agents may share a test process)."""

from __future__ import annotations

from collections.abc import Iterable

from prometheus_client import CollectorRegistry, Counter, Gauge, generate_latest

from agents.agent.local import LocalPhase


class AgentMetrics:
    def __init__(self, cluster: str) -> None:
        self.registry = CollectorRegistry()
        reg = self.registry
        self.reconcile_total = Counter(
            "agent_reconcile", "Reconcile passes run.", registry=reg)
        self.reconcile_errors_total = Counter(
            "agent_reconcile_errors", "Reconcile passes that hit an unexpected error.", registry=reg)
        self.replicas = Gauge("agent_replicas", "Replicas on this agent, by local state.", ["state"], registry=reg)
        self.control_plane_errors_total = Counter(
            "agent_control_plane_errors", "Calls to the control plane that failed, by operation.",
            ["operation"], registry=reg)
        self.control_plane_up = Gauge(
            "agent_control_plane_up", "1 if the last call to the control plane succeeded.", registry=reg)
        self.desired_generation = Gauge(
            "agent_desired_generation", "Generation of the desired state being applied.", registry=reg)
        self.stale_desired_total = Counter(
            "agent_stale_desired", "Desired states ignored because a newer one was already applied.",
            registry=reg)
        self.actions_total = Counter(
            "agent_actions", "Reconcile actions taken, by kind.", ["action"], registry=reg)
        self.restarts_total = Counter(
            "agent_replica_restarts", "Replicas restarted after a crash.", registry=reg)
        self.failures_total = Counter(
            "agent_replica_failures", "Replicas given up on (never ready, launch error, crash loop).",
            registry=reg)
        self.scrape_errors_total = Counter(
            "agent_scrape_errors", "Replica /metrics scrapes that failed.", registry=reg)
        self.missing_series_total = Counter(
            "agent_scrape_missing_series", "Scrapes in which an expected vLLM series was absent, by series.",
            ["series"], registry=reg)
        self.heartbeats_total = Counter(
            "agent_heartbeats", "Heartbeats accepted by the control plane.", registry=reg)
        info = Gauge("agent_info", "Constant 1, labelled with the agent's cluster.", ["cluster"], registry=reg)
        info.labels(cluster).set(1)
        for phase in LocalPhase:
            self.replicas.labels(phase.value).set(0)

    def set_replica_phases(self, phases: Iterable[LocalPhase]) -> None:
        counts = {phase: 0 for phase in LocalPhase}
        for phase in phases:
            counts[phase] += 1
        for phase, count in counts.items():
            self.replicas.labels(phase.value).set(count)

    def render(self) -> bytes:
        return generate_latest(self.registry)
