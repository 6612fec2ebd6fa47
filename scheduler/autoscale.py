"""The autoscaling policy: observed load in, replica count out. Pure, so the AutoscaleWorkflow and the
simulator run the same code.

Forecast: an exponentially weighted average that reacts fast to rising load (`up_alpha`) and slowly to
falling load (`down_alpha`). Replicas: enough for the forecast at `target_utilisation` of each replica's
capacity, within [min, max] and the budget. Scale-up happens at once; scale-down only after the lower
count has been wanted for `down_delay_intervals` intervals in a row, so a dip does not cost a cold start
when the load comes back.
"""

from __future__ import annotations

import math
from dataclasses import dataclass, replace


@dataclass(frozen=True, slots=True)
class AutoscalePolicy:
    min_replicas: int = 1
    max_replicas: int | None = None
    target_utilisation: float = 0.7  # of a replica's SLO capacity
    up_alpha: float = 0.8
    down_alpha: float = 0.2
    down_delay_intervals: int = 3
    budget_per_hour: float | None = None
    price_per_replica_hour: float = 0.0

    def __post_init__(self) -> None:
        if self.min_replicas < 0 or (self.max_replicas is not None and self.max_replicas < self.min_replicas):
            raise ValueError("need 0 <= min_replicas <= max_replicas")
        if not 0 < self.target_utilisation <= 1 or not 0 < self.up_alpha <= 1 or not 0 < self.down_alpha <= 1:
            raise ValueError("target_utilisation and the alphas must be within (0, 1]")


@dataclass(frozen=True, slots=True)
class AutoscaleState:
    forecast_rps: float | None = None
    lower_for: int = 0  # consecutive intervals that wanted fewer replicas than run now


@dataclass(frozen=True, slots=True)
class Observation:
    rps: float | None  # None: no telemetry this interval
    replicas: int  # running now
    capacity_rps: float  # one replica's capacity under the SLO


@dataclass(frozen=True, slots=True)
class Decision:
    replicas: int
    reason: str


def forecast(previous: float | None, observed: float, policy: AutoscalePolicy, intervals: float = 1.0) -> float:
    """The next forecast from the last one and an observation covering `intervals` control intervals.

    The alphas are per control interval: an observation over n intervals weighs what n observations in a
    row would, 1 - (1 - alpha)^n (so a plan made once an hour forgets an old peak as fast, in hours, as
    the autoscaler does)."""
    if intervals <= 0:
        raise ValueError("intervals must be > 0")
    if previous is None:
        return observed
    alpha = policy.up_alpha if observed > previous else policy.down_alpha
    weight = alpha if intervals == 1 else 1.0 - (1.0 - alpha) ** intervals
    return weight * observed + (1 - weight) * previous


def bounds(policy: AutoscalePolicy) -> tuple[int, int | None]:
    """The replica range the policy allows; the budget lowers the ceiling (never below the floor:
    min_replicas is a promise, the budget a preference)."""
    ceiling = policy.max_replicas
    if policy.budget_per_hour is not None and policy.price_per_replica_hour > 0:
        affordable = math.floor(policy.budget_per_hour / policy.price_per_replica_hour + 1e-9)
        ceiling = affordable if ceiling is None else min(ceiling, affordable)
    if ceiling is not None:
        ceiling = max(ceiling, policy.min_replicas)
    return policy.min_replicas, ceiling


def decide(policy: AutoscalePolicy, state: AutoscaleState, obs: Observation) -> tuple[Decision, AutoscaleState]:
    if obs.rps is None or obs.capacity_rps <= 0:
        # Blind: hold what runs (within bounds). Scaling down on missing data could drop live traffic.
        low, high = bounds(policy)
        held = max(low, obs.replicas if high is None else min(obs.replicas, high))
        return Decision(held, "no telemetry: holding"), replace(state, lower_for=0)
    predicted = forecast(state.forecast_rps, obs.rps, policy)
    wanted = math.ceil(predicted / (obs.capacity_rps * policy.target_utilisation) - 1e-9)
    low, high = bounds(policy)
    wanted = max(low, wanted if high is None else min(wanted, high))
    if wanted >= obs.replicas:
        reason = "scale up" if wanted > obs.replicas else "steady"
        return (Decision(wanted, f"{reason}: forecast {predicted:.2f} rps"),
                AutoscaleState(forecast_rps=predicted, lower_for=0))
    lower_for = state.lower_for + 1
    if lower_for < policy.down_delay_intervals:
        return (Decision(obs.replicas, f"would scale down to {wanted} ({lower_for}/{policy.down_delay_intervals})"),
                AutoscaleState(forecast_rps=predicted, lower_for=lower_for))
    return (Decision(wanted, f"scale down: forecast {predicted:.2f} rps"),
            AutoscaleState(forecast_rps=predicted, lower_for=0))


def resize(counts: list[int], load_rps: list[float], target: int) -> list[int]:
    """Where a new replica count goes, keeping the placement's shape: each replica added joins the item whose
    replicas carry the most load each (that is where the routing sends traffic; a replica added where no
    traffic is routed would serve nothing), and each one removed leaves the item whose replicas carry the
    least, taking from items with more than one replica first so failure domains are kept while possible.
    `load_rps[k]` is the observed request rate of item k's replicas together; ties go to the larger item,
    then the earlier one. Returns the new counts (the input is not changed)."""
    if len(counts) != len(load_rps):
        raise ValueError("counts and load_rps must have one entry per item")
    new = list(counts)
    if not new:
        return new

    def per_replica(k: int) -> float:
        return load_rps[k] / new[k] if new[k] else math.inf

    target = max(target, 0)
    while sum(new) < target:
        k = max(range(len(new)), key=lambda k: (per_replica(k), new[k], -k))
        new[k] += 1
    while sum(new) > target:
        spare = [k for k in range(len(new)) if new[k] > 1] or [k for k in range(len(new)) if new[k] > 0]
        k = min(spare, key=lambda k: (per_replica(k), new[k], k))
        new[k] -= 1
    return new
