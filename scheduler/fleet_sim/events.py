"""Disruptions: region outages at given times and spot preemptions at a rate per zone / region.

Preemptions are drawn from one random stream per pool (seeded by the run seed and the pool's position),
one uniform number per step whether or not the pool is used, so two policies that hold the same spot
instances at the same time lose them at the same time (common random numbers).
"""

from __future__ import annotations

import math

import numpy as np

from scheduler.fleet_sim.settings import SimulationIn
from scheduler.placement.snapshot import Pool, Snapshot


class Events:
    def __init__(self, snapshot: Snapshot, settings: SimulationIn, seed: int) -> None:
        self.settings = settings
        self.outages = [
            (o.region, o.start_h * 3600.0, (o.start_h + o.duration_h) * 3600.0) for o in settings.outages
        ]
        self.spot = [p for p in snapshot.pools if p.is_spot]
        self.rate = {p.id: self.preemption_rate(p) for p in self.spot}
        self.rngs = {p.id: np.random.default_rng([seed, 3, i]) for i, p in enumerate(snapshot.pools)}

    def preemption_rate(self, pool: Pool) -> float:
        pre = self.settings.preemption
        if pool.zone and pool.zone in pre.by_zone:
            return pre.by_zone[pool.zone]
        if pool.region in pre.by_region:
            return pre.by_region[pool.region]
        return pre.spot_per_hour

    def outages_starting(self, t: float, dt: float) -> list[tuple[str, float]]:
        """(region, end time) of the outages that begin within [t, t + dt)."""
        return [(r, end) for r, start, end in self.outages if t <= start < t + dt]

    def regions_down(self, t0: float, t1: float) -> set[str]:
        return {r for r, start, end in self.outages if start < t1 and end > t0}

    def preemptions(self, instances: dict[str, int], dt: float) -> dict[str, int]:
        """Instances lost per spot pool in a step of dt seconds, given the instances each pool holds."""
        out: dict[str, int] = {}
        for p in self.spot:
            u = self.rngs[p.id].random()
            n = instances.get(p.id, 0)
            lam = self.rate[p.id] * n * dt / 3600.0
            if n and lam > 0 and u < 1.0 - math.exp(-lam):
                out[p.id] = 1  # steps are short: at most one instance per pool per step
        return out
