"""The autoscaler's re-plan: the placement MILP on the forecast demand, with what runs now as the current
placement (so the churn penalty keeps healthy replicas where they are), within the deployment's replica
ceiling and budget.

`scheduler.autoscale.decide` says when to act (quick up, slow down); this module says what and where. The
policy's wish is handed over as a demand in requests/s (`planning_demand`), not as a replica count: the
MILP sizes replicas by the performance model at its headroom, so the forecast is scaled by the policy's
target utilisation against that headroom, and by how much less a replica does than the model believes
when the capacity the policy observes is lower. A count would not mean the same on another GPU type: as a
floor it ratchets (many slow replicas make the next count larger). When the demand needs more than
`max_replicas`, the budget or the fleet's quotas allow, the plan serves the largest share of it that fits
(found by bisection) and says so: a ceiling caps capacity, it does not make the deployment unplaceable.
`min_replicas` always holds, whatever the budget (as in `scheduler.autoscale.bounds`).

Pure: the AutoscaleWorkflow's activity and the fleet simulator run the same function.
"""

from __future__ import annotations

import math
from dataclasses import dataclass, replace
from functools import cache

from scheduler.model_spec import RequestShape
from scheduler.placement import CandidateTable, Deployment, Plan, SolveOptions, Snapshot, solve
from scheduler.placement.snapshot import DemandSlice

BISECTION_STEPS = 7  # the served share of the forecast is found to within 1/128 of it


@dataclass(frozen=True, slots=True)
class ReplanLimits:
    max_replicas: int | None = None
    budget_per_hour: float | None = None

    def __post_init__(self) -> None:
        if self.max_replicas is not None and self.max_replicas < 0:
            raise ValueError("max_replicas must be >= 0")


@dataclass(frozen=True)
class Replan:
    plan: Plan
    demand_rps: float  # what the plan serves: the forecast, or less when a ceiling binds
    capped_by: str | None  # "max_replicas", "budget" or "capacity" (quotas) when it did not fit; else None

    @property
    def reason(self) -> str:
        if not self.plan.ok:
            return f"re-plan {self.plan.status}: " + "; ".join((*self.plan.binding, *self.plan.reasons)[:2])
        text = f"re-planned for {self.demand_rps:.2f} rps"
        return f"{text} (capped by {self.capped_by})" if self.capped_by else text


def planning_demand(forecast_rps: float, *, target_utilisation: float, headroom: float,
                    observed_capacity_rps: float | None = None, model_capacity_rps: float | None = None) -> float:
    """The demand (requests/s) to give the MILP so that it provisions what the policy wants: replicas loaded to
    `target_utilisation` of what one sustains, where the MILP loads them to `headroom` of what the model says
    one sustains. Replicas that do less than the model believes (observed < model capacity) raise the demand
    in proportion; doing more never lowers it (the model stays the conservative side)."""
    if not 0 < target_utilisation <= 1 or not 0 < headroom <= 1:
        raise ValueError("target_utilisation and headroom must be within (0, 1]")
    scale = headroom / target_utilisation
    if observed_capacity_rps and model_capacity_rps and observed_capacity_rps < model_capacity_rps:
        scale *= model_capacity_rps / observed_capacity_rps
    return max(forecast_rps, 0.0) * scale


def with_demand(snapshot: Snapshot, deployment: str, rps: float) -> Snapshot:
    """The snapshot with `deployment`'s total demand set to `rps`, split over its slices (client region x
    request shape) in proportion to their declared rates: telemetry gives the total, the spec the mix."""
    dep = _deployment(snapshot, deployment)
    if not dep.demand:
        raise ValueError(f"deployment {deployment!r} declares no demand slices to scale")
    declared = sum(s.rps for s in dep.demand)
    weights = [s.rps / declared if declared > 0 else 1.0 / len(dep.demand) for s in dep.demand]
    demand = tuple(DemandSlice(s.client_region, s.shape, max(rps, 0.0) * w) for s, w in zip(dep.demand, weights, strict=True))
    return _with_deployment(snapshot, replace(dep, demand=demand))


def deployment_cost_per_hour(plan: Plan, snapshot: Snapshot, deployment: str) -> float:
    """What `deployment`'s replicas cost: each pays its GPUs' share of its instance's price (instances
    shared with other deployments are split by GPUs, as the cost accounting does)."""
    pools = {p.id: p for p in snapshot.pools}
    return sum(r.count * r.tp * pools[r.pool].price_per_hour / pools[r.pool].gpus
               for r in plan.replicas if r.deployment == deployment)


