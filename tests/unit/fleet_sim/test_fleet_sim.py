"""Properties of the fleet simulator on small scenarios: conservation, billing, determinism,
disruptions and recovery, under-provisioning, strict settings."""

from __future__ import annotations

from pathlib import Path
from typing import Any

import numpy as np
import pytest

from scheduler.fleet_sim import parse_sim_scenario, simulate
from scheduler.fleet_sim.events import Events
from scheduler.fleet_sim.policies import Context, Llmfleet, Policy, View
from scheduler.fleet_sim.runner import PolicyResult, prepare, run_policy
from scheduler.scenario import ScenarioError
from tests.unit.fleet_sim.conftest import pool, trace_scenario


def sim_of(data: dict[str, Any], tmp_path: Path):  # type: ignore[no-untyped-def]
    return parse_sim_scenario(data, base_dir=tmp_path, name="tiny")


class Fixed(Policy):
    """A static plan given by hand (the test's stand-in for a badly sized static provisioning)."""

    name = "fixed"

    def __init__(self, ctx: Context, replicas: int) -> None:
        super().__init__(ctx)
        self.replicas = replicas

    def decide(self, view: View) -> dict[tuple[str, str, str, int], int] | None:
        if self.target:
            return None
        self.target = {("chat", "bf16", "us-od", 1): self.replicas}
        return dict(self.target)


def test_requests_are_conserved_and_cost_is_instance_hours_times_price(tmp_path: Path) -> None:
    sim = sim_of(trace_scenario(), tmp_path)
    result = simulate(sim, ["static", "llmfleet"], hours=1.0, seed=3)
    for p in result.policies.values():
        m = p.metrics
        assert m.requests > 1000
        assert m.requests == pytest.approx(m.routed + m.dropped)
        # every request routed to a replica group was served, is still queued, or was lost with a replica
        assert p.flows.routed == pytest.approx(p.flows.served + p.final_backlog + p.flows.lost, rel=1e-9)
        assert p.flows.routed == pytest.approx(m.routed, rel=1e-9)
        # 1-GPU pools at one price: an instance is a replica
        assert p.cost_usd == pytest.approx(p.replica_hours * 1.8, rel=1e-9)
    # the same requests reach every policy
    reqs = {p.metrics.requests for p in result.policies.values()}
    assert len(reqs) == 1


def test_same_seed_same_day_other_seed_other_day(tmp_path: Path) -> None:
    sim = sim_of(trace_scenario(), tmp_path)
    a = simulate(sim, ["llmfleet"], hours=0.5, seed=7).policies["llmfleet"]
    b = simulate(sim, ["llmfleet"], hours=0.5, seed=7).policies["llmfleet"]
    c = simulate(sim, ["llmfleet"], hours=0.5, seed=8).policies["llmfleet"]
    assert (a.cost_usd, a.metrics.requests, a.metrics.met) == (b.cost_usd, b.metrics.requests, b.metrics.met)
    assert np.array_equal(a.metrics.ttft_hist, b.metrics.ttft_hist)
    assert a.metrics.requests != c.metrics.requests


def test_under_provisioned_static_plan_misses_the_slo(tmp_path: Path) -> None:
    sim = sim_of(trace_scenario(), tmp_path)
    result = simulate(
        sim,
        ["static", "tight"],
        hours=1.0,
        seed=1,
        extra={"tight": lambda ctx: Fixed(ctx, 1)},
    )
    tight = result.policies["tight"]
    static = result.policies["static"]
    assert tight.metrics.slo_attainment < 0.99
    assert tight.metrics.percentile("ttft", 0.95) > 1000  # the queue shows in TTFT
    assert static.metrics.slo_attainment > tight.metrics.slo_attainment
    assert static.cost_usd > tight.cost_usd


def test_preemption_removes_capacity_and_llmfleet_recovers(tmp_path: Path) -> None:
    data = trace_scenario()
    data["pools"] = [
        pool("us-spot", "us", "spot", 0.6, zone="use1-az1"),
        pool("us2-spot", "us2", "spot", 0.6, zone="use2-az1"),
        pool("us-od", "us", "on-demand", 1.8),
        pool("us2-od", "us2", "on-demand", 1.8),
    ]
    data["simulation"]["preemption"] = {
        "spot_per_hour": 0.0,
        "by_zone": {"use1-az1": 3.0},
        "unavailable_s": 900,
    }
    sim = sim_of(data, tmp_path)
    p: PolicyResult = simulate(sim, ["llmfleet"], hours=2.0, seed=2).policies["llmfleet"]
    reps = p.timeline.replicas
    dips = [i for i in range(1, len(reps)) if reps[i] < reps[i - 1]]
    assert p.metrics.disrupted > 0  # requests in flight on the preempted replicas
    assert dips, "a preemption removes replicas"
    first = dips[0]
    assert any(r >= reps[first - 1] for r in reps[first:]), "the policy brings capacity back"
    assert p.metrics.slo_attainment > 0.9


