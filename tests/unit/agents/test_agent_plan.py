"""The reconcile decision is a pure function of (desired, local records, time): level-triggered."""

from __future__ import annotations

import pytest

from agents.agent.desired import DesiredReplica, DesiredStateError, parse_desired
from agents.agent.local import LocalPhase, LocalReplica
from agents.agent.plan import Action, ActionKind, plan
from agents.agent.window import TelemetryWindow
from tests.unit.agents.agent_fakes import CLUSTER, replica_json

NOW = 100.0
READY_TIMEOUT = 30.0


def desired(*names: str, stopped: tuple[str, ...] = ()) -> dict[str, DesiredReplica]:
    body = {"cluster": CLUSTER, "generation": 1,
            "replicas": [replica_json(n) for n in names] + [replica_json(n, "stopped") for n in stopped]}
    return parse_desired(body).by_name()


def local(name: str, phase: LocalPhase, **fields: object) -> LocalReplica:
    want = desired(name)[name]
    record = LocalReplica(name, want, phase, TelemetryWindow(60))
    for key, value in fields.items():
        setattr(record, key, value)
    return record


def decide(wanted: dict[str, DesiredReplica], *records: LocalReplica) -> list[Action]:
    return plan(wanted, {r.name: r for r in records}, NOW, READY_TIMEOUT)


def test_missing_replicas_are_started_and_running_ones_left_alone() -> None:
    actions = decide(desired("a", "b", "c"), local("b", LocalPhase.READY), local("c", LocalPhase.STARTING,
                                                                                 launched_at=NOW - 1))
    assert actions == [Action(ActionKind.START, "a")]


def test_the_same_inputs_twice_ask_for_the_same_thing_and_a_converged_state_for_nothing() -> None:
    wanted = desired("a")
    assert decide(wanted) == decide(wanted) == [Action(ActionKind.START, "a")]
    assert decide(wanted, local("a", LocalPhase.READY)) == []


def test_unwanted_or_stopped_replicas_drain() -> None:
    actions = decide(desired("a", stopped=("b",)), local("a", LocalPhase.READY), local("b", LocalPhase.READY),
                     local("c", LocalPhase.STARTING, launched_at=NOW))
    assert actions == [Action(ActionKind.DRAIN, "b", "desired stopped"),
                       Action(ActionKind.DRAIN, "c", "no longer desired")]


def test_draining_replicas_are_waited_for_and_settled_ones_forgotten_once_unlisted() -> None:
    assert decide(desired(stopped=("a",)), local("a", LocalPhase.DRAINING)) == []
    assert decide(desired(stopped=("a",)), local("a", LocalPhase.TERMINATED)) == []
    assert decide({}, local("a", LocalPhase.DRAINING)) == []
    assert decide({}, local("a", LocalPhase.TERMINATED), local("b", LocalPhase.FAILED)) == [
        Action(ActionKind.FORGET, "a"), Action(ActionKind.FORGET, "b")]


def test_a_stopped_replica_never_started_here_is_reported_terminated() -> None:
    assert decide(desired(stopped=("a",))) == [Action(ActionKind.SETTLE, "a", "desired stopped")]
    assert decide(desired(stopped=("a",)), local("a", LocalPhase.BACKOFF, retry_at=NOW + 5)) == [
        Action(ActionKind.SETTLE, "a", "desired stopped")]


def test_crashed_replicas_restart_only_after_their_backoff() -> None:
    assert decide(desired("a"), local("a", LocalPhase.BACKOFF, retry_at=NOW + 0.1)) == []
    assert decide(desired("a"), local("a", LocalPhase.BACKOFF, retry_at=NOW)) == [
        Action(ActionKind.START, "a", "restart after crash")]


def test_a_replica_not_ready_in_time_is_abandoned_and_a_failed_one_never_relaunched() -> None:
    assert decide(desired("a"), local("a", LocalPhase.STARTING, launched_at=NOW - READY_TIMEOUT)) == []
    assert decide(desired("a"), local("a", LocalPhase.STARTING, launched_at=NOW - READY_TIMEOUT - 1)) == [
        Action(ActionKind.ABANDON, "a", f"not ready within {READY_TIMEOUT:g} s")]
    assert decide(desired("a"), local("a", LocalPhase.FAILED)) == []


def test_malformed_desired_state_is_refused() -> None:
    with pytest.raises(DesiredStateError):
        parse_desired({"cluster": CLUSTER, "generation": 1, "replicas": [{"name": "a"}]})
    with pytest.raises(DesiredStateError):
        parse_desired([])
    extra = {"cluster": CLUSTER, "generation": "2", "future_field": 1,
             "replicas": [{**replica_json("a"), "future_field": True}]}
    assert parse_desired(extra).generation == 2  # unknown fields from a newer control plane are ignored
