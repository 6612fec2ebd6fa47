"""Choosing a replica: the published share decides the cluster for the client's region, then power of two
choices picks the replica with the fewest outstanding requests per unit of capacity.

Healthy, unsaturated capacity named by the shares comes first; when all of it is down, open-circuited or
saturated the request spills, preferring the client's own region, then anywhere. State (outstanding
counts, breakers) is per gateway process and keyed by endpoint, so it survives routing-table refreshes.
"""

from __future__ import annotations

import hashlib
import random
from collections.abc import Callable
from dataclasses import dataclass, field

from agents.gateway.breaker import Breaker
from agents.gateway.snapshot import Route, Upstream


@dataclass(slots=True)
class ReplicaLoad:
    breaker: Breaker
    outstanding: int = 0


@dataclass(frozen=True, slots=True)
class Pick:
    upstream: Upstream
    spilled: bool  # outside the clusters the shares name for this client region


@dataclass(slots=True)
class Balancer:
    clock: Callable[[], float]
    rng: random.Random = field(default_factory=random.Random)
    # Outstanding requests per unit of capacity weight beyond which a replica counts as saturated.
    saturation: float = 256.0
    breaker_threshold: int = 3
    breaker_cooldown_s: float = 5.0
    # An affine replica keeps its sessions/prefixes while its load per unit of capacity is within this
    # factor of the candidates' mean (the bounded-load rule of consistent hashing).
    affinity_slack: float = 1.5
    loads: dict[str, ReplicaLoad] = field(default_factory=dict)

    def load(self, endpoint: str) -> ReplicaLoad:
        state = self.loads.get(endpoint)
        if state is None:
            state = ReplicaLoad(Breaker(self.clock, self.breaker_threshold, self.breaker_cooldown_s))
            self.loads[endpoint] = state
        return state

    def _cost(self, upstream: Upstream) -> float:
        return (self.load(upstream.endpoint).outstanding + 1) / upstream.capacity_weight

    def _saturated(self, upstream: Upstream) -> bool:
        return self.load(upstream.endpoint).outstanding >= self.saturation * upstream.capacity_weight

    def _two_choices(self, candidates: list[Upstream], affinity: str | None) -> Upstream:
        if affinity is not None and len(candidates) > 1:
            return self._affine(candidates, affinity)
        if len(candidates) == 1:
            return candidates[0]
        a, b = self.rng.sample(candidates, 2)
        return a if self._cost(a) <= self._cost(b) else b

    def _affine(self, candidates: list[Upstream], affinity: str) -> Upstream:
        """Rendezvous hashing with bounded load: the same session or prefix keeps hitting the same replica
        (warm prefix cache) while it stays a candidate (only its keys move when the set changes) and while
        its load is within `affinity_slack` of the candidates' mean; past that, the next replica in the key's
        order takes it, so one hot prefix (a shared system prompt) cannot pile onto one replica."""
        ranked = sorted(candidates, key=lambda u: hashlib.blake2b(f"{affinity}\x00{u.endpoint}".encode(),
                                                                   digest_size=8).digest(), reverse=True)
        bound = self.affinity_slack * sum(self._cost(u) for u in candidates) / len(candidates)
        return next((u for u in ranked if self._cost(u) <= bound), min(ranked, key=self._cost))

    def pick(
        self, route: Route, version: str | None, client_region: str, exclude: set[str] | frozenset[str] = frozenset(),
        affinity: str | None = None, max_load: float | None = None,
    ) -> Pick | None:
        """A replica for one attempt, or None when nothing is left to try. `version=None`: any version.
        `max_load` (batch traffic): only replicas with fewer outstanding requests per unit of capacity."""
        usable = [u for u in route.replicas if u.endpoint not in exclude and self.load(u.endpoint).breaker.allows()]
        if version is not None:
            usable = [u for u in usable if u.version == version]
        if max_load is not None:
            usable = [u for u in usable if self.load(u.endpoint).outstanding < max_load * u.capacity_weight]
        if not usable:
            return None
        shares = route.shares.get(client_region)
        if not shares:
            # Nothing published for this region: the own region's replicas are the primary set.
            local = {u.cluster for u in usable if u.region == client_region}
            shares = {c: 1.0 for c in local} if local else {u.cluster: 1.0 for u in usable}
        fresh = [u for u in usable if not self._saturated(u)]
        primary = [u for u in fresh if shares.get(u.cluster, 0.0) > 0]
        if primary:
            chosen = self._by_share(primary, shares, affinity)
            return self._claim(chosen, spilled=False)
        spill = [u for u in fresh if u.region == client_region] or fresh or usable
        chosen = self._two_choices(spill, affinity)
        return self._claim(chosen, spilled=shares.get(chosen.cluster, 0.0) <= 0)

    def _by_share(self, primary: list[Upstream], shares: dict[str, float], affinity: str | None) -> Upstream:
        clusters = sorted({u.cluster for u in primary})
        if len(clusters) > 1:
            cluster = self.rng.choices(clusters, weights=[shares[c] for c in clusters])[0]
            primary = [u for u in primary if u.cluster == cluster]
        return self._two_choices(primary, affinity)

    def _claim(self, upstream: Upstream, *, spilled: bool) -> Pick:
        state = self.load(upstream.endpoint)
        state.breaker.on_pick()
        state.outstanding += 1
        return Pick(upstream, spilled)

    def release(self, upstream: Upstream, *, ok: bool | None) -> None:
        """End of an attempt: ok=True success, False a replica failure, None neither (e.g. client went away)."""
        state = self.load(upstream.endpoint)
        state.outstanding = max(0, state.outstanding - 1)
        if ok is True:
            state.breaker.record_success()
        elif ok is False:
            state.breaker.record_failure()
        elif state.breaker.trial_in_flight:
            state.breaker.trial_in_flight = False

    def forget_missing(self, endpoints: set[str]) -> None:
        """Drop state of replicas no longer in the table, unless requests to them are still in flight."""
        for endpoint in [e for e, s in self.loads.items() if e not in endpoints and s.outstanding == 0]:
            del self.loads[endpoint]
