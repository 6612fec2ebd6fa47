"""The placement problem in index form: demand slices, candidate options and the routes between them.

Compiling once gives the MILP, its LP relaxation, the pricing step and the diagnosis the same view, and
re-applies the hard per-option rules (allowed places, quality, SLO) so a hand-made table cannot break
them. A route (slice, option) exists only when RTT(client region, pool region) + p95 TTFT meets the SLO.

Routes are computed per *template* — (deployment, performance entry, pool region) — because every pool
with the same accelerator in the same region has the same routes; with a thousand pools this keeps
compiling linear in the number of options rather than options x slices.
"""

from __future__ import annotations

import math
from collections import defaultdict
from collections.abc import Iterable
from dataclasses import dataclass, field

from scheduler.model_spec import RequestShape
from scheduler.placement.candidates import Candidate
from scheduler.placement.eligibility import meets_ttft, pool_allowed, tp_options, variant_allowed
from scheduler.placement.rtt import RttMatrix
from scheduler.placement.snapshot import Deployment, Pool, Snapshot


@dataclass(frozen=True, slots=True)
class Slice:
    """Demand of one deployment from one client region in one request bucket."""

    deployment: str
    client_region: str
    shape: RequestShape
    rps: float


@dataclass(frozen=True, slots=True)
class Route:
    slice: int
    capacity_rps: float  # one replica of the option, on this slice's bucket, at the SLO
    rtt_ms: float
    ttft_ms: float


@dataclass
class Problem:
    snapshot: Snapshot
    rtt: RttMatrix
    candidates: list[Candidate]
    routes_of: list[tuple[Route, ...]]  # per candidate (shared between candidates of one template)
    slices: list[Slice]
    slices_by_deployment: dict[str, list[int]]
    cands_by_deployment: dict[str, list[int]]
    deployment_of: list[Deployment]
    pool_of: list[Pool]
    # Per option, computed once: these are read millions of times on large fleets.
    price_of: list[float] = field(default_factory=list)  # hourly price of the GPUs one replica occupies
    headroom_of: list[float] = field(default_factory=list)
    domain_of: list[str] = field(default_factory=list)
    replicas_needed: dict[str, float] = field(default_factory=dict)  # per deployment, see milp.py

    def domain(self, cand: int) -> str:
        return self.domain_of[cand]

    def replica_price(self, cand: int) -> float:
        """Hourly price of the GPUs one replica occupies (instances are shared through packing)."""
        return self.price_of[cand]

    def headroom(self, cand: int) -> float:
        return self.headroom_of[cand]


def usable(snapshot: Snapshot, c: Candidate) -> bool:
    """The per-option hard rules, re-checked whatever produced the candidate."""
    d = snapshot.deployment_by_name.get(c.deployment)
    p = snapshot.pool_by_id.get(c.pool)
    if d is None or p is None:
        return False
    try:
        v = d.variant(c.variant)
    except KeyError:
        return False
    return pool_allowed(d, p) and variant_allowed(d, v) and c.tp in tp_options(p.gpus)


# Demand below this (one request in about 12 days) is treated as none: CBC's feasibility tolerance is
# 1e-7 absolute, so covering a smaller rate could not be enforced and a plan would silently drop it.
NEGLIGIBLE_RPS = 1e-6


