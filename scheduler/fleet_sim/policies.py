"""Policies under simulation: thin adapters that call the code the control plane and the benchmarks run.

- `llmfleet`: what the control plane runs, per deployment. Every re-plan interval (and after a loss of
  capacity, at most every FAILOVER_MIN_GAP_S) a plan for the forecast (scheduler.autoscale.forecast) of
  each slice's busiest minute, made two ways with the same planner: the fleet-wide placement MILP, and
  scheduler.autoscale_replan.replan of each deployment in turn (largest first), the way the control
  plane plans one deployment at a time; the one with the lower cost plus churn penalty against what runs
  is applied (the fleet-wide MILP packs deployments together but, time-limited, can return a poor
  plan; the per-deployment problems are small and usually solve to optimality). Between plans, every
  control tick, the AutoscaleWorkflow's step for each deployment: scheduler.autoscale.decide on the last
  minute's request rate with `placed_capacity_rps` as the capacity per replica, and when the count
  changes, `replan` of that deployment on `planning_demand` of the forecast (or
  `scheduler.autoscale.resize` when the MILP finds no plan); as the workflow, it then decides nothing for
  that deployment until the new replicas are ready (at most READY_TIMEOUT_S). A per-deployment re-plan
  sees the shared fleet through deployment_view.py: quotas net of what the other deployments hold and
  the free GPUs of their partly used instances as a spare pool. Differences from the workflow, all
  because the simulator adds a fleet-wide plan the control plane does not have: the plan's demand is a
  floor for the autoscaler (it serves bursts above the plan and gives back what it added, but never
  shrinks below what the plan sized for the interval's busiest minute: scaling the count of a
  re-placed deployment down on a quiet minute would swap fast replicas for many slow ones), and the
  demand mix of a deployment (the control plane's spec) is the forecast of its slices' recent rates.
  Every control tick it also learns each accelerator's speed from the TPOT p95 its replicas reported at
  their request rate (scheduler.speed_calibration, as the AutoscaleWorkflow's observe activity does), and
  all its planning uses the options' capacities at those speeds (never above the datasheet). Like the
  control plane's planning, it caps the share of spot pools in zones that lost replicas to preemption in
  the last hours (scheduler.spot_hints, from the facts spot_facts.py keeps).
- `skyserve`: the skyserve baseline's placement (one instance type, spot up to the cap, the rest
  on-demand) on the last minute's QPS every control tick, applied with SkyServe's hysteresis (a higher
  count must persist 300 s, a lower one 1200 s); a replica on a pool that went down is replaced at once
  from the placement without it (spot -> on-demand fallback).
- `melange`: the melange baseline on the last interval's busiest-minute rates, every re-plan interval.
- `static`: the MILP once, for each slice's busiest minute of the whole day (perfect knowledge of the
  peak); lost replicas are relaunched where they were, when their pool takes instances again.
The perfect-foresight bound is in bound.py. Pools that are down (outage, spot capacity gone after a
preemption) take no new instances: every planner sees them with the instances they still hold as quota
(none after an outage; the survivors of a preemption may stay).
"""

from __future__ import annotations

from collections import defaultdict
from collections.abc import Iterable, Mapping
from dataclasses import dataclass, field, replace

import numpy as np

from scheduler.autoscale import AutoscalePolicy, AutoscaleState, Observation, decide, forecast, resize
from scheduler.autoscale_replan import ReplanLimits, placed_capacity_rps, planning_demand, replan
from scheduler.fleet_sim.deployment_view import DeploymentView, deployment_view
from scheduler.fleet_sim.fleet import GroupKey
from scheduler.fleet_sim.routing import Gateway
from scheduler.fleet_sim.settings import SimulationIn
from scheduler.fleet_sim.spot_facts import SpotFacts
from scheduler.fleet_sim.traffic import Traffic
from scheduler.model_spec import RequestShape
from scheduler.perf_model import PerfModel
from scheduler.placement import CandidateTable, PlacedReplicas, SolveOptions, build_candidates, solve
from scheduler.placement.baselines import melange, skyserve
from scheduler.placement.snapshot import DemandSlice, Deployment, Snapshot
from scheduler.speed_calibration import SpeedModels, rounded, update_speeds

POLICIES = ("llmfleet", "skyserve", "melange", "static", "bound")
FAILOVER_MIN_GAP_S = 300.0  # at most one capacity-loss re-plan per this long
SKYSERVE_UP_S = 300.0
READY_TIMEOUT_S = 900.0  # the AutoscaleWorkflow's wait for a re-plan's replicas (AutoscaleInput)
SKYSERVE_DOWN_S = 1200.0


