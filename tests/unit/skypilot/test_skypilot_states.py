"""SkyPilot cluster states (and spot preemption) to replica states: the pure decision table."""

from __future__ import annotations

from dataclasses import replace

import pytest

from agents.backends.base import ReplicaState
from agents.backends.skypilot.states import (
    ClusterObservation,
    LaunchOutcome,
    LaunchPhase,
    ReplicaView,
    decide,
)

PENDING = LaunchOutcome(LaunchPhase.PENDING)
DONE = LaunchOutcome(LaunchPhase.SUCCEEDED)


def cluster(status: str, unhealthy: bool = False, reason: str = "") -> ClusterObservation:
    return ClusterObservation("llmf-r1-abc123", status, unhealthy, reason)


def view(**kw: object) -> ReplicaView:
    base = ReplicaView(use_spot=False, launch=DONE, cluster=cluster("UP"), seen_cluster=True)
    return replace(base, **kw)  # type: ignore[arg-type]


@pytest.mark.parametrize(
    ("v", "state"),
    [
        (view(launch=PENDING, cluster=None, seen_cluster=False), ReplicaState.STARTING),
        (view(launch=PENDING, cluster=cluster("INIT")), ReplicaState.STARTING),
        (view(launch=PENDING, cluster=cluster("PENDING")), ReplicaState.STARTING),
        (view(cluster=cluster("UP"), probe_ok=None), ReplicaState.STARTING),  # endpoint not exposed yet
        (view(cluster=cluster("UP"), probe_ok=False, probe_failures=9), ReplicaState.STARTING),  # loading
        (view(cluster=cluster("UP"), probe_ok=True), ReplicaState.READY),
        (view(ever_ready=True, probe_ok=False, probe_failures=1), ReplicaState.READY),  # one slow probe
        (view(stop_requested=True), ReplicaState.DRAINING),
        (view(stop_requested=True, cluster=None), ReplicaState.EXITED),
    ],
)
def test_live_states(v: ReplicaView, state: ReplicaState) -> None:
    decision = decide(v)
    assert decision.status.state is state
    assert not decision.status.preempted and not decision.teardown


def test_ready_sets_ever_ready() -> None:
    assert decide(view(probe_ok=True)).status.ever_ready


@pytest.mark.parametrize(
    ("v", "teardown", "detail"),
    [
        # A spot cluster that vanished, was stopped, or lost nodes: the cloud took it back.
        (view(use_spot=True, cluster=None), False, "preempted: spot cluster is gone"),
        (view(use_spot=True, cluster=cluster("STOPPED")), True, "preempted: spot cluster was stopped"),
        (
            view(use_spot=True, cluster=cluster("INIT", unhealthy=True, reason="1 node terminated")),
            True,
            "preempted: spot cluster lost nodes (1 node terminated)",
        ),
        (
            view(use_spot=True, ever_ready=True, cluster=cluster("INIT")),
            True,
            "preempted: spot cluster lost nodes",
        ),
        # Preempted while still provisioning (the launch request is still running).
        (view(use_spot=True, launch=PENDING, seen_cluster=True, cluster=None), False, "preempted"),
    ],
)
def test_spot_preemption_is_reported_at_once(v: ReplicaView, teardown: bool, detail: str) -> None:
    decision = decide(v)
    status = decision.status
    assert status.state is ReplicaState.FAILED and status.preempted
    assert status.detail.startswith(detail)
    assert decision.teardown is teardown and decision.final


@pytest.mark.parametrize(
    ("v", "teardown", "detail"),
    [
        (view(cluster=None), False, "cluster is gone (terminated outside llmfleet)"),
        (view(cluster=cluster("STOPPED")), True, "cluster was stopped outside llmfleet"),
        (
            view(cluster=cluster("INIT", unhealthy=True, reason="ray down")),
            True,
            "cluster is unhealthy (ray down)",
        ),
        (view(cluster=cluster("AUTOSTOPPING")), True, "cluster is autostopping"),
        (view(cluster=cluster("WEIRD")), True, "cluster has an unknown SkyPilot status"),
        (view(ever_ready=True, probe_ok=False, probe_failures=3), True, "health check failed 3 times"),
        (view(launch=PENDING, cluster=cluster("INIT"), waited_s=3601), True, "not ready after 3601 s"),
        (view(probe_ok=False, waited_s=4000), True, "not ready after 4000 s (startup timeout)"),
    ],
)
def test_on_demand_failures_are_not_preemptions(v: ReplicaView, teardown: bool, detail: str) -> None:
    decision = decide(v)
    assert decision.status.state is ReplicaState.FAILED and not decision.status.preempted
    assert decision.status.detail.startswith(detail)
    assert decision.teardown is teardown


def test_launch_failures() -> None:
    no_capacity = LaunchOutcome(LaunchPhase.FAILED, "ResourcesUnavailableError: no p5 spot", no_capacity=True)
    d = decide(view(use_spot=True, launch=no_capacity, cluster=cluster("INIT")))
    assert d.status.state is ReplicaState.FAILED and not d.status.preempted
    assert d.status.detail == "no capacity: ResourcesUnavailableError: no p5 spot"
    assert d.teardown  # the half-made cluster goes
    other = decide(view(launch=LaunchOutcome(LaunchPhase.FAILED, "boom"), cluster=None, seen_cluster=False))
    assert other.status.detail == "launch failed: boom" and not other.teardown


def test_stop_wins_over_everything() -> None:
    d = decide(view(use_spot=True, cluster=None, stop_requested=True, ever_ready=True))
    assert d.status.state is ReplicaState.EXITED and d.status.ever_ready and not d.status.preempted
