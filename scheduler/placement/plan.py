"""The optimizer's output: replicas, routing shares, cost, bound, status, and why."""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import asdict, dataclass, field
from typing import Any, Literal

# optimal: proven optimal (within the solver's relative gap tolerance, see SolveOptions.gap_rel)
# feasible: an integer solution, not proven optimal (time limit); `gap` says how far from the bound
# infeasible: no plan satisfies the constraints; `binding` names the ones in conflict
# no_solution: the time limit passed before any integer solution was found (feasibility unknown)
PlanStatus = Literal["optimal", "feasible", "infeasible", "no_solution"]


@dataclass(frozen=True, slots=True)
class ReplicaDecision:
    deployment: str
    variant: str
    pool: str
    tp: int
    count: int
    load: float  # planned utilisation of these replicas (routed load / capacity), 0..headroom
    reason: str


@dataclass(frozen=True, slots=True)
class RoutingShare:
    deployment: str
    client_region: str
    pool: str
    share: float  # of the deployment's demand from this client region
    rps: float


@dataclass(frozen=True, slots=True)
class PoolUsage:
    pool: str
    instances: int
    gpus_used: int
    cost_per_hour: float


@dataclass(frozen=True)
class Plan:
    status: PlanStatus
    cost_per_hour: float | None  # instances x price, what the fleet pays
    objective_per_hour: float | None  # cost plus the churn penalty (re-plan mode); equal otherwise
    lower_bound_per_hour: float | None  # LP-relaxation bound on the objective (valid for all options)
    mip_bound_per_hour: float | None  # the branch-and-bound's best bound, when the solver reports one
    gap: float | None  # (objective - best valid bound) / objective
    solve_seconds: float
    replicas: tuple[ReplicaDecision, ...] = ()
    routing: tuple[RoutingShare, ...] = ()
    pools: tuple[PoolUsage, ...] = ()
    reasons: tuple[str, ...] = ()
    binding: tuple[str, ...] = ()  # infeasible plans: the constraints that cannot all hold
    stats: Mapping[str, float | int | str] = field(default_factory=dict)

    @property
    def ok(self) -> bool:
        return self.status in ("optimal", "feasible")

    def replicas_of(self, deployment: str) -> int:
        return sum(r.count for r in self.replicas if r.deployment == deployment)

    def to_dict(self) -> dict[str, Any]:
        out = asdict(self)
        out["stats"] = dict(self.stats)
        return out