def test_outage_sends_traffic_to_the_other_region(tmp_path: Path) -> None:
    data = trace_scenario()
    data["simulation"]["outages"] = [{"region": "us", "start_h": 0.5, "duration_h": 1.0}]
    sim = sim_of(data, tmp_path)
    p = simulate(sim, ["llmfleet"], hours=2.0, seed=4).policies["llmfleet"]
    hours = np.array(p.timeline.hours)
    during = (hours > 0.75) & (hours <= 1.5)
    served = np.array(p.timeline.requests)[during]
    met = np.array(p.timeline.met)[during]
    assert served.sum() > 0
    assert met.sum() / served.sum() > 0.9  # served elsewhere, within the SLO, after the cold start
    assert p.metrics.dropped / p.metrics.requests < 0.02


def test_bound_is_below_every_policy(tmp_path: Path) -> None:
    sim = sim_of(trace_scenario(), tmp_path)
    r = simulate(sim, ["llmfleet", "static", "bound"], hours=1.0, seed=0)
    bound = r.bounds["mean"].cost_usd
    assert bound is not None and bound > 0
    assert all(bound <= p.cost_usd for p in r.policies.values())


def test_perfect_foresight_plan_is_whole_instances_above_its_relaxation(tmp_path: Path) -> None:
    """Per interval: the LP on the busiest minute <= what the solver proved for the integer plan <= the plan's
    cost, and the plan is whole instances (4-GPU instances at $7.2/h: a multiple of 7.2 x the interval's
    hours; min_replicas 2 with spread: at least two)."""
    data = trace_scenario()
    for p in data["pools"]:
        p.update(gpus=4, price_per_hour=7.2, instance_type="g6e.12xlarge")
    sim = sim_of(data, tmp_path)
    r = simulate(sim, ["bound"], hours=2.0, seed=0)
    lp, plan = r.bounds["peak_minute"], r.bounds["plan"]
    assert plan.cost_usd is not None and plan.lower_usd is not None and lp.cost_usd is not None
    assert len(plan.per_interval_usd) == len(lp.per_interval_usd) == 4  # 30-minute re-plans over 2 h
    for relaxed, whole in zip(lp.per_interval_usd, plan.per_interval_usd, strict=True):
        assert relaxed is not None and whole is not None
        assert relaxed <= whole + 1e-6
        instances = whole / (7.2 * 0.5)
        assert instances == pytest.approx(round(instances), abs=1e-6) and round(instances) >= 2
    assert lp.cost_usd - 1e-6 <= plan.lower_usd <= plan.cost_usd + 1e-6


@pytest.mark.parametrize(
    ("patch", "field"),
    [
        ({"outages": [{"region": "mars", "start_h": 1, "duration_h": 1}]}, "simulation.outages[0].region"),
        ({"outages": [{"region": "us", "start_h": 1}]}, "simulation.outages[0].duration_h"),
        ({"perf_error": 1.5}, "simulation.perf_error"),
        ({"colour": "red"}, "simulation.colour"),
        ({"preemption": {"by_zone": {"nowhere": 1.0}}}, "simulation.preemption.by_zone.nowhere"),
        ({"traffic": {"diurnal": [1.0] * 23}}, "simulation.traffic.diurnal"),
        ({"replan_interval_s": 30, "control_interval_s": 60}, "simulation.replan_interval_s"),
    ],
)
def test_bad_simulation_settings_name_the_field(tmp_path: Path, patch: dict[str, Any], field: str) -> None:
    data = trace_scenario()
    data["simulation"].update(patch)
    with pytest.raises(ScenarioError) as info:
        sim_of(data, tmp_path)
    assert info.value.field == field, str(info.value)


def test_bad_placement_part_is_still_the_scenario_error(tmp_path: Path) -> None:
    data = trace_scenario()
    data["deployments"][0]["slo"]["ttft_p95_ms"] = -1
    with pytest.raises(ScenarioError) as info:
        sim_of(data, tmp_path)
    assert info.value.field == "deployments[0].slo.ttft_p95_ms"


class Blind(Llmfleet):
    """llmfleet without learning accelerator speeds from latency: it believes the datasheets all day."""

    name = "blind"

    def _calibrate(self, view: View) -> None:
        return None


@pytest.mark.parametrize("seed", [4, 7])
def test_llmfleet_learns_accelerator_speed_from_latency(tmp_path: Path, seed: int) -> None:
    """With the truth's L40S slower (seed 4: 0.78x) or faster (seed 7: 1.17x) than its datasheet, llmfleet
    learns the slowdown from the TPOT its replicas report (never believing more than the datasheet) and
    provisions for it: at least the attainment of the same policy blind to it."""
    data = trace_scenario()
    data["simulation"]["perf_error"] = 0.3
    sim = sim_of(data, tmp_path)
    ctx, truth = prepare(sim, 1.5, seed)
    learning, blind = Llmfleet(ctx), Blind(ctx)
    learned = run_policy(ctx, learning, truth, Events(ctx.snapshot, ctx.settings, seed), seed)
    ignorant = run_policy(ctx, blind, truth, Events(ctx.snapshot, ctx.settings, seed), seed)
    actual = truth.factors["L40S"]
    assert min(actual, 1.0) - 0.03 <= learning.speeds["L40S"] <= min(actual, 1.0) + 1e-9
    assert blind.speeds == {}
    assert learned.metrics.slo_attainment >= ignorant.metrics.slo_attainment
    if actual < 1:
        assert learned.replica_hours > ignorant.replica_hours
    else:
        assert learned.replica_hours == pytest.approx(ignorant.replica_hours)
