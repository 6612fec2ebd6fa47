"""What the control plane's planning knows of spot zones, kept from the simulated fleet.

The control plane reads it from the registry (workflows/spot_facts.py): per (cloud, region, zone), over
the hint lookback, the replicas preempted there and the spot replica-hours served; a zone yields a hint
only once something went wrong there. Planning then caps each hinted spot pool's share of a deployment
(scheduler.spot_hints.with_spot_availability). Here the same facts come from the fleet every control tick
(replicas ready, replicas preempted) and go through the same arithmetic. A pool that lost an instance
already takes no new one for a while (a pool that is down), so "no capacity at the last launch" is not
repeated here.
"""

from __future__ import annotations

from collections import defaultdict, deque
from collections.abc import Mapping
from dataclasses import dataclass

from scheduler.fleet_sim.fleet import GroupKey
from scheduler.placement.snapshot import Snapshot
from scheduler.spot_hints import SpotHintPolicy, ZoneHint, with_spot_availability

ZoneKey = tuple[str, str, str | None]


@dataclass(frozen=True)
class _Tick:
    at: float
    hours: Mapping[str, float]  # spot pool -> replica-hours served over the interval ending here
    preempted: Mapping[str, int]  # spot pool -> replicas preempted over it


@dataclass
class _Zone:
    preemptions: int = 0
    hours: float = 0.0
    newest: float | None = None  # the last tick with a preemption (still in the window while preemptions > 0)


class SpotFacts:
    def __init__(self, snapshot: Snapshot, policy: SpotHintPolicy | None = None) -> None:
        self.policy = policy or SpotHintPolicy()
        self._zone_of: dict[str, ZoneKey] = {p.id: (p.cloud, p.region, p.zone) for p in snapshot.pools if p.is_spot}
        self._ticks: deque[_Tick] = deque()
        self._zones: dict[ZoneKey, _Zone] = defaultdict(_Zone)  # running totals over the ticks in the window
        self._hints: list[ZoneHint] = []

    def record(
        self, now: float, ready: Mapping[GroupKey, int], interval_s: float, preempted: Mapping[str, int]
    ) -> None:
        """One control tick: the replicas ready now served the interval that ends here."""
        hours: dict[str, float] = defaultdict(float)
        for key, n in ready.items():
            if key[2] in self._zone_of:
                hours[key[2]] += n * interval_s / 3600.0
        lost = {p: n for p, n in preempted.items() if p in self._zone_of and n > 0}
        tick = _Tick(now, dict(hours), lost)
        self._ticks.append(tick)
        self._add(tick, 1)
        while self._ticks and now - self._ticks[0].at > self.policy.max_age_s:
            self._add(self._ticks.popleft(), -1)
        self._hints = self._zone_hints()

    def _add(self, tick: _Tick, sign: int) -> None:
        for pid, h in tick.hours.items():
            zone = self._zones[self._zone_of[pid]]
            zone.hours = max(0.0, zone.hours + sign * h)
        for pid, n in tick.preempted.items():
            zone = self._zones[self._zone_of[pid]]
            zone.preemptions += sign * n
            if sign > 0:
                zone.newest = tick.at

    def _zone_hints(self) -> list[ZoneHint]:
        return [
            ZoneHint(cloud, region, zone, preemptions=z.preemptions, replica_hours=z.hours, observed_at=z.newest)
            for (cloud, region, zone), z in sorted(
                self._zones.items(), key=lambda kv: (kv[0][0], kv[0][1], kv[0][2] or "")
            )
            if z.preemptions > 0
        ]

    def apply(self, snapshot: Snapshot, now: float) -> Snapshot:
        """The snapshot with the hinted spot pools' availability set, as the control plane plans."""
        if not self._hints:
            return snapshot
        return with_spot_availability(snapshot, self._hints, now, self.policy)
