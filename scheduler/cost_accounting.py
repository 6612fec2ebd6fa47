"""Cost accounting: what the fleet pays per hour, grouped any way, and what a deployment's tokens cost.

Pure: the caller passes the billed replicas (with their pool's price and the latest telemetry it trusts) and
each deployment's SLO and budget. A replica costs the GPUs it occupies at its pool's price per GPU
(`gpus x instance price / gpus per instance`), which attributes instance cost to the deployments inside.
"""

from __future__ import annotations

import enum
import math
from collections import defaultdict
from collections.abc import Iterable, Mapping
from dataclasses import dataclass, field

SECONDS_PER_HOUR = 3600.0
TOKENS_PER_MILLION = 1_000_000.0


class GroupBy(enum.StrEnum):
    DEPLOYMENT = "deployment"
    TEAM = "team"
    REGION = "region"
    ACCELERATOR = "accelerator"
    MARKET = "market"


@dataclass(frozen=True, slots=True)
class BilledReplica:
    """One replica that holds GPUs right now, with the numbers of its latest trusted telemetry window."""

    name: str
    deployment: str
    team: str
    region: str
    accelerator: str
    market: str
    gpus: int  # GPUs the replica occupies (its tensor-parallel size)
    gpus_per_instance: int
    instance_price_per_hour: float  # USD
    tokens_per_second: float = 0.0  # prompt + generated
    ttft_p95_ms: float | None = None
    tpot_p95_ms: float | None = None

    def __post_init__(self) -> None:
        if self.gpus < 1 or self.gpus_per_instance < 1:
            raise ValueError(f"replica {self.name}: gpus and gpus_per_instance must be >= 1")
        for what, value in (("instance_price_per_hour", self.instance_price_per_hour),
                            ("tokens_per_second", self.tokens_per_second)):
            if not math.isfinite(value) or value < 0:
                raise ValueError(f"replica {self.name}: {what} must be a finite number >= 0, not {value}")

    @property
    def usd_per_hour(self) -> float:
        return self.gpus * self.instance_price_per_hour / self.gpus_per_instance

    def key(self, by: GroupBy) -> str:
        value: str = getattr(self, by.value)
        return value


@dataclass(frozen=True, slots=True)
class DeploymentTerms:
    """What a deployment promised and may spend."""

    ttft_p95_ms: float
    tpot_p95_ms: float
    budget_usd_per_hour: float | None = None


@dataclass(frozen=True, slots=True)
class CostGroup:
    key: str
    usd_per_hour: float
    replicas: int
    gpus: int


@dataclass(frozen=True, slots=True)
class RegionCost:
    region: str
    usd_per_hour: float
    replicas: int


@dataclass(frozen=True, slots=True)
class DeploymentCost:
    deployment: str
    usd_per_hour: float
    budget_usd_per_hour: float | None
    tokens_per_second: float
    goodput_tokens_per_second: float
    usd_per_million_tokens: float | None  # None: no tokens flowed
    goodput_tokens_per_usd: float | None  # None: nothing was paid or no tokens flowed
    by_region: list[RegionCost] = field(default_factory=list)

    @property
    def over_budget(self) -> bool:
        return self.budget_usd_per_hour is not None and self.usd_per_hour > self.budget_usd_per_hour


@dataclass(frozen=True, slots=True)
class SeriesKey:
    """The label set of `llmfleet_cost_usd_per_hour` and its sibling series."""

    deployment: str
    team: str
    region: str
    accelerator: str
    market: str


def _sorted(groups: Iterable[CostGroup]) -> list[CostGroup]:
    return sorted(groups, key=lambda g: (-g.usd_per_hour, g.key))


def group_costs(replicas: Iterable[BilledReplica], by: GroupBy) -> list[CostGroup]:
    """$/h, replicas and GPUs per value of `by`, most expensive first."""
    cost: dict[str, float] = defaultdict(float)
    count: dict[str, int] = defaultdict(int)
    gpus: dict[str, int] = defaultdict(int)
    for replica in replicas:
        key = replica.key(by)
        cost[key] += replica.usd_per_hour
        count[key] += 1
        gpus[key] += replica.gpus
    return _sorted(CostGroup(k, cost[k], count[k], gpus[k]) for k in cost)


def total_usd_per_hour(replicas: Iterable[BilledReplica]) -> float:
    return math.fsum(r.usd_per_hour for r in replicas)


def within_slo(replica: BilledReplica, terms: DeploymentTerms) -> bool:
    """Whether the replica's window met the SLO. A p95 the window lacks (say TPOT when every answer was one
    token) is not held against it, but a window with tokens and no latency at all proves nothing: not good."""
    measured = [(replica.ttft_p95_ms, terms.ttft_p95_ms), (replica.tpot_p95_ms, terms.tpot_p95_ms)]
    present = [(value, limit) for value, limit in measured if value is not None]
    if not present:
        return replica.tokens_per_second == 0
    return all(value <= limit for value, limit in present)


def deployment_cost(name: str, replicas: Iterable[BilledReplica], terms: DeploymentTerms) -> DeploymentCost:
    """The cost of one deployment from its billed replicas (others in `replicas` are ignored)."""
    mine = [r for r in replicas if r.deployment == name]
    usd = total_usd_per_hour(mine)
    tokens = math.fsum(r.tokens_per_second for r in mine)
    good = math.fsum(r.tokens_per_second for r in mine if within_slo(r, terms))
    per_million = usd / (tokens * SECONDS_PER_HOUR) * TOKENS_PER_MILLION if tokens > 0 else None
    goodput_per_usd = good * SECONDS_PER_HOUR / usd if usd > 0 and tokens > 0 else None
    regions = group_costs(mine, GroupBy.REGION)
    return DeploymentCost(
        deployment=name, usd_per_hour=usd, budget_usd_per_hour=terms.budget_usd_per_hour, tokens_per_second=tokens,
        goodput_tokens_per_second=good, usd_per_million_tokens=per_million, goodput_tokens_per_usd=goodput_per_usd,
        by_region=[RegionCost(g.key, g.usd_per_hour, g.replicas) for g in regions],
    )


def deployment_costs(
    replicas: Iterable[BilledReplica], terms: Mapping[str, DeploymentTerms]
) -> dict[str, DeploymentCost]:
    """Every deployment in `terms`, replicas or not (a deployment with none costs 0)."""
    by_deployment: dict[str, list[BilledReplica]] = defaultdict(list)
    for replica in replicas:
        by_deployment[replica.deployment].append(replica)
    return {name: deployment_cost(name, by_deployment.get(name, []), t) for name, t in terms.items()}


@dataclass(frozen=True, slots=True)
class SeriesValue:
    usd_per_hour: float
    replicas: int
    gpus: int


def cost_series(replicas: Iterable[BilledReplica]) -> dict[SeriesKey, SeriesValue]:
    """The values of the cost series by their full label set: sums of these per any label give the same
    numbers as `group_costs` (the API and Prometheus agree by construction)."""
    totals: dict[SeriesKey, list[float]] = defaultdict(lambda: [0.0, 0, 0])
    for r in replicas:
        row = totals[SeriesKey(r.deployment, r.team, r.region, r.accelerator, r.market)]
        row[0] += r.usd_per_hour
        row[1] += 1
        row[2] += r.gpus
    return {k: SeriesValue(v[0], int(v[1]), int(v[2])) for k, v in totals.items()}