def placed_capacity_rps(snapshot: Snapshot, table: CandidateTable, deployment: str) -> float | None:
    """What one of `deployment`'s placed replicas (`snapshot.current`) sustains on average at its declared
    request mix: the autoscaling policy's capacity per replica, from the same performance model the MILP
    uses. A replica serving a mix time-shares between shapes, so its capacity is the demand-weighted
    harmonic mean over shapes (at the SLO's full TTFT: RTT is the routing's concern). None when nothing
    placed has a known capacity."""
    dep = _deployment(snapshot, deployment)
    declared = sum(s.rps for s in dep.demand)
    weight: dict[RequestShape, float] = {}
    for s in dep.demand:
        weight[s.shape] = weight.get(s.shape, 0.0) + (s.rps / declared if declared > 0 else 1.0 / len(dep.demand))
    options = {c.key: c for c in table.candidates if c.deployment == deployment}
    total, count = 0.0, 0
    for placed in snapshot.current:
        option = options.get((placed.deployment, placed.variant, placed.pool, placed.tp))
        if placed.deployment != deployment or option is None:
            continue
        seconds_per_request = 0.0
        for shape, w in weight.items():
            point = option.best_point(shape, dep.slo.ttft_p95_ms)
            seconds_per_request = math.inf if point is None else seconds_per_request + w / point.rps
        if 0 < seconds_per_request < math.inf:
            total += placed.count / seconds_per_request
            count += placed.count
    return total / count if count else None


def replan(snapshot: Snapshot, table: CandidateTable, deployment: str, demand_rps: float,
           limits: ReplanLimits, options: SolveOptions | None = None) -> Replan:
    """Plan `deployment` for `demand_rps` (see `planning_demand`); if that breaks a ceiling, the largest
    demand that fits. `snapshot.current` should hold what runs now."""
    dep = _deployment(snapshot, deployment)
    promised = dep.constraints.min_replicas
    ceiling = limits.max_replicas

    def attempt(rps: float) -> Plan:
        return solve(with_demand(snapshot, deployment, rps), table, options)

    @cache
    def minimal() -> Plan:  # the promise alone: what min_replicas costs, whatever the budget says
        return attempt(0.0)

    def over_budget(plan: Plan) -> bool:
        if limits.budget_per_hour is None:
            return False
        cost = deployment_cost_per_hour(plan, snapshot, deployment)
        if cost <= limits.budget_per_hour + 1e-9:
            return False
        promise = minimal()
        return cost > (deployment_cost_per_hour(promise, snapshot, deployment) if promise.ok else 0.0) + 1e-9

    def breaks(plan: Plan) -> str | None:
        if ceiling is not None and plan.replicas_of(deployment) > max(ceiling, promised):
            return "max_replicas"
        return "budget" if over_budget(plan) else None

    plan = attempt(demand_rps)
    if plan.ok:
        capped = breaks(plan)
        if capped is None:
            return Replan(plan, demand_rps, None)
    elif plan.status == "infeasible":
        capped = "capacity"  # more than the fleet's quotas hold: serve what they can
    else:
        return Replan(plan, demand_rps, None)  # no plan within the time limit: nothing to bisect on
    if not minimal().ok:
        return Replan(plan, demand_rps, None)  # not even min_replicas fits: the plan says why
    # Too big: bisect the served share of the demand (min_replicas holds at every share).
    best, best_share = minimal(), 0.0
    low, high = 0.0, 1.0
    for _ in range(BISECTION_STEPS):
        share = (low + high) / 2
        trial = attempt(demand_rps * share)
        if trial.ok and breaks(trial) is None:
            best, best_share, low = trial, share, share
        else:
            high = share
    return Replan(best, demand_rps * best_share, capped)


def _deployment(snapshot: Snapshot, name: str) -> Deployment:
    for d in snapshot.deployments:
        if d.name == name:
            return d
    raise ValueError(f"deployment {name!r} is not in the snapshot")


def _with_deployment(snapshot: Snapshot, dep: Deployment) -> Snapshot:
    return replace(snapshot, deployments=tuple(dep if d.name == dep.name else d for d in snapshot.deployments))
