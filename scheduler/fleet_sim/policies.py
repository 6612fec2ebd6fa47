"""Policies under simulation: thin adapters that call the code the control plane and the benchmarks run.

- `llmfleet`: every re-plan interval (and after a loss of capacity), the placement MILP
  (scheduler.placement.solve) on the autoscaling forecast (scheduler.autoscale.forecast of each slice's
  busiest-minute rate), with the running replicas as `current` so the churn penalty applies; between
  re-plans, scheduler.autoscale.decide per deployment; the count is applied by growing the item whose
  next replica costs least (free GPUs in a paid instance first) and shrinking the smallest, never below the
  plan. This placement step differs from the control plane's (`scheduler.autoscale.resize`, which follows
  observed load): the simulator routes to any replica, the real gateway only by published shares.
- `skyserve`: the skyserve baseline's placement (one instance type, spot up to the cap, the rest
  on-demand) on the last minute's QPS every control tick, applied with SkyServe's hysteresis (a higher
  count must persist 300 s, a lower one 1200 s); a replica on a pool that went down is replaced at once
  from the placement without it (spot -> on-demand fallback).
- `melange`: the melange baseline on the last interval's busiest-minute rates, every re-plan interval.
- `static`: the MILP once, for each slice's busiest minute of the whole day (perfect knowledge of the
  peak); lost replicas are relaunched where they were, when their pool takes instances again.
The perfect-foresight bound is in bound.py. Pools that are down (outage, spot capacity gone after a
preemption) are offered to every planner with a quota of 0.
"""

from __future__ import annotations

from collections import defaultdict
from collections.abc import Iterable, Mapping
from dataclasses import dataclass, replace

import numpy as np

from scheduler.autoscale import AutoscalePolicy, AutoscaleState, Observation, decide, forecast
from scheduler.fleet_sim.fleet import GroupKey
from scheduler.fleet_sim.routing import Gateway
from scheduler.fleet_sim.settings import SimulationIn
from scheduler.fleet_sim.traffic import Traffic
from scheduler.placement import CandidateTable, PlacedReplicas, SolveOptions, solve
from scheduler.placement.baselines import melange, skyserve
from scheduler.placement.snapshot import DemandSlice, Snapshot

POLICIES = ("llmfleet", "skyserve", "melange", "static", "bound")
FAILOVER_MIN_GAP_S = 300.0  # at most one capacity-loss re-plan per this long
SKYSERVE_UP_S = 300.0
SKYSERVE_DOWN_S = 1200.0


@dataclass(frozen=True)
class View:
    now: float
    step: int
    running: Mapping[GroupKey, int]
    down_pools: frozenset[str]
    capacity_lost: bool


@dataclass(frozen=True)
class Context:
    snapshot: Snapshot
    table: CandidateTable
    traffic: Traffic
    gateway: Gateway
    settings: SimulationIn

    @property
    def control_steps(self) -> int:
        return max(1, round(self.settings.control_interval_s / self.traffic.step_s))

    @property
    def replan_steps(self) -> int:
        return max(1, round(self.settings.replan_interval_s / self.traffic.step_s))

    def options(self, time_limit_s: float | None = None) -> SolveOptions:
        return SolveOptions(time_limit_s=time_limit_s or self.settings.solver_time_limit_s)


def snapshot_for(
    ctx: Context,
    rates: Iterable[float],
    down: Iterable[str] = (),
    running: Mapping[GroupKey, int] | None = None,
) -> Snapshot:
    """The scenario's fleet with demand at `rates` (one per slice), down pools at quota 0, and the
    running replicas as the current placement (re-plan mode)."""
    snap = ctx.snapshot
    it = iter(float(r) for r in rates)
    deployments = tuple(
        replace(d, demand=tuple(DemandSlice(s.client_region, s.shape, max(0.0, next(it))) for s in d.demand))
        for d in snap.deployments
    )
    gone = set(down)
    pools = tuple(replace(p, max_instances=0) if p.id in gone else p for p in snap.pools)
    current = tuple(
        PlacedReplicas(k[0], k[1], k[2], k[3], n) for k, n in sorted((running or {}).items()) if n > 0
    )
    return replace(snap, deployments=deployments, pools=pools, current=current)


def without_spread(snap: Snapshot) -> Snapshot:
    """The degraded re-plan after losing a failure domain: spread may be impossible with what is left,
    and serving the traffic comes first."""
    return replace(
        snap,
        deployments=tuple(
            replace(d, constraints=replace(d.constraints, spread=False)) for d in snap.deployments
        ),
    )


