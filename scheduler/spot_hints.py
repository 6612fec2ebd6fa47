"""Per-zone spot availability hints -> how much the placement may lean on each spot pool.

Pure: facts in (preemptions seen, spot replica-hours served, whether the last launch found capacity, when),
numbers out. No database, no clock (the caller passes ``now``).

Model. A spot replica in a zone with preemption rate ``r`` (per hour) is down for ``R`` hours after each
preemption (detect, relaunch elsewhere, load weights), so it serves a fraction ``f = 1 / (1 + r * R)`` of
the time: the pool's availability factor. The rate is estimated with a Gamma prior (``prior_preemptions``
over ``prior_hours``), so a zone seen for an hour without a preemption is not declared perfect and one
early preemption does not condemn it. A zone whose last launch found no spot capacity gets ``f = 0``
until that fact ages out; a factor under ``min_factor`` makes the pool unusable.

Use in placement (see ``SpotAvailability``):

- ``share_weight = 1 / f``: traffic on a less reliable spot pool counts more against the deployment's
  ``max_spot_share`` (Σ weight · share ≤ max_spot_share stays linear; with f = 1 it is today's rule);
- ``usable_spot_share``: the largest plain spot share a deployment can then reach (all on its best pool),
  for callers that only adjust ``max_spot_share`` and drop unusable pools;
- ``with_spot_availability``: what the placement uses: each hinted spot pool's ``Pool.spot_availability``
  becomes its factor (0 when unusable), which caps that pool's share of a deployment at
  ``max_spot_share x factor`` (``scheduler.placement.eligibility.pool_spot_cap``).

A pool without a zone (SkyPilot picks the zone when launching) takes the best usable zone of its region.
"""

from __future__ import annotations

import math
from collections.abc import Iterable, Mapping
from dataclasses import dataclass, replace
from typing import Protocol

from scheduler.placement.snapshot import Snapshot


class SpotPoolLike(Protocol):
    """What this module needs of a pool (scheduler.placement.snapshot.Pool has it)."""

    @property
    def id(self) -> str: ...
    @property
    def cloud(self) -> str: ...
    @property
    def region(self) -> str: ...
    @property
    def zone(self) -> str | None: ...
    @property
    def is_spot(self) -> bool: ...


@dataclass(frozen=True, slots=True)
class ZoneHint:
    """What was observed of spot capacity in one zone (``zone=None``: the whole region)."""

    cloud: str
    region: str  # named as pools name it (e.g. "aws:us-east-1" in scenarios)
    zone: str | None = None
    preemptions: int = 0  # spot preemptions observed ...
    replica_hours: float = 0.0  # ... over this much spot replica time
    capacity_available: bool | None = None  # last spot launch there: found capacity / "no capacity"
    observed_at: float | None = None  # epoch seconds of the newest fact; None: undated, never stale

    def __post_init__(self) -> None:
        if self.preemptions < 0 or self.replica_hours < 0 or not math.isfinite(self.replica_hours):
            raise ValueError("ZoneHint counts must be non-negative")

    @property
    def key(self) -> tuple[str, str, str | None]:
        return (self.cloud, self.region, self.zone)


@dataclass(frozen=True, slots=True)
class SpotHintPolicy:
    recovery_hours: float = 0.25  # preemption to a replacement serving again
    prior_preemptions: float = 0.5  # Gamma prior: 0.5 preemptions in 10 h = 0.05/h before any data
    prior_hours: float = 10.0
    min_factor: float = 0.5  # a spot pool serving less than half the time is not worth planning on
    max_age_s: float = 6 * 3600.0  # older hints say nothing about now

    def __post_init__(self) -> None:
        if self.recovery_hours < 0 or self.prior_preemptions < 0 or self.prior_hours <= 0:
            raise ValueError("SpotHintPolicy: recovery and prior must be non-negative (prior_hours > 0)")
        if not 0.0 <= self.min_factor <= 1.0 or self.max_age_s <= 0:
            raise ValueError("SpotHintPolicy: min_factor within [0, 1], max_age_s > 0")


@dataclass(frozen=True, slots=True)
class SpotAvailability:
    factor: float  # expected fraction of time a spot replica on this pool serves; 1.0 for on-demand
    usable: bool  # may the placement use this pool at all
    reason: str  # why, in words, for the plan's explanation

    @property
    def share_weight(self) -> float:
        """Weight of this pool's traffic share against ``max_spot_share`` (inf when unusable)."""
        if not self.usable:
            return math.inf
        return 1.0 / self.factor


ON_DEMAND = SpotAvailability(1.0, True, "on-demand")


def preemption_rate(preemptions: int, replica_hours: float, policy: SpotHintPolicy) -> float:
    """Posterior mean preemptions per replica-hour."""
    return (preemptions + policy.prior_preemptions) / (replica_hours + policy.prior_hours)


def availability_factor(rate_per_hour: float, recovery_hours: float) -> float:
    return 1.0 / (1.0 + rate_per_hour * recovery_hours)


