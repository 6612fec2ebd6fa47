"""One simulated day, step by step in virtual time, for each policy on the same requests and events.

Per step: disruptions (outages starting, spot preemptions), replicas finishing their cold start, then
every control interval the policy decides and the fleet reconciles, the gateway re-splits traffic
whenever the ready replicas change, and each group's arrivals go through the replica model; cost
accrues per instance. Nothing here reads a wall clock.
"""

from __future__ import annotations

import math
from collections import defaultdict
from collections.abc import Callable, Sequence
from dataclasses import dataclass, field

import numpy as np

from scheduler.fleet_sim.bound import STATISTICS, BoundResult, perfect_foresight
from scheduler.fleet_sim.events import Events
from scheduler.fleet_sim.fleet import Fleet, GroupKey
from scheduler.fleet_sim.metrics import Metrics, Timeline
from scheduler.fleet_sim.policies import POLICIES, SIMULATED, Context, GroupTelemetry, Policy, View
from scheduler.fleet_sim.replica_model import Z95, TruthModel
from scheduler.fleet_sim.routing import Gateway
from scheduler.fleet_sim.settings import SimScenario
from scheduler.fleet_sim.traffic import build_traffic
from scheduler.model_spec import RequestShape
from scheduler.perf_model import PerfModel
from scheduler.placement import build_candidates


@dataclass
class Flows:
    """Request bookkeeping at the replica groups (fluid counts)."""

    routed: float = 0.0
    served: float = 0.0
    lost: float = 0.0  # queued on replicas that disappeared


@dataclass
class PolicyResult:
    name: str
    cost_usd: float
    metrics: Metrics
    timeline: Timeline
    flows: Flows
    final_backlog: float
    solves: int
    replica_hours: float

    @property
    def usd_per_1m_tokens(self) -> float | None:
        return self.cost_usd / self.metrics.tokens * 1e6 if self.metrics.tokens > 0 else None


@dataclass
class SimResult:
    scenario: str
    hours: float
    seed: int
    perf_factors: dict[str, float]
    policies: dict[str, PolicyResult] = field(default_factory=dict)
    bounds: dict[str, BoundResult] = field(default_factory=dict)


PolicyFactory = Callable[[Context], Policy]


def simulate(
    sim: SimScenario,
    policies: Sequence[str] = POLICIES,
    *,
    hours: float | None = None,
    seed: int = 0,
    extra: dict[str, PolicyFactory] | None = None,
) -> SimResult:
    """Run the named policies (see policies.POLICIES; `extra` adds custom ones, e.g. in tests)."""
    unknown = [p for p in policies if p not in POLICIES and p not in (extra or {})]
    if unknown:
        raise ValueError(f"unknown policies: {', '.join(unknown)}; known: {', '.join(POLICIES)}")
    h = hours if hours is not None else sim.settings.hours
    ctx, truth = prepare(sim, h, seed)
    result = SimResult(sim.scenario.name, h, seed, truth.factors)
    for name in policies:
        events = Events(ctx.snapshot, ctx.settings, seed)
        if name == "bound":
            true_table = build_candidates(ctx.snapshot, truth.model)
            for statistic in STATISTICS:
                result.bounds[statistic] = perfect_foresight(ctx, events, true_table, statistic)
            continue
        factory = (extra or {}).get(name) or SIMULATED[name]
        result.policies[name] = run_policy(ctx, factory(ctx), truth, events, seed, name)
    return result


def prepare(sim: SimScenario, hours: float, seed: int) -> tuple[Context, TruthModel]:
    """What every policy of a run shares: the requests, what the planners believe, and the truth."""
    if hours <= 0:
        raise ValueError("hours must be positive")
    snapshot, settings = sim.scenario.snapshot, sim.settings
    traffic = build_traffic(sim, hours, settings.replan_interval_s, seed)
    believed = PerfModel(gpus=sim.scenario.gpus)
    table = build_candidates(snapshot, believed)
    gateway = Gateway(snapshot, {c.key: c for c in table.candidates}, traffic.slices)
    truth = TruthModel(sim.scenario.gpus, settings.perf_error, seed)
    return Context(snapshot, table, traffic, gateway, settings, believed), truth


