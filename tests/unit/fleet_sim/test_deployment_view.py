"""The per-deployment view of a shared fleet (the control plane re-plans one deployment at a time), the
fleet's launch rule for pools that are down, and the llmfleet adapter's per-deployment re-plans."""

from __future__ import annotations

import copy
from pathlib import Path
from typing import Any

import numpy as np
import pytest

from scheduler.autoscale_replan import ReplanLimits, replan
from scheduler.fleet_sim import parse_sim_scenario, simulate
from scheduler.fleet_sim.deployment_view import SPARE, deployment_view
from scheduler.fleet_sim.fleet import Fleet
from scheduler.fleet_sim.policies import Llmfleet
from scheduler.perf_model import PerfModel
from scheduler.placement import SolveOptions, build_candidates
from tests.unit.fleet_sim.conftest import base_scenario, pool, trace_scenario


def two_deployments_on_8_gpu_pools() -> dict[str, Any]:
    data = base_scenario()
    eight = []
    for region in ("us", "us2"):
        p = pool(f"{region}-8", region, "on-demand", 16.0, quota=3)
        p["gpus"] = 8
        p["instance_type"] = "g6e.48xlarge"
        eight.append(p)
    data["pools"] = eight
    other = copy.deepcopy(data["deployments"][0])
    other["name"] = "code"
    data["deployments"].append(other)
    return data


def test_quota_is_net_of_the_others_and_their_free_gpus_are_a_spare_pool(tmp_path: Path) -> None:
    sim = parse_sim_scenario(two_deployments_on_8_gpu_pools(), base_dir=tmp_path, name="eight")
    snap = sim.scenario.snapshot
    table = build_candidates(snap, PerfModel(gpus=sim.scenario.gpus))
    chat = snap.deployment_by_name["chat"]
    # "code" holds 11 GPUs of us-8 (two instances, 5 GPUs free in the second); chat has 2 replicas there.
    others = {("code", "bf16", "us-8", 1): 11}
    mine = {("chat", "bf16", "us-8", 1): 2}
    view = deployment_view(snap, table, chat, mine, others, {"us2-8": 0})
    pools = view.snapshot.pool_by_id
    assert [d.name for d in view.snapshot.deployments] == ["chat"]
    assert pools["us-8"].max_instances == 3 - 2
    assert pools["us2-8"].max_instances == 0  # down
    spare = pools["us-8" + SPARE]
    assert (spare.gpus, spare.max_instances) == (5, 1)
    assert spare.price_per_hour == pytest.approx(16.0 * 5 / 8)  # its GPUs' share, not free
    # chat's own replicas sit in the spare GPUs, which is where they pack
    assert [(c.pool, c.count) for c in view.snapshot.current] == [("us-8" + SPARE, 2)]
    assert {c.pool for c in view.table.candidates} >= {"us-8", "us-8" + SPARE}
    assert all(c.deployment == "chat" for c in view.table.candidates)
    # a plan on the spare maps back to the real pool (both regions up: chat must spread over two)
    view = deployment_view(snap, table, chat, mine, others)
    options = SolveOptions(time_limit_s=5)
    result = replan(view.snapshot, view.table, "chat", 12.0, ReplanLimits(), options)
    assert result.plan.ok
    target = view.to_fleet((r.variant, r.pool, r.tp, r.count) for r in result.plan.replicas)
    assert target and all(k[2] in {"us-8", "us2-8"} and k[0] == "chat" for k in target)
    # with the others, the fleet buys no more instances than the quotas allow
    fleet = Fleet(snap, 0.0)
    fleet.set_target({**others, **target})
    fleet.reconcile(0.0, instant=True)
    assert fleet.instances("us-8") <= 3 and fleet.instances("us2-8") <= 3
    assert sum(target.values()) >= 2


def test_a_pool_that_is_down_takes_no_new_instance_but_fills_a_running_one(tmp_path: Path) -> None:
    sim = parse_sim_scenario(two_deployments_on_8_gpu_pools(), base_dir=tmp_path, name="eight")
    fleet = Fleet(sim.scenario.snapshot, 60.0)
    fleet.set_target({("code", "bf16", "us-8", 1): 5})
    fleet.reconcile(0.0, instant=True)
    fleet.down_until["us-8"] = 1000.0
    fleet.set_target({("code", "bf16", "us-8", 1): 5, ("chat", "bf16", "us-8", 1): 6})
    fleet.reconcile(10.0)
    assert fleet.groups[("chat", "bf16", "us-8", 1)].running == 3  # the 3 free GPUs of the running instance
    assert fleet.instances("us-8") == 1


