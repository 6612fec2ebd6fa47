"""Registry facts → per-zone spot hints (`scheduler.spot_hints.ZoneHint`) for planning.

Runs inside the planning activity (it reads the database); the arithmetic stays in `scheduler.spot_hints`.
Per (cloud, region, zone) of spot pools, over the hint lookback: preemptions recorded, the spot replica-hours
served there (ready until it ended or now), and whether the newest launch found no capacity (a replica that
failed with "no capacity" after the last one that became ready). A zone yields a hint only if something went
wrong there (a preemption or no capacity): quiet zones keep planning as before.
"""

from __future__ import annotations

from collections import defaultdict
from dataclasses import dataclass
from datetime import datetime, timedelta

from sqlalchemy import or_, select
from sqlalchemy.orm import Session

from registry.clusters import Market
from registry.clusters import Pool as PoolRow
from registry.replicas import Replica
from scheduler.spot_hints import ZoneHint

NO_CAPACITY_PREFIX = "no capacity"  # how backends report a launch that found no capacity


@dataclass
class _Zone:
    preemptions: int = 0
    hours: float = 0.0
    no_capacity_at: datetime | None = None
    ready_at: datetime | None = None
    newest: datetime | None = None

    def saw(self, at: datetime) -> None:
        self.newest = at if self.newest is None else max(self.newest, at)


def _latest(*values: datetime | None) -> datetime | None:
    present = [v for v in values if v is not None]
    return max(present) if present else None


def zone_hints(session: Session, now: datetime, lookback_s: float) -> list[ZoneHint]:
    since = now - timedelta(seconds=lookback_s)
    rows = session.scalars(
        select(Replica).join(PoolRow, Replica.pool_id == PoolRow.id)
        .where(PoolRow.market == Market.SPOT,
               or_(Replica.ready_at >= since, Replica.preempted_at >= since, Replica.failed_at >= since,
                   Replica.terminated_at >= since,
                   (Replica.terminated_at.is_(None) & Replica.failed_at.is_(None) & Replica.preempted_at.is_(None)))))
    zones: dict[tuple[str, str, str | None], _Zone] = defaultdict(_Zone)
    for r in rows:
        zone = zones[(r.cluster.cloud, r.cluster.region, r.pool.zone)]
        start = r.ready_at
        end = _latest(r.preempted_at, r.terminated_at, r.failed_at) or now
        if start is not None and end > since:
            zone.hours += max(0.0, (min(end, now) - max(start, since)).total_seconds()) / 3600.0
            zone.ready_at = _latest(zone.ready_at, start)
        if r.preempted_at is not None and r.preempted_at >= since:
            zone.preemptions += 1
            zone.saw(r.preempted_at)
        if r.failed_at is not None and r.failed_at >= since \
                and (r.failure_reason or "").lower().startswith(NO_CAPACITY_PREFIX):
            zone.no_capacity_at = _latest(zone.no_capacity_at, r.failed_at)
            zone.saw(r.failed_at)
    hints: list[ZoneHint] = []
    for (cloud, region, name), z in sorted(zones.items(), key=lambda kv: (kv[0][0], kv[0][1], kv[0][2] or "")):
        no_capacity = z.no_capacity_at is not None and (z.ready_at is None or z.no_capacity_at > z.ready_at)
        if z.preemptions == 0 and not no_capacity:
            continue
        hints.append(ZoneHint(cloud, region, name, preemptions=z.preemptions, replica_hours=z.hours,
                              capacity_available=False if no_capacity else None,
                              observed_at=z.newest.timestamp() if z.newest is not None else None))
    return hints