def run_policy(
    ctx: Context, policy: Policy, truth: TruthModel, events: Events, seed: int, name: str | None = None
) -> PolicyResult:
    snapshot, traffic, settings, gateway = ctx.snapshot, ctx.traffic, ctx.settings, ctx.gateway
    dt = traffic.step_s
    fleet = Fleet(snapshot, settings.cold_start_s)
    metrics, timeline, flows = Metrics(), Timeline(), Flows()
    kill_rng = np.random.default_rng([seed, 4])
    slo_ttft = {d.name: d.slo.ttft_p95_ms for d in snapshot.deployments}
    slo_tpot = {d.name: d.slo.tpot_p95_ms for d in snapshot.deployments}
    spot = [p.id for p in snapshot.pools if p.is_spot]
    tokens = np.array([s.shape.prompt_tokens + s.shape.output_tokens for s in traffic.slices], dtype=float)
    batch: dict[GroupKey, float] = defaultdict(float)  # in-flight per replica, last step
    mixes: dict[GroupKey, RequestShape | None] = {}
    shares: dict[int, list[tuple[GroupKey, float]]] = {}
    cost = 0.0
    replica_hours = 0.0
    capacity_lost = False
    tick_requests = tick_met = 0.0
    # Per group over the control interval, as agents report it: requests, replica-seconds, sum of TPOT p95.
    reported: dict[GroupKey, list[float]] = defaultdict(lambda: [0.0, 0.0, 0.0])
    preempted: dict[str, int] = defaultdict(int)  # spot pool -> replicas preempted since the last tick

    def lose(killed: list[tuple[GroupKey, int, float]]) -> None:
        for key, ready_killed, backlog in killed:
            flows.lost += backlog
            metrics.add_disrupted(backlog + ready_killed * batch[key])

    for step in range(traffic.steps):
        t = step * dt
        changed = False
        for region, end in events.outages_starting(t, dt):
            for p in snapshot.pools:
                if p.region == region:
                    fleet.down_until[p.id] = max(fleet.down_until.get(p.id, -math.inf), end)
                    lose(fleet.kill_pool(p.id))
            capacity_lost = changed = True
        for pid in events.preemptions({p: fleet.instances(p) for p in spot}, dt):
            killed = fleet.kill_instance(pid, kill_rng)
            preempted[pid] += len(killed)  # one entry per replica lost, as the registry records them
            lose(killed)
            fleet.down_until[pid] = max(
                fleet.down_until.get(pid, -math.inf), t + settings.preemption.unavailable_s
            )
            capacity_lost = changed = True
        changed |= fleet.advance(t)
        if step % ctx.control_steps == 0:
            if step > 0:
                timeline.hours.append(t / 3600.0)
                timeline.cost_usd.append(cost)
                timeline.replicas.append(sum(fleet.running().values()))
                timeline.requests.append(tick_requests)
                timeline.met.append(tick_met)
                tick_requests = tick_met = 0.0
            down = frozenset(p for p in fleet.down_until if not fleet.available(p, t))
            rates = traffic.mean_rps(step - ctx.control_steps, step)
            load: dict[GroupKey, float] = defaultdict(float)  # the groups' telemetry: what was routed
            for si, route in shares.items():
                for key, frac in route:
                    load[key] += float(rates[si]) * frac
            held = {p: fleet.instances(p) for p in down}
            telemetry = {
                k: GroupTelemetry(n, rs, p95 / n, mix)
                for k, (n, rs, p95) in reported.items()
                if n > 0 and (mix := mixes.get(k)) is not None
            }
            reported.clear()
            view = View(
                t, step, fleet.running(), down, capacity_lost, load, fleet.ready(), held, telemetry, dict(preempted)
            )
            preempted.clear()
            target = policy.decide(view)
            if target is not None:
                fleet.set_target(target)
            changed |= fleet.reconcile(t, instant=(step == 0))  # the day starts from a warm fleet
            capacity_lost = False
            shares = gateway.shares(fleet.ready(), list(rates), fleet.queued(), settings.control_interval_s)
        elif changed:
            shares = gateway.shares(
                fleet.ready(),
                list(traffic.mean_rps(step - ctx.control_steps, step)),
                fleet.queued(),
                settings.control_interval_s,
            )

        col = traffic.counts[:, traffic.col(step)]
        cells: dict[GroupKey, list[tuple[int, float]]] = defaultdict(list)
        for si in np.nonzero(col)[0]:
            n = float(col[si])
            route = shares.get(int(si))
            if not route:
                metrics.add_dropped(n)
                tick_requests += n
                continue
            for key, frac in route:
                cells[key].append((int(si), n * frac))
        busy = set(cells) | {k for k, g in fleet.groups.items() if g.backlog > 0 and g.ready > 0}
        arr: list[tuple[float, float, float, float, float, float, float, float]] = []
        for key in sorted(busy):
            g = fleet.groups[key]
            d = snapshot.deployment_by_name[key[0]]
            mine = cells.get(key, [])
            spec = [(c, traffic.slices[si].shape, gateway.rtt_ms(key, si)) for si, c in mine]
            res, lat = truth.step(
                d.arch,
                d.variant(key[1]),
                snapshot.pool_by_id[key[2]].accelerator,
                key[3],
                g.ready,
                g.backlog,
                spec,
                dt,
                mixes.get(key),
            )
            mixes[key] = res.mix
            g.backlog = res.backlog
            batch[key] = res.batch
            flows.routed += sum(c for _, c in mine)
            flows.served += res.served
            if lat:  # every cell of a group step has the same TPOT distribution
                n = sum(c for _, c in mine)
                r = reported[key]
                r[0] += n
                r[1] += g.ready * dt
                r[2] += n * (lat[0].tpot_mean_ms + Z95 * lat[0].tpot_sigma_ms)
            for (si, c), cl in zip(mine, lat):
                arr.append(
                    (
                        c,
                        cl.base_ttft_ms,
                        cl.wait_scale_ms,
                        cl.tpot_mean_ms,
                        cl.tpot_sigma_ms,
                        slo_ttft[key[0]],
                        slo_tpot[key[0]],
                        tokens[si],
                    )
                )
        if arr:
            a = np.array(arr)
            met = metrics.add_cells(a[:, 0], a[:, 1], a[:, 2], a[:, 3], a[:, 4], a[:, 5], a[:, 6], a[:, 7])
            tick_requests += float(a[:, 0].sum())
            tick_met += met
        running = fleet.running()
        cost += fleet.cost_per_hour() * dt / 3600.0
        replica_hours += sum(running.values()) * dt / 3600.0
    timeline.hours.append(traffic.steps * dt / 3600.0)
    timeline.cost_usd.append(cost)
    timeline.replicas.append(sum(fleet.running().values()))
    timeline.requests.append(tick_requests)
    timeline.met.append(tick_met)
    backlog = sum(g.backlog for g in fleet.groups.values())
    return PolicyResult(
        name or policy.name, cost, metrics, timeline, flows, backlog, policy.solves, replica_hours
    )