def zone_availability(hint: ZoneHint | None, policy: SpotHintPolicy) -> SpotAvailability:
    """The availability of spot capacity in one zone, from its (fresh) hint or the prior alone."""
    if hint is not None and hint.capacity_available is False:
        return SpotAvailability(0.0, False, "no spot capacity at the last launch")
    preemptions = hint.preemptions if hint is not None else 0
    hours = hint.replica_hours if hint is not None else 0.0
    rate = preemption_rate(preemptions, hours, policy)
    factor = availability_factor(rate, policy.recovery_hours)
    basis = f"{preemptions} preemptions in {hours:.0f} spot replica-hours" if hint is not None else "no data"
    reason = f"{basis}: ~{rate:.3f}/h, serving {factor:.1%} of the time"
    if factor < policy.min_factor:
        return SpotAvailability(factor, False, f"{reason} (< {policy.min_factor:.0%})")
    return SpotAvailability(factor, True, reason)


def fresh_hints(
    hints: Iterable[ZoneHint], now: float, policy: SpotHintPolicy
) -> dict[tuple[str, str, str | None], ZoneHint]:
    """Hints by (cloud, region, zone), without stale ones; the newest wins on duplicates."""
    out: dict[tuple[str, str, str | None], ZoneHint] = {}
    for hint in hints:
        if hint.observed_at is not None and now - hint.observed_at > policy.max_age_s:
            continue
        current = out.get(hint.key)
        if current is None or (hint.observed_at or -math.inf) >= (current.observed_at or -math.inf):
            out[hint.key] = hint
    return out


def pool_availability(
    pool: SpotPoolLike, hints: Mapping[tuple[str, str, str | None], ZoneHint], policy: SpotHintPolicy
) -> SpotAvailability:
    """One pool's availability; ``hints`` as made by ``fresh_hints``."""
    if not pool.is_spot:
        return ON_DEMAND
    if pool.zone is not None:
        hint = hints.get((pool.cloud, pool.region, pool.zone)) or hints.get((pool.cloud, pool.region, None))
        return zone_availability(hint, policy)
    # SkyPilot chooses the zone: the best one it can get. Zones nobody reported on are not counted as
    # good: when every zone we heard of is out of capacity, the region most likely is.
    regional = [h for (c, r, _), h in hints.items() if c == pool.cloud and r == pool.region]
    candidates = [zone_availability(h, policy) for h in regional] or [zone_availability(None, policy)]
    best = max(candidates, key=lambda a: (a.usable, a.factor))
    return SpotAvailability(best.factor, best.usable, f"best zone of the region: {best.reason}")


def spot_availability(
    pools: Iterable[SpotPoolLike], hints: Iterable[ZoneHint], now: float, policy: SpotHintPolicy | None = None
) -> dict[str, SpotAvailability]:
    """Availability of every pool by pool id (on-demand pools: factor 1)."""
    policy = policy or SpotHintPolicy()
    fresh = fresh_hints(hints, now, policy)
    return {pool.id: pool_availability(pool, fresh, policy) for pool in pools}


def usable_spot_share(max_spot_share: float, spot_pools: Iterable[SpotAvailability]) -> float:
    """The largest traffic share spot can take under the weighted cap: all of it on the best usable pool."""
    if not 0.0 <= max_spot_share <= 1.0:
        raise ValueError("max_spot_share must be within [0, 1]")
    best = max((a.factor for a in spot_pools if a.usable), default=0.0)
    return min(1.0, max_spot_share * best)


def has_hint(pool: SpotPoolLike, hints: Mapping[tuple[str, str, str | None], ZoneHint]) -> bool:
    """Is anything known of this pool's spot capacity (its zone, its region, or for a zoneless pool any
    zone of its region)?"""
    if pool.zone is not None:
        return (pool.cloud, pool.region, pool.zone) in hints or (pool.cloud, pool.region, None) in hints
    return any(c == pool.cloud and r == pool.region for c, r, _ in hints)


def with_spot_availability(
    snapshot: Snapshot, hints: Iterable[ZoneHint], now: float, policy: SpotHintPolicy | None = None
) -> Snapshot:
    """The snapshot with each spot pool's ``spot_availability`` set from the fresh hints that concern it
    (an unusable pool gets 0, which the placement reads as "do not use"); the lower value wins over one
    already set. Pools nothing is known of keep theirs (by default no cap): the prior alone should not
    move a plan."""
    policy = policy or SpotHintPolicy()
    fresh = fresh_hints(hints, now, policy)
    pools = []
    for pool in snapshot.pools:
        if pool.is_spot and has_hint(pool, fresh):
            found = pool_availability(pool, fresh, policy)
            factor = found.factor if found.usable else 0.0
            if pool.spot_availability is not None:
                factor = min(factor, pool.spot_availability)
            pool = replace(pool, spot_availability=factor)
        pools.append(pool)
    return replace(snapshot, pools=tuple(pools))
