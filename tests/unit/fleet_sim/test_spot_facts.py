"""The simulated control plane learns spot zones' reliability from the preemptions it sees, as the real one
does from the registry (workflows/spot_facts.py), and caps those pools' shares the same way."""

from __future__ import annotations

from pathlib import Path

import pytest

from scheduler.fleet_sim import parse_sim_scenario
from scheduler.fleet_sim.spot_facts import SpotFacts
from scheduler.spot_hints import SpotHintPolicy, availability_factor, preemption_rate
from tests.unit.fleet_sim.conftest import base_scenario, pool


def snapshot(tmp_path: Path):  # type: ignore[no-untyped-def]
    data = base_scenario()
    data["pools"] += [
        pool("us-spot-a", "us", "spot", 0.7, zone="use1-az1"),
        pool("us-spot-b", "us", "spot", 0.7, zone="use1-az2"),
    ]
    return parse_sim_scenario(data, base_dir=tmp_path, name="spot").scenario.snapshot


def test_a_zone_that_lost_replicas_gets_its_share_capped_and_quiet_zones_do_not(tmp_path: Path) -> None:
    snap = snapshot(tmp_path)
    facts = SpotFacts(snap)
    ready = {("chat", "bf16", "us-spot-a", 1): 4, ("chat", "bf16", "us-spot-b", 2): 2}
    for minute in range(60):  # an hour of 4 + 2 spot replicas, then 3 of zone a's preempted
        facts.record(minute * 60.0, ready, 60.0, {"us-spot-a": 3} if minute == 59 else {})
    out = {p.id: p for p in facts.apply(snap, 59 * 60.0).pools}
    policy = SpotHintPolicy()
    expected = availability_factor(preemption_rate(3, 4.0, policy), policy.recovery_hours)  # 4 replica-hours
    assert out["us-spot-a"].spot_availability == pytest.approx(expected)
    assert expected < 1.0
    assert out["us-spot-b"].spot_availability is None  # nothing went wrong there
    assert out["us-od"].spot_availability is None


def test_hints_age_out_after_the_lookback(tmp_path: Path) -> None:
    snap = snapshot(tmp_path)
    facts = SpotFacts(snap, SpotHintPolicy(max_age_s=3600.0))
    facts.record(0.0, {("chat", "bf16", "us-spot-a", 1): 2}, 60.0, {"us-spot-a": 2})
    assert {p.id: p for p in facts.apply(snap, 0.0).pools}["us-spot-a"].spot_availability is not None
    facts.record(3700.0, {}, 60.0, {})
    assert facts.apply(snap, 3700.0) is snap