def test_llmfleet_autoscales_through_per_deployment_replans(tmp_path: Path) -> None:
    data = trace_scenario()
    data["simulation"]["replan_interval_s"] = 7200  # one plan; the autoscaler handles the rest
    # quiet before the day starts (the plan's hour), five times busier an hour later (local = UTC - 5)
    diurnal = [1.0] * 24
    diurnal[18] = diurnal[19] = 0.3
    diurnal[20] = diurnal[21] = 1.5
    data["simulation"]["traffic"] = {"diurnal": diurnal}
    sim = parse_sim_scenario(data, base_dir=tmp_path, name="tiny")
    seen: list[tuple[int, int, float]] = []  # replicas before, after, when

    class Counting(Llmfleet):
        def _autoscale(self, view):  # type: ignore[no-untyped-def]
            before = sum(self.target.values())
            out = super()._autoscale(view)
            if out is not None:
                seen.append((before, sum(out.values()), view.now))
            return out

    p = simulate(sim, ["counting"], hours=2.0, seed=5, extra={"counting": Counting}).policies["counting"]
    assert p.metrics.slo_attainment > 0.95
    reps = np.array(p.timeline.replicas)
    assert reps.min() >= 2  # min_replicas and spread hold through every re-plan
    assert any(after > before for before, after, _ in seen), "the autoscaler scaled up through a re-plan"
    # after a scale-up the workflow waits for the new replicas (cold start 120 s) before deciding again
    for (before, after, t), (_, _, t_next) in zip(seen, seen[1:]):
        if after > before:
            assert t_next - t >= 120


def test_llmfleet_replans_a_deployment_whose_replicas_cannot_start(tmp_path: Path) -> None:
    """All of a deployment's wanted replicas sit in a pool that went down before they started: none runs,
    none can. The autoscale step must place it elsewhere at once, not wait for the next plan."""
    from scheduler.fleet_sim.policies import View
    from scheduler.fleet_sim.runner import prepare

    sim = parse_sim_scenario(trace_scenario(), base_dir=tmp_path, name="tiny")
    ctx, _ = prepare(sim, 2.0, 0)
    policy = Llmfleet(ctx)
    policy.target = {("chat", "bf16", "us-od", 1): 2}
    policy.planned_rps = {"chat": 1.0}
    policy.at_plan = {"chat": True}
    step = ctx.control_steps  # a control tick that is not a re-plan
    view = View(float(step * ctx.traffic.step_s), step, {}, frozenset({"us-od"}), False)
    target = policy.decide(view)
    assert target is not None
    assert sum(n for k, n in target.items() if k[2] != "us-od") >= 1, target


def test_llmfleet_plans_forget_an_old_peak_as_fast_as_the_autoscaler(tmp_path: Path) -> None:
    """The hourly plan's forecast applies the autoscaler's per-minute alphas compounded over the hour: an
    old peak far above the last hour's busiest minute is all but forgotten at the next plan (applying
    the per-minute down-alpha once per hour would keep 80% of it)."""
    from scheduler.fleet_sim.policies import View
    from scheduler.fleet_sim.runner import prepare

    sim = parse_sim_scenario(trace_scenario(), base_dir=tmp_path, name="tiny")
    ctx, _ = prepare(sim, 2.0, 0)
    policy = Llmfleet(ctx)
    step = ctx.replan_steps  # the second plan of the day
    observed = ctx.traffic.peak_minute_rps(0, step)
    intervals = ctx.replan_steps / ctx.control_steps
    assert intervals >= 30 and observed.max() > 0
    policy.forecast = observed + 100.0  # an old peak
    policy.target = {("chat", "bf16", "us-od", 1): 2}
    policy.decide(View(float(step * ctx.traffic.step_s), step, {}, frozenset(), False))
    assert policy.forecast is not None
    np.testing.assert_allclose(policy.forecast, observed + 100.0 * 0.8**intervals)  # down_alpha 0.2 per minute
    assert (policy.forecast < observed + 1.0).all()
