"""The simulated gateway: splits each demand slice over the ready replica groups of its deployment.

Load-aware and SLO-aware, like the regional gateway: a slice may go to a group only when the group's
RTT from the client plus the TTFT the scheduler believes for it meets the SLO; among those, traffic is
water-filled to the group with the lowest believed utilisation, counting requests already queued there
(the most constrained slices first, ties to the nearest). When no ready group of the deployment can
meet the SLO for a slice, it spills to the nearest ready group (it will likely miss the SLO); when none
is ready at all, its requests are dropped.
The same gateway serves every policy, so differences come from the placements alone.
"""

from __future__ import annotations

from collections import defaultdict
from collections.abc import Mapping

from scheduler.fleet_sim.fleet import GroupKey
from scheduler.fleet_sim.traffic import SimSlice
from scheduler.placement.candidates import Candidate
from scheduler.placement.rtt import RttMatrix
from scheduler.placement.snapshot import Snapshot

CHUNKS = 16  # water-filling granularity per slice


class Gateway:
    def __init__(
        self, snapshot: Snapshot, candidates: Mapping[GroupKey, Candidate], slices: tuple[SimSlice, ...]
    ) -> None:
        self.snapshot = snapshot
        self.candidates = candidates
        self.slices = slices
        self.rtt = RttMatrix.build(snapshot.regions, snapshot.rtt_overrides_ms)
        self._cap: dict[tuple[GroupKey, int], float | None] = {}

    def rtt_ms(self, key: GroupKey, si: int) -> float:
        return self.rtt.get(self.slices[si].client_region, self.snapshot.pool_by_id[key[2]].region)

    def believed_rps(self, key: GroupKey, si: int) -> float | None:
        """What the scheduler believes one replica of the group carries of this slice within the SLO."""
        ck = (key, si)
        if ck not in self._cap:
            s = self.slices[si]
            d = self.snapshot.deployment_by_name[s.deployment]
            c = self.candidates.get(key)
            p = None if c is None else c.best_point(s.shape, d.slo.ttft_p95_ms - self.rtt_ms(key, si))
            self._cap[ck] = None if p is None else p.rps
        return self._cap[ck]

    def any_rps(self, key: GroupKey, si: int) -> float:
        """Capacity ignoring RTT (for spilled traffic): the group's best point for the slice's shape."""
        c = self.candidates.get(key)
        pts = () if c is None else c.perf.get(self.slices[si].shape, ())
        return max((p.rps for p in pts), default=1.0)

    def shares(
        self,
        ready: Mapping[GroupKey, int],
        rates: list[float],
        queued: Mapping[GroupKey, float] | None = None,
        drain_s: float = 60.0,
    ) -> dict[int, list[tuple[GroupKey, float]]]:
        """Per slice: (group, fraction of the slice's requests); slices with no ready group are absent.

        `queued` (requests waiting at each group) counts as load to drain within `drain_s`, so a group with
        a queue gets less new traffic, as a gateway balancing on outstanding requests would do."""
        by_dep: dict[str, list[GroupKey]] = defaultdict(list)
        for key, n in sorted(ready.items()):
            if n > 0:
                by_dep[key[0]].append(key)
        out: dict[int, list[tuple[GroupKey, float]]] = {}
        order: dict[str, list[tuple[int, list[tuple[GroupKey, float]], bool]]] = defaultdict(list)
        for si, s in enumerate(self.slices):
            groups = by_dep.get(s.deployment, [])
            if not groups:
                continue
            ok = [(k, cap) for k in groups if (cap := self.believed_rps(k, si)) is not None]
            spill = not ok
            if spill:
                near = min(groups, key=lambda k: self.rtt_ms(k, si))
                ok = [(near, self.any_rps(near, si))]
            order[s.deployment].append((si, ok, spill))
        for dep, items in order.items():
            util: dict[GroupKey, float] = defaultdict(float)
            for key in by_dep[dep]:
                backlog = (queued or {}).get(key, 0.0)
                if backlog > 0:
                    caps = [c for si, _, _ in items if (c := self.believed_rps(key, si))]
                    per_replica = sum(caps) / len(caps) if caps else 1.0
                    util[key] = backlog / drain_s / (per_replica * ready[key])
            items.sort(key=lambda it: (len(it[1]), it[0]))
            for si, ok, _ in items:
                rate = rates[si]
                if rate <= 0:
                    # No recent traffic: split what comes in proportion to the groups' capacity.
                    weights = [(k, cap * ready[k]) for k, cap in ok]
                    total = sum(w for _, w in weights)
                    out[si] = [(k, w / total) for k, w in weights]
                    continue
                chunk = rate / CHUNKS
                got: dict[GroupKey, float] = defaultdict(float)
                for _ in range(CHUNKS):
                    key, cap = min(
                        ok,
                        key=lambda kc: (util[kc[0]] + chunk / (kc[1] * ready[kc[0]]), self.rtt_ms(kc[0], si)),
                    )
                    util[key] += chunk / (cap * ready[key])
                    got[key] += 1.0 / CHUNKS
                out[si] = sorted(got.items())
        return out