def counts(items: Iterable[tuple[str, str, str, int, int]]) -> dict[GroupKey, int]:
    out: dict[GroupKey, int] = defaultdict(int)
    for dep, variant, pool, tp, n in items:
        out[(dep, variant, pool, tp)] += n
    return {k: n for k, n in out.items() if n > 0}


def by_deployment(target: Mapping[GroupKey, int]) -> dict[str, int]:
    out: dict[str, int] = defaultdict(int)
    for k, n in target.items():
        out[k[0]] += n
    return out


class Policy:
    name = "policy"

    def __init__(self, ctx: Context) -> None:
        self.ctx = ctx
        self.target: dict[GroupKey, int] = {}
        self.solves = 0

    def decide(self, view: View) -> dict[GroupKey, int] | None:
        raise NotImplementedError


class Llmfleet(Policy):
    name = "llmfleet"

    def __init__(self, ctx: Context) -> None:
        super().__init__(ctx)
        self.forecast: np.ndarray | None = None
        self.last_plan = -np.inf
        self.plan_count: dict[str, int] = {}
        self.states: dict[str, AutoscaleState] = {}
        self.policy = AutoscalePolicy(target_utilisation=ctx.snapshot.headroom)

    def decide(self, view: View) -> dict[GroupKey, int] | None:
        ctx = self.ctx
        due = view.step % ctx.replan_steps == 0
        failover = view.capacity_lost and view.now - self.last_plan >= FAILOVER_MIN_GAP_S
        if due or failover or not self.target:
            return self._replan(view)
        return self._autoscale(view)

    def _replan(self, view: View) -> dict[GroupKey, int] | None:
        ctx = self.ctx
        observed = ctx.traffic.peak_minute_rps(view.step - ctx.replan_steps, view.step)
        prev = self.forecast
        self.forecast = np.array(
            [
                forecast(None if prev is None else float(prev[i]), float(o), self.policy)
                for i, o in enumerate(observed)
            ]
        )
        snap = snapshot_for(ctx, self.forecast, view.down_pools, view.running)
        plan = solve(snap, ctx.table, ctx.options())
        self.solves += 1
        if not plan.ok and view.down_pools:
            plan = solve(without_spread(snap), ctx.table, ctx.options())
            self.solves += 1
        self.last_plan = view.now
        if not plan.ok:
            return None  # keep what runs; the autoscaler still reacts
        self.target = counts((r.deployment, r.variant, r.pool, r.tp, r.count) for r in plan.replicas)
        self.plan_count = by_deployment(self.target)
        self.states = {}
        return dict(self.target)

    def _autoscale(self, view: View) -> dict[GroupKey, int] | None:
        ctx = self.ctx
        rates = ctx.traffic.mean_rps(view.step - ctx.control_steps, view.step)
        changed = False
        for dep, planned in self.plan_count.items():
            keys = [k for k in self.target if k[0] == dep]
            # Replicas that exist: a pool that is down holds none, whatever the plan says.
            for k in keys:
                if k[2] in view.down_pools:
                    self.target[k] = min(self.target[k], view.running.get(k, 0))
            now = sum(self.target[k] for k in keys)
            idx = [i for i, s in enumerate(ctx.traffic.slices) if s.deployment == dep]
            rps = float(sum(rates[i] for i in idx))
            cap = self._capacity(keys, idx, rates)
            policy = replace(self.policy, min_replicas=planned)
            decision, self.states[dep] = decide(
                policy, self.states.get(dep, AutoscaleState()), Observation(rps, now, cap)
            )
            usable = [k for k in keys if k[2] not in view.down_pools] or keys
            while now < decision.replicas and usable:
                # Grow the item whose next replica costs least: free GPUs in an instance already paid
                # for first, then the cheapest instance (the simulator sees instance packing, so it uses it).
                k = min(usable, key=lambda k: (self._marginal(k), -self.target[k], k))
                self.target[k] += 1
                now += 1
                changed = True
            while now > decision.replicas:  # shrink the smallest
                k = min((k for k in keys if self.target[k] > 0), key=lambda k: (self.target[k], k))
                self.target[k] -= 1
                now -= 1
                changed = True
        return dict(self.target) if changed else None

    def _marginal(self, key: GroupKey) -> float:
        pool = self.ctx.snapshot.pool_by_id[key[2]]
        used = sum(k[3] * n for k, n in self.target.items() if k[2] == pool.id)
        free = -used % pool.gpus
        return 0.0 if free >= key[3] else pool.price_per_hour  # a new whole instance

    def _capacity(self, keys: list[GroupKey], idx: list[int], rates: np.ndarray) -> float:
        """Believed SLO capacity of one of the deployment's replicas for its current mix (count-weighted)."""
        total_n = 0
        total_cap = 0.0
        mix = np.array([max(float(rates[i]), 1e-9) for i in idx])
        mix = mix / mix.sum()
        for k in keys:
            inv = 0.0
            w = 0.0
            for f, si in zip(mix, idx):
                c = self.ctx.gateway.believed_rps(k, si)
                if c:
                    inv += f / c
                    w += f
            if inv > 0:
                total_cap += self.target[k] * w / inv
                total_n += self.target[k]
        return total_cap / total_n if total_n else 0.0


