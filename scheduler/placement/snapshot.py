"""The optimizer's input: one immutable picture of the fleet and of what must be served.

Plain frozen dataclasses, validated when built (cross-field rules included), so every later stage can
trust names and numbers without re-checking them. No behaviour beyond lookups and validation.
"""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass, field
from functools import cached_property
from typing import Literal

from scheduler.model_spec import ModelArch, RequestShape, Slo, Variant, mean_shape

Market = Literal["on-demand", "spot"]
FailureDomainKind = Literal["region", "zone"]


@dataclass(frozen=True, slots=True)
class Region:
    """A place: where pools live and where clients send requests from."""

    name: str
    cloud: str
    lat: float
    lon: float

    def __post_init__(self) -> None:
        if not self.name:
            raise ValueError("Region.name must not be empty")
        if not -90.0 <= self.lat <= 90.0 or not -180.0 <= self.lon <= 180.0:
            raise ValueError(f"Region {self.name}: lat/lon out of range")


@dataclass(frozen=True, slots=True)
class Pool:
    """GPUs of one kind in one place, bought by the instance."""

    id: str
    cloud: str
    region: str
    instance_type: str
    accelerator: str
    gpus: int  # per instance
    market: Market
    price_per_hour: float  # per instance, USD
    max_instances: int  # quota
    zone: str | None = None
    # Spot only: the fraction of time spot capacity here is expected to serve (scheduler.spot_hints). It
    # caps the share of a deployment's traffic this pool may serve at max_spot_share x spot_availability;
    # 0 makes the pool unusable. None: no per-pool cap (on-demand pools ignore it).
    spot_availability: float | None = None

    def __post_init__(self) -> None:
        if not self.id:
            raise ValueError("Pool.id must not be empty")
        if self.spot_availability is not None and not 0.0 <= self.spot_availability <= 1.0:
            raise ValueError(f"Pool {self.id}: spot_availability must be within [0, 1]")
        if self.gpus <= 0:
            raise ValueError(f"Pool {self.id}: gpus must be positive")
        if self.price_per_hour < 0:
            raise ValueError(f"Pool {self.id}: price_per_hour must be >= 0")
        if self.max_instances < 0:
            raise ValueError(f"Pool {self.id}: max_instances must be >= 0")
        if self.market not in ("on-demand", "spot"):
            raise ValueError(f"Pool {self.id}: market must be 'on-demand' or 'spot'")

    @property
    def is_spot(self) -> bool:
        return self.market == "spot"

    @property
    def gpu_price_per_hour(self) -> float:
        return self.price_per_hour / self.gpus

    def failure_domain(self, kind: FailureDomainKind) -> str:
        # A pool without a zone is its own region-wide domain even when spreading by zone.
        if kind == "zone" and self.zone:
            return f"{self.region}/{self.zone}"
        return self.region


@dataclass(frozen=True, slots=True)
class DemandSlice:
    """Requests per second from one client region in one request-size bucket."""

    client_region: str
    shape: RequestShape
    rps: float

    def __post_init__(self) -> None:
        if self.rps < 0:
            raise ValueError("DemandSlice.rps must be >= 0")