def compile_problem(
    snapshot: Snapshot, candidates: Iterable[Candidate], rtt: RttMatrix | None = None
) -> Problem:
    rtt = rtt or RttMatrix.build(snapshot.regions, snapshot.rtt_overrides_ms)
    slices: list[Slice] = []
    slices_by_dep: dict[str, list[int]] = defaultdict(list)
    for d in snapshot.deployments:
        # Zero-rate slices are kept: they decide where a deployment with min_replicas but no traffic
        # yet may put its replicas.
        for s in d.demand:
            slices_by_dep[d.name].append(len(slices))
            slices.append(Slice(d.name, s.client_region, s.shape, s.rps if s.rps >= NEGLIGIBLE_RPS else 0.0))
    templates: dict[tuple[str, int, str], tuple[Route, ...]] = {}
    rules = _Rules(snapshot)
    kept: list[Candidate] = []
    routes_of: list[tuple[Route, ...]] = []
    dep_of: list[Deployment] = []
    pool_of: list[Pool] = []
    for c in candidates:
        if not rules.usable(c):
            continue
        d = snapshot.deployment_by_name[c.deployment]
        pool = snapshot.pool_by_id[c.pool]
        tkey = (c.deployment, id(c.perf), pool.region)
        routes = templates.get(tkey)
        if routes is None:
            routes = templates[tkey] = _routes(d, c, pool.region, slices, slices_by_dep.get(d.name, []), rtt)
        # An option that can take no traffic is never worth a replica (even for spread: a replica
        # nobody can reach within the SLO protects nothing). A deployment with no demand entries at all
        # has nothing to route, so any usable option may hold its min_replicas.
        if routes or not d.demand:
            kept.append(c)
            routes_of.append(routes)
            dep_of.append(d)
            pool_of.append(pool)
    by_dep: dict[str, list[int]] = defaultdict(list)
    for ci, c in enumerate(kept):
        by_dep[c.deployment].append(ci)
    kind = snapshot.failure_domain
    problem = Problem(
        snapshot,
        rtt,
        kept,
        routes_of,
        slices,
        dict(slices_by_dep),
        dict(by_dep),
        dep_of,
        pool_of,
        price_of=[c.tp * p.gpu_price_per_hour for c, p in zip(kept, pool_of)],
        headroom_of=[snapshot.headroom_of(d) for d in dep_of],
        domain_of=[p.failure_domain(kind) for p in pool_of],
    )
    for d in snapshot.deployments:
        problem.replicas_needed[d.name] = _replicas_needed(problem, d.name)
    return problem


def _replicas_needed(problem: Problem, dep: str) -> float:
    """Replicas the deployment needs at least: demand over the best capacity any replica can carry."""
    total = sum(problem.slices[si].rps for si in problem.slices_by_deployment.get(dep, []))
    if total <= 0:
        return 0.0
    best = 0.0
    for k in problem.cands_by_deployment.get(dep, []):
        for r in problem.routes_of[k]:
            best = max(best, problem.headroom_of[k] * r.capacity_rps)
    return float(math.ceil(total / best - 1e-9)) if best > 0 else 0.0


class _Rules:
    """usable() with its per-deployment and per-pool parts cached (it runs once per option)."""

    def __init__(self, snapshot: Snapshot) -> None:
        self.snapshot = snapshot
        self.pool_ok: dict[tuple[str, str], bool] = {}
        self.variant_ok: dict[tuple[str, str], bool] = {}
        self.tps: dict[str, tuple[int, ...]] = {p.id: tp_options(p.gpus) for p in snapshot.pools}

    def usable(self, c: Candidate) -> bool:
        tps = self.tps.get(c.pool)
        d = self.snapshot.deployment_by_name.get(c.deployment)
        if tps is None or d is None or c.tp not in tps:
            return False
        vk = (c.deployment, c.variant)
        ok = self.variant_ok.get(vk)
        if ok is None:
            try:
                ok = variant_allowed(d, d.variant(c.variant))
            except KeyError:
                ok = False
            self.variant_ok[vk] = ok
        if not ok:
            return False
        pk = (c.deployment, c.pool)
        ok = self.pool_ok.get(pk)
        if ok is None:
            ok = self.pool_ok[pk] = pool_allowed(d, self.snapshot.pool_by_id[c.pool])
        return ok


def _routes(
    d: Deployment, c: Candidate, region: str, slices: list[Slice], mine: list[int], rtt: RttMatrix
) -> tuple[Route, ...]:
    out: list[Route] = []
    for si in mine:
        s = slices[si]
        if s.shape not in c.perf:
            continue
        ms = rtt.get(s.client_region, region)
        bp = c.best_point(s.shape, d.slo.ttft_p95_ms - ms)
        if bp is not None and meets_ttft(d, ms, bp.ttft_ms):
            out.append(Route(si, bp.rps, ms, bp.ttft_ms))
    return tuple(out)