class Melange(Policy):
    name = "melange"

    def __init__(self, ctx: Context) -> None:
        super().__init__(ctx)
        self.last_plan = -np.inf

    def decide(self, view: View) -> dict[GroupKey, int] | None:
        ctx = self.ctx
        due = view.step % ctx.replan_steps == 0
        failover = view.capacity_lost and view.now - self.last_plan >= FAILOVER_MIN_GAP_S
        if not (due or failover or not self.target):
            return None
        observed = ctx.traffic.peak_minute_rps(view.step - ctx.replan_steps, view.step)
        snap = snapshot_for(ctx, observed, view.down_pools)
        result = melange(snap, ctx.table, ctx.options())
        self.solves += 1
        if not result.ok and view.down_pools:
            result = melange(without_spread(snap), ctx.table, ctx.options())
            self.solves += 1
        self.last_plan = view.now
        if not result.ok:
            return None
        self.target = counts(result.replicas)
        return dict(self.target)


class Skyserve(Policy):
    name = "skyserve"

    def __init__(self, ctx: Context) -> None:
        super().__init__(ctx)
        self.up_for = 0.0
        self.down_for = 0.0

    def decide(self, view: View) -> dict[GroupKey, int] | None:
        ctx = self.ctx
        qps = ctx.traffic.mean_rps(view.step - ctx.control_steps, view.step)
        snap = snapshot_for(ctx, qps, view.down_pools)
        result = skyserve(snap, ctx.table)
        self.solves += 1
        if not result.ok and view.down_pools:
            result = skyserve(without_spread(snap), ctx.table)
        if not result.ok:
            return None
        desired = counts(result.replicas)
        lost = any(k[2] in view.down_pools for k in self.target)
        if not self.target or lost:
            return self._apply(desired)
        have, want = sum(self.target.values()), sum(desired.values())
        tick = ctx.settings.control_interval_s
        if want > have:
            self.up_for, self.down_for = self.up_for + tick, 0.0
            if self.up_for >= SKYSERVE_UP_S:
                return self._apply(desired)
        elif want < have:
            self.up_for, self.down_for = 0.0, self.down_for + tick
            if self.down_for >= SKYSERVE_DOWN_S:
                return self._apply(desired)
        else:
            self.up_for = self.down_for = 0.0
        return None

    def _apply(self, desired: dict[GroupKey, int]) -> dict[GroupKey, int]:
        self.up_for = self.down_for = 0.0
        self.target = desired
        return dict(desired)


class Static(Policy):
    name = "static"

    def decide(self, view: View) -> dict[GroupKey, int] | None:
        if self.target:
            return None
        ctx = self.ctx
        peak = ctx.traffic.peak_minute_rps(0, ctx.traffic.steps)
        plan = solve(
            snapshot_for(ctx, peak), ctx.table, ctx.options(max(10.0, ctx.settings.solver_time_limit_s))
        )
        self.solves += 1
        if not plan.ok:
            raise RuntimeError(
                f"static: no plan for the day's peak ({plan.status}): {'; '.join(plan.binding)}"
            )
        self.target = counts((r.deployment, r.variant, r.pool, r.tp, r.count) for r in plan.replicas)
        return dict(self.target)


SIMULATED: dict[str, type[Policy]] = {
    "llmfleet": Llmfleet,
    "skyserve": Skyserve,
    "melange": Melange,
    "static": Static,
}