@dataclass(frozen=True, slots=True)
class Constraints:
    """A deployment's placement rules. None means "no restriction"."""

    min_replicas: int = 1
    spread: bool = False  # replicas in at least two failure domains
    max_spot_share: float = 1.0  # of the deployment's traffic that spot pools may serve
    # Of the deployment's traffic, the most one spot pool may serve: a pool is one instance type in one
    # zone, which a cloud reclaims together, so this bounds what one reclaim can take at once. None: no
    # per-pool limit.
    max_spot_pool_share: float | None = None
    max_quality_drop: float | None = None  # every variant used must have quality_delta <= this
    allowed_regions: frozenset[str] | None = None
    allowed_clouds: frozenset[str] | None = None

    def __post_init__(self) -> None:
        if self.min_replicas < 0:
            raise ValueError("Constraints.min_replicas must be >= 0")
        if not 0.0 <= self.max_spot_share <= 1.0:
            raise ValueError("Constraints.max_spot_share must be within [0, 1]")
        if self.max_spot_pool_share is not None and not 0.0 <= self.max_spot_pool_share <= 1.0:
            raise ValueError("Constraints.max_spot_pool_share must be within [0, 1]")
        if self.max_quality_drop is not None and self.max_quality_drop < 0:
            raise ValueError("Constraints.max_quality_drop must be >= 0")

    @property
    def spread_min_outside(self) -> int:
        """Replicas that must live outside every single failure domain when spreading.

        At least one (so two domains are used), and half of min_replicas, so that losing any one domain
        leaves at least half of the guaranteed replicas standing.
        """
        return max(1, self.min_replicas // 2) if self.spread else 0


@dataclass(frozen=True, slots=True)
class Deployment:
    """A served endpoint: one model, the variants it may use, its SLO, demand and rules."""

    name: str
    arch: ModelArch
    variants: tuple[Variant, ...]
    slo: Slo
    demand: tuple[DemandSlice, ...]
    constraints: Constraints = field(default_factory=Constraints)
    headroom: float | None = None  # overrides Snapshot.headroom

    def __post_init__(self) -> None:
        if not self.name:
            raise ValueError("Deployment.name must not be empty")
        if not self.variants:
            raise ValueError(f"Deployment {self.name}: at least one variant is required")
        names = [v.name for v in self.variants]
        if len(set(names)) != len(names):
            raise ValueError(f"Deployment {self.name}: duplicate variant names")
        keys = [(s.client_region, s.shape) for s in self.demand]
        if len(set(keys)) != len(keys):
            raise ValueError(f"Deployment {self.name}: duplicate (client_region, shape) demand slices")
        if self.headroom is not None and not 0.0 < self.headroom <= 1.0:
            raise ValueError(f"Deployment {self.name}: headroom must be within (0, 1]")

    def variant(self, name: str) -> Variant:
        for v in self.variants:
            if v.name == name:
                return v
        raise KeyError(f"deployment {self.name} has no variant {name}")

    @property
    def full_quality_variant(self) -> Variant:
        """The variant the peers would serve: least quality loss, then the widest weights."""
        return min(self.variants, key=lambda v: (v.quality_delta, -v.bytes_per_param, v.name))

    @property
    def total_rps(self) -> float:
        return sum(s.rps for s in self.demand)

    @property
    def mean_shape(self) -> RequestShape:
        """The demand-weighted mean request (tokens rounded; plain mean when no demand is declared)."""
        if not self.demand:
            return RequestShape(1, 1)
        total = self.total_rps
        weights = [s.rps / total if total > 0 else 1.0 / len(self.demand) for s in self.demand]
        return mean_shape(weights, [s.shape for s in self.demand])

    @property
    def shapes(self) -> tuple[RequestShape, ...]:
        seen: dict[RequestShape, None] = {}
        for s in self.demand:
            seen.setdefault(s.shape, None)
        return tuple(seen)

    @property
    def client_regions(self) -> tuple[str, ...]:
        seen: dict[str, None] = {}
        for s in self.demand:
            seen.setdefault(s.client_region, None)
        return tuple(seen)


@dataclass(frozen=True, slots=True)
class PlacedReplicas:
    """Healthy replicas running now (re-plan mode). Unhealthy ones are not listed: moving them is free."""

    deployment: str
    variant: str
    pool: str
    tp: int
    count: int

    def __post_init__(self) -> None:
        if self.count < 0 or self.tp <= 0:
            raise ValueError("PlacedReplicas.count must be >= 0 and tp > 0")


@dataclass(frozen=True)
class Snapshot:
    """Everything the optimizer looks at, taken at one moment."""

    regions: tuple[Region, ...]
    pools: tuple[Pool, ...]
    deployments: tuple[Deployment, ...]
    rtt_overrides_ms: Mapping[tuple[str, str], float] = field(default_factory=dict)  # (client, pool region)
    current: tuple[PlacedReplicas, ...] = ()
    headroom: float = 0.8  # planned load / capacity, per replica
    failure_domain: FailureDomainKind = "region"

    def __post_init__(self) -> None:
        _unique("region", [r.name for r in self.regions])
        _unique("pool", [p.id for p in self.pools])
        _unique("deployment", [d.name for d in self.deployments])
        if not 0.0 < self.headroom <= 1.0:
            raise ValueError("Snapshot.headroom must be within (0, 1]")
        if self.failure_domain not in ("region", "zone"):
            raise ValueError("Snapshot.failure_domain must be 'region' or 'zone'")
        regions = {r.name for r in self.regions}
        for p in self.pools:
            if p.region not in regions:
                raise ValueError(f"pool {p.id}: unknown region {p.region!r}")
        for d in self.deployments:
            for s in d.demand:
                if s.client_region not in regions:
                    raise ValueError(f"deployment {d.name}: unknown client region {s.client_region!r}")
            c = d.constraints
            for r in c.allowed_regions or ():
                if r not in regions:
                    raise ValueError(f"deployment {d.name}: allowed region {r!r} is not a known region")
        for (a, b), ms in self.rtt_overrides_ms.items():
            if a not in regions or b not in regions:
                raise ValueError(f"rtt_ms: unknown region in ({a!r}, {b!r})")
            if ms < 0:
                raise ValueError(f"rtt_ms: negative RTT for ({a!r}, {b!r})")
        deployments = {d.name: d for d in self.deployments}
        pools = {p.id for p in self.pools}
        for c in self.current:
            if c.deployment not in deployments:
                raise ValueError(f"current placement: unknown deployment {c.deployment!r}")
            if c.pool not in pools:
                raise ValueError(f"current placement: unknown pool {c.pool!r}")
            deployments[c.deployment].variant(c.variant)  # raises on an unknown variant

    @cached_property
    def pool_by_id(self) -> dict[str, Pool]:
        return {p.id: p for p in self.pools}

    @cached_property
    def region_by_name(self) -> dict[str, Region]:
        return {r.name: r for r in self.regions}

    @cached_property
    def deployment_by_name(self) -> dict[str, Deployment]:
        return {d.name: d for d in self.deployments}

    def headroom_of(self, deployment: Deployment) -> float:
        return deployment.headroom if deployment.headroom is not None else self.headroom


def _unique(kind: str, names: list[str]) -> None:
    seen: set[str] = set()
    for n in names:
        if n in seen:
            raise ValueError(f"duplicate {kind} {n!r}")
        seen.add(n)