@dataclass(frozen=True, slots=True)
class GroupTelemetry:
    """What a group's replicas reported over the last control interval (as agents report per replica)."""

    requests: float
    replica_seconds: float  # ready replicas x seconds: the request rate per replica is requests / this
    tpot_p95_ms: float
    mix: RequestShape  # the mean request shape served


@dataclass(frozen=True)
class View:
    now: float
    step: int
    running: Mapping[GroupKey, int]
    down_pools: frozenset[str]
    capacity_lost: bool
    load_rps: Mapping[GroupKey, float] = field(default_factory=dict)  # routed to each group (last tick)
    ready: Mapping[GroupKey, int] = field(default_factory=dict)
    held: Mapping[str, int] = field(default_factory=dict)  # down pool -> instances still running there
    telemetry: Mapping[GroupKey, GroupTelemetry] = field(default_factory=dict)  # the last control interval
    preempted: Mapping[str, int] = field(default_factory=dict)  # spot pool -> replicas lost since the last tick

    @property
    def limits(self) -> dict[str, int]:
        """Instance limits of the pools that are down: no new instances, what survived may stay."""
        return {p: self.held.get(p, 0) for p in self.down_pools}


@dataclass(frozen=True)
class Context:
    snapshot: Snapshot
    table: CandidateTable  # what the planners believe: the datasheets
    traffic: Traffic
    gateway: Gateway
    settings: SimulationIn
    model: PerfModel  # what the table was built from

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
    down: Iterable[str] | Mapping[str, int] = (),
    running: Mapping[GroupKey, int] | None = None,
) -> Snapshot:
    """The scenario's fleet with demand at `rates` (one per slice), pools that are down limited to the
    instances they still hold (`down` maps pool -> instances; a plain list of pools means none), and the
    running replicas as the current placement (re-plan mode)."""
    snap = ctx.snapshot
    it = iter(float(r) for r in rates)
    deployments = tuple(
        replace(d, demand=tuple(DemandSlice(s.client_region, s.shape, max(0.0, next(it))) for s in d.demand))
        for d in snap.deployments
    )
    held = down if isinstance(down, Mapping) else dict.fromkeys(down, 0)
    pools = tuple(
        replace(p, max_instances=min(p.max_instances, held[p.id])) if p.id in held else p for p in snap.pools
    )
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
        self.forecast: np.ndarray | None = None  # per slice: forecast of the busiest minute (plans)
        self.mix: np.ndarray | None = None  # per slice: forecast of the last minute's rate (autoscaling)
        self.last_plan = -np.inf
        self.planned_rps: dict[str, float] = {}  # per deployment: the demand of the last plan (a floor)
        self.at_plan: dict[str, bool] = {}  # per deployment: sized for the plan's demand, not above it
        self.states: dict[str, AutoscaleState] = {}
        self.applying: dict[str, float] = {}  # deployment -> when its autoscale re-plan started applying
        self.slices = {
            d.name: [i for i, s in enumerate(ctx.traffic.slices) if s.deployment == d.name]
            for d in ctx.snapshot.deployments
        }
        self.speeds: dict[str, float] = {}  # accelerator -> speed learned from latency (speed_calibration)
        self._speed_models = SpeedModels(ctx.model)
        self._table_key: tuple[tuple[str, float], ...] = ()  # the speeds self._table was built at
        self._table = ctx.table
        self._spot = SpotFacts(ctx.snapshot)  # preemptions seen per zone, as the control plane's planning uses

    @property
    def table(self) -> CandidateTable:
        """The options with the capacities of the accelerators as they behave (datasheets x learned speed)."""
        key = tuple(rounded(self.speeds).items())
        if key != self._table_key:  # rebuilt only when a speed moves a grid step (speeds settle)
            self._table_key = key
            self._table = build_candidates(self.ctx.snapshot, self._speed_models.calibrated(dict(key)))
        return self._table

    def _calibrate(self, view: View) -> None:
        """Learn each accelerator's speed from the TPOT its replicas reported at their request rate (as the
        AutoscaleWorkflow's observe activity does from agent telemetry)."""
        snap = self.ctx.snapshot
        samples = []
        for key, t in view.telemetry.items():
            if t.replica_seconds > 0:
                dep = snap.deployment_by_name[key[0]]
                samples.append(self._speed_models.sample(
                    dep.arch, dep.variant(key[1]), snap.pool_by_id[key[2]].accelerator, key[3], t.mix,
                    t.requests / t.replica_seconds, t.tpot_p95_ms, t.requests))
        self.speeds = update_speeds(self.speeds, samples)

    def decide(self, view: View) -> dict[GroupKey, int] | None:
        ctx = self.ctx
        self._calibrate(view)
        self._spot.record(view.now, view.ready, ctx.settings.control_interval_s, view.preempted)
        due = view.step % ctx.replan_steps == 0
        failover = view.capacity_lost and view.now - self.last_plan >= FAILOVER_MIN_GAP_S
        if due or failover or not self.target:
            return self._plan(view)
        return self._autoscale(view)

    def _policy(self, min_replicas: int) -> AutoscalePolicy:
        # The AutoscaleWorkflow's defaults (AutoscaleInput): target utilisation 0.7 of the believed
        # capacity, a little below the planner's headroom, so a burst above the plan is met before it
        # saturates replicas that may be slower than believed.
        return AutoscalePolicy(min_replicas=min_replicas)

    def _plan(self, view: View) -> dict[GroupKey, int] | None:
        """A plan for the forecast of each slice's busiest minute, two ways with the same planner: the
        fleet-wide MILP, and each deployment re-planned on its own, one after another (largest first, each
        seeing what the others hold), as the control plane plans. The one that costs less, counting the
        churn penalty against what runs now, is applied."""
        ctx = self.ctx
        observed = ctx.traffic.peak_minute_rps(view.step - ctx.replan_steps, view.step)
        self.forecast = self._forecast(self.forecast, observed, ctx.replan_steps / ctx.control_steps)
        self.last_plan = view.now
        now = self._mine(None, view)
        options = [t for t in (self._plan_fleet(view), self._plan_each(view)) if t is not None]
        if not options:
            return None  # keep what runs; the autoscaler still reacts
        self.target = min(options, key=lambda t: self._objective(t, now))
        self.planned_rps = {d: float(sum(self.forecast[i] for i in idx)) for d, idx in self.slices.items()}
        self.at_plan = dict.fromkeys(self.slices, True)
        return dict(self.target)

    def _plan_fleet(self, view: View) -> dict[GroupKey, int] | None:
        ctx = self.ctx
        assert self.forecast is not None
        snap = self._spot.apply(snapshot_for(ctx, self.forecast, view.limits, self._mine(None, view)), view.now)
        plan = solve(snap, self.table, ctx.options())
        self.solves += 1
        if not plan.ok and view.down_pools:
            # After losing a failure domain, spread may be impossible with what is left.
            plan = solve(without_spread(snap), self.table, ctx.options())
            self.solves += 1
        if not plan.ok:
            return None
        return counts((r.deployment, r.variant, r.pool, r.tp, r.count) for r in plan.replicas)

    def _plan_each(self, view: View) -> dict[GroupKey, int] | None:
        ctx = self.ctx
        declared = self._spot.apply(snapshot_for(ctx, self.forecast if self.forecast is not None else ()), view.now)
        target = dict(self.target)
        for dep in sorted(declared.deployments, key=lambda d: (-d.total_rps, d.name)):
            dv = self._view(declared, dep, view, target)
            result = replan(dv.snapshot, dv.table, dep.name, dep.total_rps, ReplanLimits(), ctx.options())
            self.solves += 1
            if not result.plan.ok and view.down_pools:
                degraded = without_spread(dv.snapshot)
                result = replan(degraded, dv.table, dep.name, dep.total_rps, ReplanLimits(), ctx.options())
                self.solves += 1
            if not result.plan.ok:
                return None
            new = dv.to_fleet((r.variant, r.pool, r.tp, r.count) for r in result.plan.replicas)
            target = {k: n for k, n in target.items() if k[0] != dep.name} | new
        return target

    def _objective(self, target: Mapping[GroupKey, int], now: Mapping[GroupKey, int]) -> float:
        """What the planner minimises, for a whole fleet: whole instances x price, plus the churn penalty
        (SolveOptions.churn_weight x each added or removed replica's GPU-hours) against `now`."""
        snap = self.ctx.snapshot
        gpus: dict[str, int] = defaultdict(int)
        for k, n in target.items():
            gpus[k[2]] += k[3] * n
        pools = snap.pool_by_id
        cost = sum(-(-g // pools[p].gpus) * pools[p].price_per_hour for p, g in gpus.items())
        weight = self.ctx.options().churn_weight
        for k in set(target) | set(now):
            pool = snap.pool_by_id[k[2]]
            cost += weight * abs(target.get(k, 0) - now.get(k, 0)) * k[3] * pool.price_per_hour / pool.gpus
        return cost

    def _autoscale(self, view: View) -> dict[GroupKey, int] | None:
        """The AutoscaleWorkflow's step for each deployment: observe, decide, and on a new count re-plan
        that deployment through the MILP (or resize in place when the MILP finds no plan)."""
        ctx = self.ctx
        rates = ctx.traffic.mean_rps(view.step - ctx.control_steps, view.step)
        self.mix = self._forecast(self.mix, rates)
        declared = self._spot.apply(snapshot_for(ctx, self.mix), view.now)
        changed = False
        for dep in declared.deployments:
            if self._waiting(dep.name, view):
                continue
            mine = self._mine(dep.name, view)
            replicas = sum(mine.values())
            dv = self._view(declared, dep, view)
            capacity = placed_capacity_rps(dv.snapshot, dv.table, dep.name) or 0.0
            rps = float(sum(rates[i] for i in self.slices[dep.name]))
            decision, state = decide(
                self._policy(dep.constraints.min_replicas),
                self.states.get(dep.name, AutoscaleState()),
                Observation(rps, replicas, capacity),
            )
            self.states[dep.name] = state
            if decision.replicas == replicas:
                continue
            # The plan's demand is a floor: the autoscaler serves bursts above the plan and gives back
            # what it added, but does not shrink below what the plan sized for the interval's busiest minute.
            planned = self.planned_rps.get(dep.name, 0.0)
            if decision.replicas < replicas and self.at_plan.get(dep.name, False):
                continue
            demand = max(state.forecast_rps or 0.0, planned)
            self.at_plan[dep.name] = demand <= planned
            planned_demand = planning_demand(demand, target_utilisation=self._policy(0).target_utilisation,
                                             headroom=dep.headroom or dv.snapshot.headroom)
            result = replan(dv.snapshot, dv.table, dep.name, planned_demand, ReplanLimits(), ctx.options())
            self.solves += 1
            if not result.plan.ok and view.down_pools:  # spread may be impossible with what is left
                degraded = without_spread(dv.snapshot)
                result = replan(degraded, dv.table, dep.name, planned_demand, ReplanLimits(), ctx.options())
                self.solves += 1
            if result.plan.ok:
                new = dv.to_fleet((r.variant, r.pool, r.tp, r.count) for r in result.plan.replicas)
            else:  # no plan: resize what runs where its traffic goes (as the workflow does)
                keys = sorted(mine)
                load = [view.load_rps.get(k, 0.0) for k in keys]
                sizes = resize([mine[k] for k in keys], load, decision.replicas)
                new = {k: n for k, n in zip(keys, sizes, strict=True) if n > 0}
                if not new:
                    continue  # nothing runs to resize: keep what is wanted
            self._apply(dep.name, new)
            self.applying[dep.name] = view.now
            changed = True
        return dict(self.target) if changed else None

    def _forecast(self, previous: np.ndarray | None, observed: np.ndarray, intervals: float = 1.0) -> np.ndarray:
        """The autoscaler's forecast per slice, for an observation over `intervals` control intervals."""
        policy = self._policy(0)
        return np.array(
            [
                forecast(None if previous is None else float(previous[i]), float(o), policy, intervals)
                for i, o in enumerate(observed)
            ]
        )

    def _mine(
        self, dep: str | None, view: View, target: Mapping[GroupKey, int] | None = None
    ) -> dict[GroupKey, int]:
        """A deployment's replicas now (all when `dep` is None) as the control plane counts them: wanted,
        starting ones included; in a pool that is down, only those still running."""
        wanted = self.target if target is None else target
        out = {
            k: min(n, view.running.get(k, 0)) if k[2] in view.down_pools else n
            for k, n in wanted.items()
            if dep is None or k[0] == dep
        }
        return {k: n for k, n in out.items() if n > 0}

    def _view(
        self, declared: Snapshot, dep: Deployment, view: View, target: Mapping[GroupKey, int] | None = None
    ) -> DeploymentView:
        wanted = self.target if target is None else target
        others: dict[GroupKey, int] = {}
        for k in set(wanted) | set(view.running):
            if k[0] != dep.name:  # what the others occupy: wanted, or still running (make before break);
                # in a pool that is down, only what still runs there
                want = 0 if k[2] in view.down_pools else wanted.get(k, 0)
                others[k] = max(want, view.running.get(k, 0))
        return deployment_view(
            declared, self.table, dep, self._mine(dep.name, view, wanted), others, view.limits
        )

    def _apply(self, dep: str, new: Mapping[GroupKey, int]) -> None:
        self.target = {k: n for k, n in self.target.items() if k[0] != dep} | dict(new)

    def _waiting(self, dep: str, view: View) -> bool:
        """Whether the deployment's AutoscaleWorkflow still waits for its re-plan's replicas to be ready (it
        decides nothing meanwhile; after READY_TIMEOUT_S it stops waiting)."""
        since = self.applying.get(dep)
        if since is None:
            return False
        if view.now - since < READY_TIMEOUT_S and any(
            view.ready.get(k, 0) < n for k, n in self.target.items() if k[0] == dep
        ):
            return True
        del self.applying[dep]
        return False


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
        snap = snapshot_for(ctx, observed, view.limits)
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
        snap = snapshot_for(ctx, qps, view.limits)
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
