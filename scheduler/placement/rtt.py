"""Round-trip times between client regions and pool regions.

Measured values (scenario `rtt_ms`) win; otherwise the RTT is derived from great-circle distance:
light in fibre covers about 200 km per ms, real routes run about 1.5x the great circle, and a fixed
base covers the last mile and the load balancer. These constants are deliberately round; they give
~86 ms New York - London and ~58 ms Virginia - Oregon, in line with public cloud inter-region tables.
"""

from __future__ import annotations

import math
from collections.abc import Iterable, Mapping
from dataclasses import dataclass

from scheduler.placement.snapshot import Region

EARTH_RADIUS_KM = 6371.0
FIBRE_KM_PER_MS = 200.0
ROUTE_INFLATION = 1.5
BASE_RTT_MS = 2.0


def great_circle_km(lat1: float, lon1: float, lat2: float, lon2: float) -> float:
    """Haversine distance; accurate to well under 1% for this purpose."""
    p1, p2 = math.radians(lat1), math.radians(lat2)
    dp, dl = p2 - p1, math.radians(lon2 - lon1)
    a = math.sin(dp / 2) ** 2 + math.cos(p1) * math.cos(p2) * math.sin(dl / 2) ** 2
    return 2 * EARTH_RADIUS_KM * math.asin(min(1.0, math.sqrt(a)))


def default_rtt_ms(distance_km: float) -> float:
    return BASE_RTT_MS + 2.0 * distance_km * ROUTE_INFLATION / FIBRE_KM_PER_MS


@dataclass(frozen=True)
class RttMatrix:
    """RTT in ms for every (client region, pool region) pair, computed once."""

    ms: Mapping[tuple[str, str], float]

    @classmethod
    def build(cls, regions: Iterable[Region], overrides: Mapping[tuple[str, str], float]) -> RttMatrix:
        regs = list(regions)
        table: dict[tuple[str, str], float] = {}
        for a in regs:
            for b in regs:
                table[(a.name, b.name)] = default_rtt_ms(great_circle_km(a.lat, a.lon, b.lat, b.lon))
        table.update(overrides)
        return cls(table)

    def get(self, client_region: str, pool_region: str) -> float:
        return self.ms[(client_region, pool_region)]
